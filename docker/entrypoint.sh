#!/bin/sh
# The container's entry point (also runs outside Docker: tests/test_container.py does).
#   entrypoint.sh [serve]      check the data directory, then run the server (the default)
#   entrypoint.sh migrate      apply database migrations and exit (compose's one-shot service)
#   entrypoint.sh <command…>   run anything else as given (e.g. a shell for debugging)
set -eu

: "${MLAGENT_HOST:=0.0.0.0}"
: "${MLAGENT_DATA_DIR:=/data}"
export MLAGENT_HOST MLAGENT_DATA_DIR
MLAGENT_BIN="${MLAGENT_BIN:-mlagent}"

if [ "$#" -eq 0 ]; then
  set -- serve
fi

case "$1" in
  serve|migrate)
    mkdir -p "$MLAGENT_DATA_DIR" 2>/dev/null || true
    if [ ! -w "$MLAGENT_DATA_DIR" ]; then
      echo "entrypoint: cannot start: MLAGENT_DATA_DIR $MLAGENT_DATA_DIR is not writable by uid $(id -u);" \
           "mount a volume owned by that user" >&2
      exit 2
    fi
    exec "$MLAGENT_BIN" "$@"
    ;;
  *)
    exec "$@"
    ;;
esac
