#!/bin/sh
set -e
configure() {
  export WORKER_QUEUES="${WORKER_QUEUES:-default}"
  echo "queues: $WORKER_QUEUES"
}
configure
exec "$@"
