# h200-orderbook: every target sets up what it needs; `make` alone lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
.ONESHELL:
.SHELLFLAGS := -euo pipefail -c

VENV    ?= .venv
PY      := $(VENV)/bin/python
PYTHON  ?= python3
STAMP   := $(VENV)/.installed
COMPOSE ?= docker-compose -p $(or $(COMPOSE_PROJECT),h200)

.PHONY: help install system jars kafka-up kafka-down redis-up redis-down engine images topics access schemas \
        schemas-check asyncapi-check lint unit integration e2e sim test demo down clean compose-up compose-down compose-logs bench-replay \
        bench-recovery bench-pipeline bench-state bench-verify bench-snapshot bench-snapshot-load bench

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

system: ## install the Debian packages the project runs (docker.io, debootstrap, redis-server) where missing
	@bash infra/system-packages.sh

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $@

install: system $(STAMP) jars ## everything: Debian packages, Python venv with pinned deps, Kafka jars

jars: ## fetch the Apache Kafka 4.4.0 jars from Maven Central into infra/kafka/.cache (once)
	@bash infra/kafka/fetch-jars.sh

kafka-up: jars $(STAMP) ## start a single-node KRaft broker on 127.0.0.1 (port: KAFKA_PORT, default 9092)
	@bash infra/kafka/kafka.sh start

kafka-down: ## stop that broker (`make kafka-down PURGE=1` also deletes its data)
	@bash infra/kafka/kafka.sh stop $(if $(PURGE),--purge,)

redis-up: ## start redis-server on 127.0.0.1 (port: REDIS_PORT, default 6379)
	@bash infra/redis/redis.sh start

redis-down: ## stop that redis-server
	@bash infra/redis/redis.sh stop

engine: ## make sure a Docker engine answers (installs docker.io and starts dockerd if needed)
	@bash infra/images/docker-engine.sh ensure

images: engine jars $(STAMP) ## build the Kafka, Redis and services images locally (no registry; reuses what exists)
	@bash infra/images/build.sh

topics: $(STAMP) ## create the topic catalogue on H200_BOOTSTRAP_SERVERS as admin (safe to repeat)
	@H200_KAFKA_USERNAME=$${H200_KAFKA_USERNAME:-admin} $(PY) -m services.ops topics create

access: $(STAMP) ## as admin: every principal's SCRAM password and the catalogue's ACLs on H200_BOOTSTRAP_SERVERS
	@$(PY) -m services.ops access secrets
	H200_KAFKA_USERNAME=admin $(PY) -m services.ops access apply

schemas: $(STAMP) ## regenerate schemas/json/*.schema.json and schemas/asyncapi.json from the models
	@$(PY) -m schemas.generate

asyncapi-check: ## validate schemas/asyncapi.json with the AsyncAPI parser itself (Node 18+ and npm; make test runs it too)
	@mkdir -p .cache/asyncapi && cp schemas/tools/package.json schemas/tools/validate-asyncapi.mjs .cache/asyncapi/
	cd .cache/asyncapi && npm install --no-audit --no-fund --silent
	node validate-asyncapi.mjs $(CURDIR)/schemas/asyncapi.json

schemas-check: $(STAMP) ## fail if the generated schemas drifted from the models
	@$(PY) -m schemas.generate --check

lint: $(STAMP) ## ruff, mypy, import contracts and the schema drift check
	@$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy schemas services
	$(VENV)/bin/lint-imports
	$(PY) -m schemas.generate --check

unit: $(STAMP) ## pure tests: no broker, no Docker, seconds (the simulation with 300 seeds: SIM_SEEDS=n)
	@H200_SIM_SEEDS=$(or $(SIM_SEEDS),300) $(PY) -m pytest tests/unit tests/sim -q

integration: install images ## adapters against Kafka and Redis in containers started by testcontainers
	@$(PY) -m pytest tests/integration -q

e2e: install images ## the services as processes against a containerised broker: flow, workers, crashes, bad input
	@$(PY) -m pytest tests/e2e -q

sim: $(STAMP) ## seeded whole-system simulation of the real cores and routes with faults (SEEDS=n, default 10000; START, STEPS)
	@$(PY) -m tests.sim --seeds $(or $(SEEDS),10000) $(if $(START),--start $(START),) $(if $(STEPS),--steps $(STEPS),)

test: install images ## the whole suite: unit, simulation (10,000 seeds, one in 10 refolded; SIM_SEEDS=n; `make sim` searches 10,000), integration and end-to-end tiers, the short fault drill (what CI runs)
	@H200_SIM_SEEDS=$(or $(SIM_SEEDS),10000) H200_SIM_REFOLD_EVERY=$(or $(REFOLD_EVERY),10) $(PY) -m pytest tests/unit tests/sim tests/integration tests/e2e tests/chaos -q --durations=25

demo: install ## the main job: Kafka, Redis and the four services play the article's scenario; prints the ledger
	@bash infra/demo.sh

bench-replay: jars $(STAMP) ## a million events: h200 replay against Kafka's ConsumerPerformance, events/s and peak RSS (EVENTS=n RUNS=n; BENCH_KAFKA_PORT)
	@trap 'KAFKA_RUN_DIR=.run/bench/kafka bash infra/kafka/kafka.sh stop --purge >/dev/null 2>&1 || true' EXIT
	$(PY) -m bench.replay_bench --run-dir .run/bench/kafka $(if $(EVENTS),--events $(EVENTS),) $(if $(RUNS),--runs $(RUNS),)

bench-pipeline: jars $(STAMP) ## orders/s through the four services against a bare aiokafka relay chain, p99 at half that rate, CPU per order per process (ORDERS=n, CLOCK_S=seconds between ticks)
	@$(PY) -m bench.pipeline_bench --run-dir .run/bench/pipeline $(if $(ORDERS),--orders $(ORDERS),) $(if $(CLOCK_S),--clock-interval-s $(CLOCK_S),)

bench-verify: $(STAMP) ## h200 verify of a generated log from an export file, no broker: events/s and its own peak RSS (EVENTS=n, default 1,000,000; FILE=path keeps the log)
	@$(PY) -m bench.verify_file $(if $(EVENTS),--events $(EVENTS),) $(if $(FILE),--file $(FILE),)

bench: bench-replay bench-recovery bench-pipeline bench-state bench-snapshot bench-snapshot-load ## every benchmark, each printing its figures beside its peer's

bench-recovery: jars $(STAMP) ## a worker killed with RECORDS in its inbox (default 20,000; WORKLOAD=lifecycle|held; FAST_ONLY=1 times only the snapshot restart): snapshot + tail vs journal fold vs deciding again
	@$(PY) -m bench.recovery_bench --run-dir .run/bench/recovery $(if $(RECORDS),--records $(RECORDS),) $(if $(WORKLOAD),--workload $(WORKLOAD),) $(if $(FAST_ONLY),--ways "snapshot + tail",)

bench-state: $(STAMP) ## what approval, allocation and fulfilment hold as the log grows (ORDERS=n, default 40,000), beside the same cores never forgetting
	@$(PY) -m bench.state_bench $(if $(ORDERS),--orders $(ORDERS),)

bench-snapshot: $(STAMP) ## how long a snapshot holds a worker's loop: pickled on the loop beside a forked child (ORDERS=n, default 15,000; RUNS=n)
	@$(PY) -m bench.snapshot_bench $(if $(ORDERS),--orders $(ORDERS),) $(if $(RUNS),--runs $(RUNS),)

bench-snapshot-load: $(STAMP) ## a restart's peak memory loading a snapshot of IDS ids (default 5,000,000): streamed from its file beside read whole
	@$(PY) -m bench.snapshot_load_bench $(if $(IDS),--ids $(IDS),)

compose-up: images ## the whole system in containers: Kafka 127.0.0.1:49092, Redis 127.0.0.1:46379
	@eval "$$($(PY) -m services.ops access secrets --export)"
	$(COMPOSE) up -d
	$(COMPOSE) ps

compose-down: ## stop the compose stack and delete its data
	@eval "$$($(PY) -m services.ops access secrets --export)"
	$(COMPOSE) down -v --remove-orphans

compose-logs: ## follow the compose stack's logs
	@eval "$$($(PY) -m services.ops access secrets --export)"
	$(COMPOSE) logs -f --tail 50

down: ## stop everything this project started (broker, redis, dockerd)
	@bash infra/kafka/kafka.sh stop || true
	bash infra/redis/redis.sh stop || true
	bash infra/images/docker-engine.sh stop || true

clean: down ## also delete local state: .run/ (broker and redis data)
	@rm -rf .run

# ------------------------------------------------------------------------------------ three-broker cluster
.PHONY: cluster-up cluster-down cluster-status cluster-test cluster-compose-up cluster-compose-down chaos

cluster-up: jars ## start a local 3-broker KRaft cluster (RF 3, min ISR 2) on 127.0.0.1:29092-29094; prints the bootstrap list
	@KAFKA_PYTHON=$(abspath $(PY)) bash infra/kafka/kafka.sh cluster-start

cluster-down: ## stop that cluster (`make cluster-down PURGE=1` also deletes its data in .run/cluster)
	@bash infra/kafka/kafka.sh cluster-stop $(if $(PURGE),--purge,)

cluster-status: ## whether every node of the local cluster runs and serves
	@KAFKA_PYTHON=$(abspath $(PY)) bash infra/kafka/kafka.sh cluster-status

cluster-test: jars images ## crash drills, ~3.5 min, not in `make test`: a 3-broker cluster loses its leader, workers crash and hand over
	@H200_CLUSTER_TEST=1 $(PY) -m pytest tests/integration/test_cluster.py tests/integration/test_cluster_handover.py -q -s

chaos: jars $(STAMP) ## fault drills, not in CI: faults in seeded order on 3 brokers and on 1 node with Redis wiped (SEED=n ROUNDS=n MODE=single|cluster|both)
	@$(PY) -m tests.chaos --mode $(or $(MODE),both) --seed $(or $(SEED),1) --rounds $(or $(ROUNDS),1)

CLUSTER_COMPOSE ?= docker-compose -p $(or $(CLUSTER_COMPOSE_PROJECT),h200-cluster) -f infra/kafka/cluster.compose.yml

cluster-compose-up: images ## the 3-broker cluster in containers (infra/kafka/cluster.compose.yml) on 127.0.0.1:49192-49194
	@eval "$$($(PY) -m services.ops access secrets --export)"
	$(CLUSTER_COMPOSE) up -d
	$(CLUSTER_COMPOSE) ps

cluster-compose-down: ## stop that containerised cluster and delete its data
	@eval "$$($(PY) -m services.ops access secrets --export)"
	$(CLUSTER_COMPOSE) down -v --remove-orphans
