#!/bin/sh
set -e
source ./bin/env.sh
