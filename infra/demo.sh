#!/usr/bin/env bash
# The main job: a fresh Apache Kafka broker and redis-server on loopback (their own ports and data under
# .run/demo, so a broker you started with `make kafka-up` is left alone), the topic catalogue, the four
# services and the projector as processes, the article's scenario, the ledger; then everything is stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export KAFKA_RUN_DIR="$PWD/.run/demo/kafka" KAFKA_PORT="${DEMO_KAFKA_PORT:-39092}" KAFKA_CONTROLLER_PORT="${DEMO_KAFKA_CONTROLLER_PORT:-39093}"
export REDIS_RUN_DIR="$PWD/.run/demo/redis" REDIS_PORT="${DEMO_REDIS_PORT:-36379}"
export H200_BOOTSTRAP_SERVERS="127.0.0.1:$KAFKA_PORT" H200_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

cleanup() {
    local code=$?
    bash infra/redis/redis.sh stop || true
    bash infra/kafka/kafka.sh stop || true
    if ((code == 0)); then step "demo finished: services, broker and redis are stopped"; else echo "demo FAILED (exit $code); service logs are in .run/demo/*.log" >&2; fi
}
trap cleanup EXIT

step "Apache Kafka 4.x (KRaft, single node) on 127.0.0.1:$KAFKA_PORT, fresh data"
bash infra/kafka/kafka.sh stop --purge >/dev/null 2>&1 || true
bash infra/kafka/kafka.sh start
step "redis-server on 127.0.0.1:$REDIS_PORT, fresh data"
bash infra/redis/redis.sh stop --purge >/dev/null 2>&1 || true
bash infra/redis/redis.sh start
step "the topic catalogue"
$PY -m services.ops catalogue
$PY -m services.ops demo
