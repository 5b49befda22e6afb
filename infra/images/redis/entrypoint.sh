#!/bin/sh
set -eu
exec redis-server --bind 0.0.0.0 --port "${REDIS_PORT:-6379}" --protected-mode no --dir /data \
    --daemonize no --logfile '' "$@"
