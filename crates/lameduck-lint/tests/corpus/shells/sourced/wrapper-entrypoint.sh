#!/usr/bin/env bash
set -Eeo pipefail
# Hand over to the official entrypoint, in this same shell.
export PGDATA=/var/lib/postgresql/data/pgdata
. /usr/local/bin/docker-entrypoint.sh "$@"
