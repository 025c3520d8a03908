#!/usr/bin/env bash
set -Eeo pipefail
_main() {
  if [ "${1:0:1}" = '-' ]; then
    set -- postgres "$@"
  fi
  exec "$@"
}
_main "$@"
