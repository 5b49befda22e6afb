#!/usr/bin/env bash
# The demo: a real Apache Kafka broker and redis-server on loopback, the topic catalogue, one sample of
# every message kind sent and read back, then everything this script started is stopped again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

we_started=()
cleanup() {
    local code=$?
    for ((i = ${#we_started[@]} - 1; i >= 0; i--)); do
        bash "infra/${we_started[i]}" stop || true
    done
    if ((code == 0)); then step "demo finished: everything it started is stopped"; else echo "demo FAILED (exit $code)" >&2; fi
}
trap cleanup EXIT

start() {  # start SCRIPT: start a local server unless one of ours already runs; remember to stop it
    if bash "infra/$1" status >/dev/null 2>&1; then
        echo "$1: already running, leaving it running afterwards"
    else
        bash "infra/$1" start
        we_started+=("$1")
    fi
}

step "1/5 Apache Kafka 4.x (KRaft, single node) on loopback"
start kafka/kafka.sh
step "2/5 redis-server on loopback"
start redis/redis.sh
bash infra/redis/redis.sh cli INFO server | grep -E '^redis_version' || true
step "3/5 topic catalogue (idempotent)"
$PY -m services.ops topics create
$PY -m services.ops topics create
step "4/5 one sample of every message kind, sent to its topic and read back by position"
$PY -m services.ops samples
step "5/5 the catalogue"
$PY -m services.ops catalogue
