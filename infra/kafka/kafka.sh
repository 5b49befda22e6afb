#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Runs Apache Kafka 4.x (KRaft, broker+controller in one JVM per node) for development: one node
# (start | stop [--purge] | status | wait | logs | bootstrap) or a local cluster of KAFKA_NODES nodes
# (cluster-start | cluster-stop [--purge] | cluster-status | cluster-bootstrap).  See --help.
set -euo pipefail

PROG="${KAFKA_SH_LABEL:-kafka.sh}"   # cluster-start labels the nodes: kafka.sh[node 2]
# shellcheck source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

KAFKA_DIR="$REPO_ROOT/infra/kafka"
LIBS_DIR="$KAFKA_DIR/.cache/libs"
TEMPLATE="$KAFKA_DIR/server.properties"
LOG4J_CONFIG="$KAFKA_DIR/log4j2.yaml"

KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_RUN_DIR="$(realpath -m "${KAFKA_RUN_DIR:-$REPO_ROOT/.run/kafka}")"
KAFKA_DATA_DIR="${KAFKA_DATA_DIR:-$KAFKA_RUN_DIR/data}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"
KAFKA_JVM_PERFORMANCE_OPTS="${KAFKA_JVM_PERFORMANCE_OPTS:--server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true}"
KAFKA_OPTS="${KAFKA_OPTS:-}"
KAFKA_PYTHON="${KAFKA_PYTHON:-$REPO_ROOT/.venv/bin/python}"
# One node by default; cluster-start sets these for each node it starts (see cluster_node_env).
KAFKA_NODE_ID="${KAFKA_NODE_ID:-1}"
KAFKA_QUORUM_VOTERS="${KAFKA_QUORUM_VOTERS:-}"
KAFKA_CLUSTER_ID="${KAFKA_CLUSTER_ID:-}"
KAFKA_REPLICATION="${KAFKA_REPLICATION:-1}"
KAFKA_MIN_ISR="${KAFKA_MIN_ISR:-1}"
# The local cluster: node i listens on KAFKA_CLUSTER_PORT+i-1 (clients) and KAFKA_CLUSTER_CONTROLLER_PORT+i-1.
KAFKA_NODES="${KAFKA_NODES:-3}"
KAFKA_CLUSTER_PORT="${KAFKA_CLUSTER_PORT:-29092}"
KAFKA_CLUSTER_CONTROLLER_PORT="${KAFKA_CLUSTER_CONTROLLER_PORT:-29192}"
KAFKA_CLUSTER_DIR="$(realpath -m "${KAFKA_CLUSTER_DIR:-$REPO_ROOT/.run/cluster}")"
KAFKA_CLUSTER_HEAP_OPTS="${KAFKA_CLUSTER_HEAP_OPTS:--Xms128m -Xmx512m}"
# One password file per principal (docs/security.md); the brokers need admin's and controller's, generated here if
# missing, and `h200 access apply` gives every other principal its SCRAM password and ACLs once the broker serves.
KAFKA_SECRETS_DIR="$(realpath -m "${H200_KAFKA_SECRETS_DIR:-$REPO_ROOT/.run/secrets/kafka}")"

usage() {
    cat <<EOF
Usage: infra/kafka/kafka.sh COMMAND [options]

Runs one Apache Kafka 4.x broker (KRaft; broker and controller in one JVM, node.id=1) from the jars
in infra/kafka/.cache/libs (fetched by fetch-jars.sh on first use), listening on 127.0.0.1 only.

Commands:
  start [--timeout S]   format the data directory if it is new, start the broker in the background
                        (own session, survives the calling shell), wait until it serves metadata,
                        then print "Kafka <version> ready on 127.0.0.1:<port>". Exit 0 if our broker
                        is already running.
  stop [--purge]        stop our broker (SIGTERM, then SIGKILL after KAFKA_STOP_TIMEOUT s); exit 0 if
                        it is not running. --purge also deletes the data directory (all topics).
  status                print whether our broker runs and answers. Exit 0 = running and serving
                        metadata, 1 = running but not answering, 3 = not running.
  wait [--timeout S]    wait until a broker on 127.0.0.1:KAFKA_PORT serves metadata (default 60 s).
  logs [-f] [-n N]      show the last N (default 100) lines of the broker log; -f follows it.
  bootstrap             print the bootstrap address, e.g. 127.0.0.1:9092.

  cluster-start [--timeout S]
                        start a local cluster of KAFKA_NODES nodes (node.id 1..N, each broker and
                        controller, a static quorum of all N controllers, each with its own ports and
                        \$KAFKA_CLUSTER_DIR/node-<id>/), replication factor min(3, N) for new and internal
                        topics, min.insync.replicas 2 with 3 replicas (else 1); wait until every broker is
                        unfenced, then print "Kafka <version> cluster of N ready on <bootstrap list>" and
                        the H200_* settings to export. Safe to repeat: starts only the nodes not running.
  cluster-stop [--purge]
                        stop every node of the cluster (all at once: a node stopped alone waits for a
                        quorum to shut down cleanly); --purge also deletes \$KAFKA_CLUSTER_DIR.
  cluster-status        each node's state; exit 0 = all N serve metadata with N unfenced brokers.
  cluster-bootstrap     print the bootstrap list, e.g. 127.0.0.1:29092,127.0.0.1:29093,127.0.0.1:29094.
  The single-node commands work on one node of the cluster with KAFKA_RUN_DIR=\$KAFKA_CLUSTER_DIR/node-<id>
  (e.g. to start a node again after killing it: cluster-start starts only the missing ones).
  -h, --help            show this help

Environment (defaults in brackets):
  KAFKA_PORT              client (PLAINTEXT) listener port [9092]
  KAFKA_CONTROLLER_PORT   KRaft controller listener port [9093]
  KAFKA_RUN_DIR           pid file, rendered config and logs [<repo>/.run/kafka]
  KAFKA_DATA_DIR          Kafka log/metadata directory [\$KAFKA_RUN_DIR/data]
  KAFKA_START_TIMEOUT     seconds to wait for readiness in start/wait [60]
  KAFKA_STOP_TIMEOUT      seconds between SIGTERM and SIGKILL in stop [30]
  KAFKA_HEAP_OPTS         JVM heap options [-Xms256m -Xmx1g]
  KAFKA_JVM_PERFORMANCE_OPTS  GC/JVM options [G1, as Kafka's own scripts]
  KAFKA_OPTS              extra JVM options (e.g. -D system properties) []
  KAFKA_PYTHON            Python with kafka-python, used for the readiness probe
                          [<repo>/.venv/bin/python; falls back to Kafka's Java tool]
  JAVA_HOME               Java 17+ to run (else java on PATH)
  KAFKA_NODES             nodes of the local cluster [3]
  KAFKA_CLUSTER_PORT      client port of node 1; node i uses KAFKA_CLUSTER_PORT+i-1 [29092]
  KAFKA_CLUSTER_CONTROLLER_PORT  controller port of node 1, likewise [29192]
  KAFKA_CLUSTER_DIR       the cluster's cluster.id and one run directory per node [<repo>/.run/cluster]
  KAFKA_CLUSTER_HEAP_OPTS JVM heap options of each cluster node [-Xms128m -Xmx512m]
  H200_KAFKA_SECRETS_DIR  the principals' password files [<repo>/.run/secrets/kafka]

Authentication is always on: clients log in with SASL/SCRAM-SHA-512 on the client port, the brokers with SASL
PLAIN as 'controller' on the controller port; the StandardAuthorizer allows only what ACLs grant (super users:
admin, controller). After start (and cluster-start) the principals' users and ACLs are applied with
'python -m services.ops access apply' (needs KAFKA_PYTHON).

Files in \$KAFKA_RUN_DIR: kafka.pid, server.properties (rendered from infra/kafka/server.properties),
server.log (broker log, via infra/kafka/log4j2.yaml), kafka.out (JVM stdout/stderr), data/.
EOF
}

PID_FILE="$KAFKA_RUN_DIR/kafka.pid"
CONFIG="$KAFKA_RUN_DIR/server.properties"
SERVER_LOG="$KAFKA_RUN_DIR/server.log"
OUT_LOG="$KAFKA_RUN_DIR/kafka.out"
LOCK_FILE="$KAFKA_RUN_DIR/kafka.lock"

kafka_version() {
    local jar
    jar="$(compgen -G "$LIBS_DIR/kafka_2.13-*.jar" | head -n 1 || true)"
    jar="$(basename "${jar:-unknown}" .jar)"
    printf '%s\n' "${jar#kafka_2.13-}"
}

# our_pid : print the pid of the broker this script started (per the pid file), if it still runs.
# A pid is ours only if that process is a kafka.Kafka JVM started with our rendered config, so a
# recycled pid is never mistaken for (and never signalled as) our broker.
our_pid() {
    local pid
    pid="$(read_pidfile "$PID_FILE")"
    [[ -n "$pid" ]] && pid_alive "$pid" || return 1
    local cmd
    cmd="$(proc_cmdline "$pid")"
    [[ "$cmd" == *" kafka.Kafka $CONFIG" ]] || return 1
    printf '%s\n' "$pid"
}

# running_port : the client port of the running broker (from the rendered config), else KAFKA_PORT.
running_port() {
    local p=""
    [[ -f "$CONFIG" ]] && p="$(sed -n 's/^listeners=SASL_PLAINTEXT:\/\/[^:]*:\([0-9]*\),.*/\1/p' "$CONFIG" | head -n 1)"
    printf '%s\n' "${p:-$KAFKA_PORT}"
}

# probe PORT : succeed when the broker on 127.0.0.1:PORT serves cluster metadata with an active
# controller and at least one unfenced broker (i.e. it can take requests), not merely an open port.
PROBE_MODE=""
probe() {
    local port="$1" need="${2:-1}"
    if [[ -z "$PROBE_MODE" ]]; then
        if [[ -x "$KAFKA_PYTHON" ]] && "$KAFKA_PYTHON" -c 'import kafka' 2>/dev/null; then
            PROBE_MODE=python
        else
            PROBE_MODE=java
        fi
    fi
    port_in_use "$port" || return 1
    if [[ "$PROBE_MODE" == python ]]; then
        KAFKA_SH_ADMIN_PASSWORD="$(secret admin)" timeout 15 "$KAFKA_PYTHON" - "$port" "$need" <<'PY' >/dev/null 2>&1
import logging, os, sys
logging.disable(logging.CRITICAL)
from kafka import KafkaAdminClient
admin = KafkaAdminClient(bootstrap_servers="127.0.0.1:" + sys.argv[1], client_id="kafka.sh-probe",
                         bootstrap_timeout_ms=3000, request_timeout_ms=3000,
                         security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-512",
                         sasl_plain_username="admin", sasl_plain_password=os.environ["KAFKA_SH_ADMIN_PASSWORD"])
try:
    cluster = admin.describe_cluster()
finally:
    admin.close()
brokers = [b for b in cluster.get("brokers", []) if not b.get("is_fenced", False)]
sys.exit(0 if len(brokers) >= int(sys.argv[2]) and cluster.get("controller_id", -1) >= 0 else 1)
PY
    else
        local out
        out="$(timeout 20 "$JAVA" -cp "$LIBS_DIR/*" -Dlog4j2.level=OFF \
            org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "127.0.0.1:$port" \
            --command-config "$KAFKA_RUN_DIR/admin.properties" 2>/dev/null)" || return 1
        (($(grep -c '(id: ' <<<"$out") >= need))
    fi
}

# wait_ready PORT TIMEOUT [PID] : poll until probe succeeds; fail early if PID dies.
# Returns 0 ready, 1 timeout, 2 process died.
wait_ready() {
    local port="$1" timeout_s="$2" pid="${3:-}" deadline
    deadline=$((SECONDS + timeout_s))
    while ((SECONDS < deadline)); do
        if [[ -n "$pid" ]] && ! pid_alive "$pid"; then return 2; fi
        if probe "$port"; then return 0; fi
        if [[ -n "$pid" ]] && ! pid_alive "$pid"; then return 2; fi
        sleep 0.5
    done
    return 1
}

# Offsets of the log files when this invocation began, so failures show only this run's lines.
SERVER_LOG_FROM=0
OUT_LOG_FROM=0
show_logs_on_failure() {
    tail_file "$SERVER_LOG" 30 "broker log" "$SERVER_LOG_FROM"
    tail_file "$OUT_LOG" 30 "JVM stdout/stderr" "$OUT_LOG_FROM"
}

check_timeout_value() {
    is_uint "$2" && (($2 > 0)) || die "$1='$2' is not a positive number of seconds."
}

sed_escape() { printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'; }

# secret NAME : the password of principal NAME, generated (48 hex digits, mode 0600) if it has none yet.
secret() {
    local file="$KAFKA_SECRETS_DIR/$1"
    if [[ ! -s "$file" ]]; then
        (umask 077 && mkdir -p "$KAFKA_SECRETS_DIR" && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$file.tmp.$$" &&
            echo >>"$file.tmp.$$" && mv -n "$file.tmp.$$" "$file" && rm -f "$file.tmp.$$")
    fi
    tr -d '[:space:]' <"$file"
}

# apply_access BOOTSTRAP : every principal's SCRAM password and exactly the ACLs the topic catalogue grants.
apply_access() {
    if [[ ! -x "$KAFKA_PYTHON" ]] || ! "$KAFKA_PYTHON" -c 'import services.ops' 2>/dev/null; then
        warn "no Python with this project at KAFKA_PYTHON=$KAFKA_PYTHON: principals and ACLs not applied (only admin can log in)." \
            "Run 'make install', then 'H200_KAFKA_USERNAME=admin .venv/bin/h200 access apply --bootstrap $1'."
        return 0
    fi
    local env=(H200_BOOTSTRAP_SERVERS="$1" H200_KAFKA_USERNAME=admin H200_KAFKA_SECRETS_DIR="$KAFKA_SECRETS_DIR")
    env -u H200_KAFKA_PASSWORD "${env[@]}" "$KAFKA_PYTHON" -m services.ops access secrets >/dev/null &&
        env -u H200_KAFKA_PASSWORD "${env[@]}" "$KAFKA_PYTHON" -m services.ops access apply | sed "s/^/$PROG: /" ||
        die "applying the principals' users and ACLs to $1 failed (see above)."
    info "clients log in as a principal: H200_KAFKA_USERNAME=<name> H200_KAFKA_SECRETS_DIR=$KAFKA_SECRETS_DIR ('h200 access principals' lists them)"
}

render_config() {
    local tmp="$CONFIG.tmp.$$" quorum admin_pw controller_pw
    admin_pw="$(secret admin)"
    controller_pw="$(secret controller)"
    umask 077   # the rendered config and the tool config hold passwords
    if [[ -n "$KAFKA_QUORUM_VOTERS" ]]; then
        quorum="controller.quorum.voters=$KAFKA_QUORUM_VOTERS"
    else
        quorum="controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT"
    fi
    # Comment lines are copied as they are: they name the placeholders.
    sed -e "/^#/!s|@KAFKA_PORT@|$KAFKA_PORT|g" \
        -e "/^#/!s|@KAFKA_NODE_ID@|$KAFKA_NODE_ID|g" \
        -e "/^#/!s|@KAFKA_QUORUM@|$quorum|g" \
        -e "/^#/!s|@KAFKA_REPLICATION@|$KAFKA_REPLICATION|g" \
        -e "/^#/!s|@KAFKA_MIN_ISR@|$KAFKA_MIN_ISR|g" \
        -e "/^#/!s|@KAFKA_CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
        -e "/^#/!s|@KAFKA_DATA_DIR@|$(sed_escape "$KAFKA_DATA_DIR")|g" \
        -e "/^#/!s|@KAFKA_ADMIN_PASSWORD@|$admin_pw|g" \
        -e "/^#/!s|@KAFKA_CONTROLLER_PASSWORD@|$controller_pw|g" \
        "$TEMPLATE" >"$tmp"
    mv "$tmp" "$CONFIG"
    cat >"$KAFKA_RUN_DIR/admin.properties" <<PROPS
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin_pw";
PROPS
}

# new_cluster_id : a base64url-encoded random 128-bit UUID (22 characters). Kafka avoids ids that
# start with '-' (they look like options on command lines), so do we.
new_cluster_id() {
    local cluster_id
    while :; do
        cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
        [[ "$cluster_id" != -* ]] && break
    done
    printf '%s\n' "$cluster_id"
}

format_storage_if_needed() {
    if [[ -f "$KAFKA_DATA_DIR/meta.properties" ]]; then
        return 0
    fi
    if [[ -d "$KAFKA_DATA_DIR" ]] && [[ -n "$(ls -A "$KAFKA_DATA_DIR" 2>/dev/null)" ]]; then
        die "KAFKA_DATA_DIR=$KAFKA_DATA_DIR is not empty but holds no meta.properties, so it is not a formatted Kafka data directory." \
            "Point KAFKA_DATA_DIR at an empty or a Kafka data directory, or empty this one if its contents are not needed."
    fi
    mkdir -p "$KAFKA_DATA_DIR"
    local cluster_id="$KAFKA_CLUSTER_ID" quorum=(--standalone) what="standalone KRaft quorum"
    [[ -n "$cluster_id" ]] || cluster_id="$(new_cluster_id)"
    if [[ -n "$KAFKA_QUORUM_VOTERS" ]]; then
        quorum=()   # the static voters of the rendered config
        what="node $KAFKA_NODE_ID of the static quorum $KAFKA_QUORUM_VOTERS"
    fi
    info "formatting new data directory $KAFKA_DATA_DIR (cluster id $cluster_id, $what)"
    local rc=0
    # shellcheck disable=SC2086   # option lists are word lists by design
    timeout 120 "$JAVA" $KAFKA_HEAP_OPTS -cp "$LIBS_DIR/*" \
        -Dlog4j2.configurationFile="$LOG4J_CONFIG" -Dkafka.logs.dir="$KAFKA_RUN_DIR" \
        kafka.tools.StorageTool format "${quorum[@]}" --cluster-id "$cluster_id" --config "$CONFIG" \
        --add-scram "SCRAM-SHA-512=[name=admin,password=$(secret admin)]" \
        >>"$OUT_LOG" 2>&1 </dev/null || rc=$?
    if ((rc != 0)) || [[ ! -f "$KAFKA_DATA_DIR/meta.properties" ]]; then
        show_logs_on_failure
        die "formatting $KAFKA_DATA_DIR with kafka.tools.StorageTool failed (exit $rc); see the output above."
    fi
}

# explain_busy_port NAME PORT : die with a message naming who holds PORT and how to pick another one.
explain_busy_port() {
    local var="$1" port="$2" owner free
    local -a lines=()
    owner="$(port_owner "$port")"
    free="$(suggest_free_port "$KAFKA_PORT")"
    if [[ "$owner" == *kafka.Kafka* ]]; then
        lines+=("It looks like another Kafka broker (e.g. started from another checkout or with another KAFKA_RUN_DIR); stop that one first.")
    fi
    lines+=("Stop that process, or choose free ports, e.g.: KAFKA_PORT=$free KAFKA_CONTROLLER_PORT=$((free + 1)) $0 start"
        "(clients then use bootstrap servers 127.0.0.1:\$KAFKA_PORT).")
    die "port $port on 127.0.0.1 ($var) is already in use by $owner, so Kafka cannot listen there." "${lines[@]}"
}

with_lock() {
    mkdir -p "$KAFKA_RUN_DIR"
    exec 8>"$LOCK_FILE"
    flock -w 180 8 || die "another kafka.sh start/stop has held $LOCK_FILE for 3 minutes; wait for it or check for a stuck kafka.sh."
}

cmd_start() {
    local timeout_s="$KAFKA_START_TIMEOUT" no_wait=0
    while (($#)); do
        case "$1" in
            --timeout) (($# >= 2)) || die "--timeout needs a number of seconds."; timeout_s="$2"; shift ;;
            --timeout=*) timeout_s="${1#*=}" ;;
            # Used by cluster-start: a node of a static quorum cannot serve metadata before a majority runs.
            --no-wait) no_wait=1 ;;
            -h | --help) usage; exit 0 ;;
            *) die "unknown option '$1' for start (see --help)." ;;
        esac
        shift
    done
    check_timeout_value KAFKA_START_TIMEOUT "$timeout_s"
    check_port KAFKA_PORT "$KAFKA_PORT"
    check_port KAFKA_CONTROLLER_PORT "$KAFKA_CONTROLLER_PORT"
    [[ "$KAFKA_PORT" != "$KAFKA_CONTROLLER_PORT" ]] || die "KAFKA_PORT and KAFKA_CONTROLLER_PORT are both $KAFKA_PORT; they must differ."
    [[ -f "$TEMPLATE" ]] || die "$TEMPLATE is missing." "Restore it with git checkout infra/kafka/server.properties."
    [[ -f "$LOG4J_CONFIG" ]] || die "$LOG4J_CONFIG is missing." "Restore it with git checkout infra/kafka/log4j2.yaml."

    with_lock
    local pid
    if pid="$(our_pid)"; then
        local port
        port="$(running_port)"
        info "Kafka is already running (pid $pid) on 127.0.0.1:$port; not starting another."
        [[ "$port" == "$KAFKA_PORT" ]] || warn "it listens on $port, not on KAFKA_PORT=$KAFKA_PORT; run '$0 stop' first to change ports."
        ((no_wait)) && return 0
        resolve_java
        if wait_ready "$port" "$timeout_s" "$pid"; then
            info "Kafka $(kafka_version) ready on 127.0.0.1:$port"
            return 0
        fi
        die "the running broker (pid $pid) does not answer on 127.0.0.1:$port within ${timeout_s} s." \
            "See '$0 logs'; restart it with '$0 stop && $0 start'."
    fi
    rm -f "$PID_FILE"

    if port_in_use "$KAFKA_PORT"; then explain_busy_port KAFKA_PORT "$KAFKA_PORT"; fi
    if port_in_use "$KAFKA_CONTROLLER_PORT"; then explain_busy_port KAFKA_CONTROLLER_PORT "$KAFKA_CONTROLLER_PORT"; fi

    resolve_java
    "$KAFKA_DIR/fetch-jars.sh" --quiet || die "the Kafka jars are not available (fetch-jars.sh failed; see above)."

    KAFKA_DATA_DIR="$(realpath -m "$KAFKA_DATA_DIR")"
    mkdir -p "$KAFKA_RUN_DIR"
    SERVER_LOG_FROM="$(file_size "$SERVER_LOG")"
    OUT_LOG_FROM="$(file_size "$OUT_LOG")"
    render_config
    format_storage_if_needed

    printf '\n===== %s kafka.sh start (port %s) =====\n' "$(date '+%F %T')" "$KAFKA_PORT" >>"$OUT_LOG"
    # setsid: own session and process group, no controlling terminal, so the broker survives the
    # calling shell (make, a terminal) exiting and gets no SIGHUP/SIGINT meant for it. The inner
    # shell writes its own pid, then execs java, so the pid file holds the JVM's pid.
    # shellcheck disable=SC2016,SC2086
    setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PID_FILE" \
        "$JAVA" $KAFKA_HEAP_OPTS $KAFKA_JVM_PERFORMANCE_OPTS $KAFKA_OPTS \
        -Dlog4j2.configurationFile="$LOG4J_CONFIG" -Dkafka.logs.dir="$KAFKA_RUN_DIR" \
        -cp "$LIBS_DIR/*" kafka.Kafka "$CONFIG" \
        </dev/null >>"$OUT_LOG" 2>&1 8>&- &
    local i
    for ((i = 0; i < 100; i++)); do
        pid="$(read_pidfile "$PID_FILE")"
        [[ -n "$pid" ]] && break
        sleep 0.05
    done
    [[ -n "$pid" ]] || { show_logs_on_failure; die "the broker process did not start (no pid written to $PID_FILE)."; }
    if ((no_wait)); then
        info "started Kafka node $KAFKA_NODE_ID (pid $pid) on 127.0.0.1:$KAFKA_PORT"
        return 0
    fi
    info "started Kafka broker (pid $pid); waiting up to ${timeout_s} s for it to serve metadata on 127.0.0.1:$KAFKA_PORT ..."

    local rc=0
    wait_ready "$KAFKA_PORT" "$timeout_s" "$pid" || rc=$?
    case "$rc" in
        0) info "Kafka $(kafka_version) ready on 127.0.0.1:$KAFKA_PORT"; apply_access "127.0.0.1:$KAFKA_PORT" ;;
        2)
            rm -f "$PID_FILE"
            show_logs_on_failure
            die "the Kafka broker exited during start-up; its log is shown above ($SERVER_LOG, $OUT_LOG)." ;;
        *)
            show_logs_on_failure
            die "Kafka (pid $pid) did not serve metadata on 127.0.0.1:$KAFKA_PORT within ${timeout_s} s; it is left running." \
                "Wait longer with '$0 wait --timeout 120', raise KAFKA_START_TIMEOUT, or stop it with '$0 stop'." ;;
    esac
}

cmd_stop() {
    local purge=0
    while (($#)); do
        case "$1" in
            --purge) purge=1 ;;
            -h | --help) usage; exit 0 ;;
            *) die "unknown option '$1' for stop (see --help)." ;;
        esac
        shift
    done
    check_timeout_value KAFKA_STOP_TIMEOUT "$KAFKA_STOP_TIMEOUT"
    with_lock
    local pid
    if pid="$(our_pid)"; then
        info "stopping Kafka (pid $pid) ..."
        if ! stop_pid "$pid" "$KAFKA_STOP_TIMEOUT" "Kafka"; then
            die "Kafka (pid $pid) is still there after SIGKILL; check 'ps -o pid,stat,cmd -p $pid'."
        fi
        info "Kafka stopped."
    else
        info "Kafka is not running (nothing to stop)."
    fi
    rm -f "$PID_FILE"

    if ((purge)); then
        local dir
        dir="$(realpath -m "$KAFKA_DATA_DIR")"
        if [[ ! -e "$dir" ]]; then
            info "data directory $dir does not exist (nothing to purge)."
        elif [[ "$dir" == "/" || "$dir" == "$REPO_ROOT" || "$dir" == "$HOME" ]]; then
            die "refusing to delete KAFKA_DATA_DIR=$dir."
        elif [[ -f "$dir/meta.properties" || -z "$(ls -A "$dir")" || "$dir" == "$(realpath -m "$KAFKA_RUN_DIR")/"* ]]; then
            rm -rf "$dir"
            info "deleted data directory $dir."
        else
            die "refusing to delete KAFKA_DATA_DIR=$dir: it holds no meta.properties, so it does not look like a Kafka data directory." \
                "Delete it yourself if that is really intended."
        fi
    fi
}

cmd_status() {
    local pid port
    port="$(running_port)"
    if pid="$(our_pid)"; then
        resolve_java
        if probe "$port"; then
            info "Kafka $(kafka_version) is running (pid $pid) and serving metadata on 127.0.0.1:$port (data: $(sed -n 's/^log.dirs=//p' "$CONFIG"))."
            return 0
        fi
        info "Kafka is running (pid $pid) but does not answer on 127.0.0.1:$port (still starting, or stuck; see '$0 logs')."
        return 1
    fi
    if port_in_use "$KAFKA_PORT"; then
        info "Kafka is not running from this checkout ($KAFKA_RUN_DIR), but port $KAFKA_PORT is in use by $(port_owner "$KAFKA_PORT")."
    else
        info "Kafka is not running."
    fi
    return 3
}

cmd_wait() {
    local timeout_s="$KAFKA_START_TIMEOUT"
    while (($#)); do
        case "$1" in
            --timeout) (($# >= 2)) || die "--timeout needs a number of seconds."; timeout_s="$2"; shift ;;
            --timeout=*) timeout_s="${1#*=}" ;;
            -h | --help) usage; exit 0 ;;
            *) die "unknown option '$1' for wait (see --help)." ;;
        esac
        shift
    done
    check_timeout_value KAFKA_START_TIMEOUT "$timeout_s"
    local pid="" port="$KAFKA_PORT"
    if pid="$(our_pid)"; then port="$(running_port)"; else pid=""; fi
    resolve_java
    local rc=0
    wait_ready "$port" "$timeout_s" "$pid" || rc=$?
    case "$rc" in
        0) info "Kafka $(kafka_version) ready on 127.0.0.1:$port" ;;
        2) show_logs_on_failure; die "the Kafka broker (pid $pid) exited while waiting for it." ;;
        *) die "no Kafka broker served metadata on 127.0.0.1:$port within ${timeout_s} s." \
            "Start one with '$0 start' (or check '$0 status' / '$0 logs')." ;;
    esac
}

cmd_logs() {
    local follow=0 nlines=100
    while (($#)); do
        case "$1" in
            -f | --follow) follow=1 ;;
            -n) (($# >= 2)) || die "-n needs a number of lines."; nlines="$2"; shift ;;
            -n*) nlines="${1#-n}" ;;
            -h | --help) usage; exit 0 ;;
            *) die "unknown option '$1' for logs (see --help)." ;;
        esac
        shift
    done
    is_uint "$nlines" || die "-n '$nlines' is not a number of lines."
    [[ -f "$SERVER_LOG" ]] || die "no broker log at $SERVER_LOG yet (has Kafka been started with this KAFKA_RUN_DIR?)."
    if ((follow)); then exec tail -n "$nlines" -F "$SERVER_LOG"; fi
    tail -n "$nlines" "$SERVER_LOG"
}

# ---------------------------------------------------------------------------------------------- cluster mode
# A local cluster is N single nodes of this same script, each run with its own KAFKA_RUN_DIR, ports, node id
# and the cluster's shared id, quorum and replication settings (cluster_node runs one command on node i).

SELF="$(realpath "${BASH_SOURCE[0]}")"

cluster_check() {
    is_uint "$KAFKA_NODES" && ((KAFKA_NODES >= 1 && KAFKA_NODES <= 9)) || die "KAFKA_NODES='$KAFKA_NODES' is not a number of nodes from 1 to 9."
    check_port KAFKA_CLUSTER_PORT "$KAFKA_CLUSTER_PORT"
    check_port KAFKA_CLUSTER_CONTROLLER_PORT "$KAFKA_CLUSTER_CONTROLLER_PORT"
    local last=$((KAFKA_CLUSTER_PORT + KAFKA_NODES - 1)) clast=$((KAFKA_CLUSTER_CONTROLLER_PORT + KAFKA_NODES - 1))
    ((last <= 65535 && clast <= 65535)) || die "the cluster's ports would go past 65535; lower KAFKA_CLUSTER_PORT or KAFKA_CLUSTER_CONTROLLER_PORT."
    if ((KAFKA_CLUSTER_PORT <= clast && KAFKA_CLUSTER_CONTROLLER_PORT <= last)); then
        die "client ports $KAFKA_CLUSTER_PORT-$last and controller ports $KAFKA_CLUSTER_CONTROLLER_PORT-$clast overlap." \
            "Choose KAFKA_CLUSTER_PORT and KAFKA_CLUSTER_CONTROLLER_PORT at least KAFKA_NODES apart."
    fi
}

cluster_voters() {
    local i out=""
    for ((i = 1; i <= KAFKA_NODES; i++)); do out+="${out:+,}$i@127.0.0.1:$((KAFKA_CLUSTER_CONTROLLER_PORT + i - 1))"; done
    printf '%s\n' "$out"
}

cluster_bootstrap() {
    local i out=""
    for ((i = 1; i <= KAFKA_NODES; i++)); do out+="${out:+,}127.0.0.1:$((KAFKA_CLUSTER_PORT + i - 1))"; done
    printf '%s\n' "$out"
}

# Replication factor 3 (at most the nodes) and min ISR 2 when there are 3 replicas: with acks=all an
# acknowledged record is then on two brokers, and the cluster goes on taking writes with one broker down.
cluster_replication() { printf '%s\n' $((KAFKA_NODES < 3 ? KAFKA_NODES : 3)); }
cluster_min_isr() { printf '%s\n' $(($(cluster_replication) >= 3 ? 2 : 1)); }

# cluster_node I COMMAND [ARGS...] : run this script's single-node COMMAND on node I of the cluster.
cluster_node() {
    local i="$1"
    shift
    KAFKA_NODE_ID="$i" \
        KAFKA_PORT=$((KAFKA_CLUSTER_PORT + i - 1)) \
        KAFKA_CONTROLLER_PORT=$((KAFKA_CLUSTER_CONTROLLER_PORT + i - 1)) \
        KAFKA_RUN_DIR="$KAFKA_CLUSTER_DIR/node-$i" \
        KAFKA_DATA_DIR="$KAFKA_CLUSTER_DIR/node-$i/data" \
        KAFKA_QUORUM_VOTERS="$(cluster_voters)" \
        KAFKA_CLUSTER_ID="${CLUSTER_ID:-}" \
        KAFKA_REPLICATION="$(cluster_replication)" \
        KAFKA_MIN_ISR="$(cluster_min_isr)" \
        KAFKA_HEAP_OPTS="$KAFKA_CLUSTER_HEAP_OPTS" \
        KAFKA_SH_LABEL="kafka.sh[node $i]" \
        bash "$SELF" "$@" 7>&-   # the cluster lock stays with this process, not with the brokers
}

cluster_lock() {
    mkdir -p "$KAFKA_CLUSTER_DIR"
    exec 7>"$KAFKA_CLUSTER_DIR/cluster.lock"
    flock -w 180 7 || die "another kafka.sh cluster command has held $KAFKA_CLUSTER_DIR/cluster.lock for 3 minutes."
}

# The cluster id and quorum the data directories were formatted with; a cluster is never re-formatted
# with other nodes (its nodes would not agree on the quorum): cluster-stop --purge first.
CLUSTER_ID=""
cluster_identity() {
    local file="$KAFKA_CLUSTER_DIR/cluster.conf" voters
    voters="$(cluster_voters)"
    if [[ -f "$file" ]]; then
        CLUSTER_ID="$(sed -n 's/^cluster.id=//p' "$file")"
        local formatted
        formatted="$(sed -n 's/^voters=//p' "$file")"
        [[ "$formatted" == "$voters" ]] || die "the cluster in $KAFKA_CLUSTER_DIR was formatted for the voters $formatted, not $voters." \
            "Keep KAFKA_NODES and KAFKA_CLUSTER_CONTROLLER_PORT as they were, or delete it with '$0 cluster-stop --purge'."
    fi
    if [[ -z "$CLUSTER_ID" ]]; then
        CLUSTER_ID="$(new_cluster_id)"
        printf 'cluster.id=%s\nvoters=%s\n' "$CLUSTER_ID" "$voters" >"$file"
    fi
}

cluster_start() {
    local timeout_s=120
    while (($#)); do
        case "$1" in
            --timeout) (($# >= 2)) || die "--timeout needs a number of seconds."; timeout_s="$2"; shift ;;
            --timeout=*) timeout_s="${1#*=}" ;;
            -h | --help) usage; exit 0 ;;
            *) die "unknown option '$1' for cluster-start (see --help)." ;;
        esac
        shift
    done
    check_timeout_value "--timeout" "$timeout_s"
    cluster_check
    cluster_lock
    cluster_identity
    local i failed=0 deadline=$((SECONDS + timeout_s))
    local -a pids=()
    secret admin >/dev/null && secret controller >/dev/null   # once, before the nodes start side by side
    # Every node first (formatted and launched side by side), then the waiting: no node serves metadata
    # before a majority of the quorum runs.
    for ((i = 1; i <= KAFKA_NODES; i++)); do
        cluster_node "$i" start --no-wait &
        pids+=("$!")
    done
    for i in "${pids[@]}"; do wait "$i" || failed=1; done
    ((failed == 0)) || die "not every node of the cluster started (see above); '$0 cluster-stop' stops the others."
    for ((i = 1; i <= KAFKA_NODES; i++)); do
        cluster_node "$i" wait --timeout $((deadline > SECONDS ? deadline - SECONDS : 1)) >/dev/null
    done
    resolve_java
    local port1=$((KAFKA_CLUSTER_PORT))
    until probe "$port1" "$KAFKA_NODES"; do
        ((SECONDS < deadline)) || die "the $KAFKA_NODES nodes run, but not all their brokers are unfenced after ${timeout_s} s." \
            "See '$0 cluster-status' and the logs in $KAFKA_CLUSTER_DIR/node-*/server.log."
        sleep 0.5
    done
    info "Kafka $(kafka_version) cluster of $KAFKA_NODES ready on $(cluster_bootstrap) (replication factor $(cluster_replication), min.insync.replicas $(cluster_min_isr))"
    apply_access "$(cluster_bootstrap)"
    info "services, CLI and tests use it with: export H200_BOOTSTRAP_SERVERS=$(cluster_bootstrap) H200_REPLICATION_FACTOR=$(cluster_replication) H200_MIN_INSYNC_REPLICAS=$(cluster_min_isr)"
}

cluster_stop() {
    local purge=()
    while (($#)); do
        case "$1" in
            --purge) purge=(--purge) ;;
            -h | --help) usage; exit 0 ;;
            *) die "unknown option '$1' for cluster-stop (see --help)." ;;
        esac
        shift
    done
    cluster_check
    cluster_lock
    local i failed=0
    local -a pids=()
    # All at once: a broker asks the active controller to let it go; stopped one by one, the last ones
    # would wait for a quorum that is gone until KAFKA_STOP_TIMEOUT and its SIGKILL.
    for ((i = 1; i <= KAFKA_NODES; i++)); do
        [[ -d "$KAFKA_CLUSTER_DIR/node-$i" ]] || continue
        cluster_node "$i" stop "${purge[@]}" &
        pids+=("$!")
    done
    ((${#pids[@]})) || info "no cluster in $KAFKA_CLUSTER_DIR (nothing to stop)."
    for i in "${pids[@]}"; do wait "$i" || failed=1; done
    ((failed == 0)) || die "not every node of the cluster stopped (see above)."
    if ((${#purge[@]})); then
        [[ "$KAFKA_CLUSTER_DIR" != "/" && "$KAFKA_CLUSTER_DIR" != "$REPO_ROOT" && "$KAFKA_CLUSTER_DIR" != "$HOME" ]] ||
            die "refusing to delete KAFKA_CLUSTER_DIR=$KAFKA_CLUSTER_DIR."
        rm -rf "$KAFKA_CLUSTER_DIR"
        info "deleted $KAFKA_CLUSTER_DIR."
    fi
}

cluster_status() {
    cluster_check
    local i rc=0
    for ((i = 1; i <= KAFKA_NODES; i++)); do
        cluster_node "$i" status || rc=1
    done
    resolve_java
    if ((rc == 0)) && probe "$KAFKA_CLUSTER_PORT" "$KAFKA_NODES"; then
        info "cluster of $KAFKA_NODES: all brokers unfenced; bootstrap $(cluster_bootstrap)"
        return 0
    fi
    info "cluster of $KAFKA_NODES: not every node runs and serves (bootstrap $(cluster_bootstrap))"
    return 1
}

main() {
    (($#)) || { usage >&2; exit 2; }
    local cmd="$1"
    shift
    case "$cmd" in
        start) cmd_start "$@" ;;
        stop) cmd_stop "$@" ;;
        status) cmd_status "$@" ;;
        wait) cmd_wait "$@" ;;
        logs) cmd_logs "$@" ;;
        bootstrap) if our_pid >/dev/null; then echo "127.0.0.1:$(running_port)"; else echo "127.0.0.1:$KAFKA_PORT"; fi ;;
        cluster-start) cluster_start "$@" ;;
        cluster-stop) cluster_stop "$@" ;;
        cluster-status) cluster_status "$@" ;;
        cluster-bootstrap) cluster_check; cluster_bootstrap ;;
        -h | --help | help) usage ;;
        *) usage >&2; die "unknown command '$cmd' (expected start, stop, status, wait, logs, bootstrap or cluster-start, cluster-stop, cluster-status, cluster-bootstrap)." ;;
    esac
}

main "$@"
