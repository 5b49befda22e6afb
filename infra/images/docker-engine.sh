#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine, start one if not.
#
#   infra/images/docker-engine.sh ensure   # install docker.io if needed (root), start dockerd if no engine answers
#   infra/images/docker-engine.sh status   # say which engine answers, its storage driver, who started it
#   infra/images/docker-engine.sh stop     # stop the dockerd THIS script started (by pid); leave any other alone
#
# State: .run/docker/dockerd.pid, .run/docker/dockerd.log (repo root relative).
# Environment:
#   DOCKER                      docker CLI to use (default: /usr/bin/docker if present, else `docker` on PATH)
#   H200_DOCKER_STORAGE_DRIVER  force a storage driver (default: overlay2 if an overlay mount works here, else vfs)
#   H200_DOCKER_TIMEOUT         seconds to wait for the engine to answer (default 90)
#   H200_DOCKERD_ARGS           extra arguments for dockerd
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RUN_DIR="$ROOT/.run/docker"
PID_FILE="$RUN_DIR/dockerd.pid"
LOG_FILE="$RUN_DIR/dockerd.log"
TIMEOUT="${H200_DOCKER_TIMEOUT:-90}"

log() { printf 'docker-engine: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

pick_docker_cli() {
    if [[ -n "${DOCKER:-}" ]]; then echo "$DOCKER"; return; fi
    # Debian's CLI matches Debian's daemon (API 1.41). A newer CLI (e.g. /usr/local/bin/docker 28.x) negotiates
    # down, but its `docker build` wants the buildx plugin; the Debian one uses the classic builder.
    if [[ -x /usr/bin/docker ]]; then echo /usr/bin/docker; return; fi
    command -v docker || echo docker
}
DOCKER_CLI="$(pick_docker_cli)"

engine_answers() { "$DOCKER_CLI" info >/dev/null 2>&1; }

our_pid() {
    # Prints the pid of the dockerd we started, if it still runs.
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ -d "/proc/$pid" ]] || return 1
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == dockerd ]] || return 1
    echo "$pid"
}

install_docker() {
    command -v dockerd >/dev/null 2>&1 && return 0
    [[ "$(id -u)" == 0 ]] || die "dockerd is not installed and we are not root: install docker.io (Debian) or Docker Engine, then rerun"
    log "dockerd not found: installing Debian's docker.io"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q docker.io
    command -v dockerd >/dev/null 2>&1 || die "apt-get install docker.io did not provide dockerd"
}

ensure_cgroups() {
    # dockerd needs a mounted cgroup hierarchy (v1 or v2).
    if [[ -e /sys/fs/cgroup/cgroup.controllers ]] || compgen -G "/sys/fs/cgroup/*/tasks" >/dev/null \
        || compgen -G "/sys/fs/cgroup/*/cgroup.procs" >/dev/null; then
        return 0
    fi
    log "no cgroup hierarchy under /sys/fs/cgroup: mounting cgroup2"
    mkdir -p /sys/fs/cgroup
    mount -t cgroup2 none /sys/fs/cgroup || log "WARNING: could not mount cgroup2; dockerd may fail"
}

data_root() {
    local dr="/var/lib/docker"
    # honour a data-root from daemon.json or H200_DOCKERD_ARGS if given
    if [[ "${H200_DOCKERD_ARGS:-}" =~ --data-root[=\ ]([^ ]+) ]]; then dr="${BASH_REMATCH[1]}"; fi
    echo "$dr"
}

overlay_works() {
    # Try a real overlay mount on the filesystem that will hold the images.
    local base t rc=1
    base="$(data_root)"
    mkdir -p "$base"
    t="$(mktemp -d "$base/.overlay-probe.XXXXXX")" || return 1
    mkdir -p "$t/lower" "$t/upper" "$t/work" "$t/merged"
    echo probe >"$t/lower/f"
    if mount -t overlay overlay -o "lowerdir=$t/lower,upperdir=$t/upper,workdir=$t/work" "$t/merged" 2>/dev/null; then
        if echo x >>"$t/merged/f" 2>/dev/null && [[ -f "$t/upper/f" ]]; then rc=0; fi
        umount "$t/merged" 2>/dev/null || umount -l "$t/merged" 2>/dev/null || true
    fi
    rm -rf "$t"
    return $rc
}

choose_storage_driver() {
    if [[ -n "${H200_DOCKER_STORAGE_DRIVER:-}" ]]; then echo "$H200_DOCKER_STORAGE_DRIVER"; return; fi
    if [[ -f /etc/docker/daemon.json ]] && grep -q '"storage-driver"' /etc/docker/daemon.json; then
        echo ""; return   # configured by the admin: don't fight it
    fi
    if overlay_works; then echo overlay2; else echo vfs; fi
}

iptables_args() {
    # dockerd programs NAT/filter rules with `iptables`. If that binary cannot talk to the kernel (nf_tables missing,
    # legacy tables missing), run without iptables: ports published on 127.0.0.1 then go through docker-proxy.
    if ! command -v iptables >/dev/null 2>&1; then echo "--iptables=false"; return; fi
    if iptables -t nat -L -n >/dev/null 2>&1 && iptables -t filter -L -n >/dev/null 2>&1; then echo ""; return; fi
    log "WARNING: 'iptables -t nat -L' fails here; starting dockerd with --iptables=false (userland proxy only)"
    echo "--iptables=false"
}

start_dockerd() {
    local driver="$1" extra="$2"
    mkdir -p "$RUN_DIR"
    local args=()
    [[ -n "$driver" ]] && args+=("--storage-driver=$driver")
    # both are lists of words by design
    # shellcheck disable=SC2206
    [[ -n "$extra" ]] && args+=($extra)
    # shellcheck disable=SC2206
    [[ -n "${H200_DOCKERD_ARGS:-}" ]] && args+=(${H200_DOCKERD_ARGS})
    {
        echo "==== $(date -Is) starting: dockerd ${args[*]}"
    } >>"$LOG_FILE"
    log "starting dockerd ${args[*]} (log: $LOG_FILE)"
    setsid nohup dockerd "${args[@]}" >>"$LOG_FILE" 2>&1 </dev/null &
    echo $! >"$PID_FILE"
}

wait_engine() {
    # returns 0 when the engine answers, 1 if our dockerd died, 2 on timeout
    local deadline=$((SECONDS + TIMEOUT)) pid
    pid="$(cat "$PID_FILE")"
    while ((SECONDS < deadline)); do
        if engine_answers; then return 0; fi
        if [[ ! -d "/proc/$pid" ]]; then return 1; fi
        sleep 0.5
    done
    return 2
}

cmd_ensure() {
    install_docker
    if engine_answers; then
        log "engine answers ($("$DOCKER_CLI" info --format '{{.ServerVersion}}, storage {{.Driver}}' 2>/dev/null))"
        return 0
    fi
    if pid="$(our_pid)"; then
        log "dockerd (pid $pid) started earlier is not answering yet; waiting"
        if wait_engine; then log "engine answers"; return 0; fi
        die "dockerd pid $pid does not answer after ${TIMEOUT}s. Last log lines:
$(tail -n 30 "$LOG_FILE" 2>/dev/null)"
    fi
    if [[ -S /var/run/docker.sock ]] && pgrep -x dockerd >/dev/null 2>&1; then
        die "a dockerd runs (pid $(pgrep -x dockerd | tr '\n' ' ')) but '$DOCKER_CLI info' fails: $("$DOCKER_CLI" info 2>&1 | tail -n 3)"
    fi
    [[ "$(id -u)" == 0 ]] || die "no Docker engine answers and we are not root, so we cannot start dockerd"
    ensure_cgroups
    local driver extra rc
    driver="$(choose_storage_driver)"
    extra="$(iptables_args)"
    start_dockerd "$driver" "$extra"
    rc=0; wait_engine || rc=$?
    if ((rc == 1)) && [[ "$driver" != vfs ]] && tail -n 40 "$LOG_FILE" | grep -qiE 'overlay|graphdriver|storage.driver'; then
        log "dockerd died with a storage-driver error using '$driver'; retrying with vfs"
        driver=vfs
        start_dockerd "$driver" "$extra"
        rc=0; wait_engine || rc=$?
    fi
    if ((rc == 1)) && [[ -z "$extra" ]] && tail -n 40 "$LOG_FILE" | grep -qiE 'iptables|nf_tables|nat'; then
        log "dockerd died with an iptables error; retrying with --iptables=false"
        extra="--iptables=false"
        start_dockerd "$driver" "$extra"
        rc=0; wait_engine || rc=$?
    fi
    case $rc in
        0) log "engine answers ($("$DOCKER_CLI" info --format '{{.ServerVersion}}, storage {{.Driver}}' 2>/dev/null)), pid $(cat "$PID_FILE")" ;;
        1) die "dockerd exited during startup. Last log lines ($LOG_FILE):
$(tail -n 30 "$LOG_FILE")" ;;
        *) die "dockerd (pid $(cat "$PID_FILE")) did not answer within ${TIMEOUT}s. Last log lines ($LOG_FILE):
$(tail -n 30 "$LOG_FILE")" ;;
    esac
}

cmd_stop() {
    local pid
    if ! pid="$(our_pid)"; then
        log "no dockerd started by this script is running (pid file: $PID_FILE); nothing stopped"
        rm -f "$PID_FILE"
        return 0
    fi
    log "stopping dockerd pid $pid"
    kill -TERM "$pid"
    for _ in $(seq 1 60); do
        [[ -d "/proc/$pid" ]] || break
        sleep 0.5
    done
    if [[ -d "/proc/$pid" ]]; then
        log "dockerd pid $pid still alive after 30s; sending SIGKILL"
        kill -KILL "$pid" || true
    fi
    rm -f "$PID_FILE"
    log "stopped"
}

cmd_status() {
    local pid=""
    pid="$(our_pid || true)"
    if engine_answers; then
        echo "engine: answers via $DOCKER_CLI ($("$DOCKER_CLI" info --format 'server {{.ServerVersion}}, storage {{.Driver}}, cgroup v{{.CgroupVersion}}' 2>/dev/null))"
    else
        echo "engine: NOT answering via $DOCKER_CLI"
    fi
    if [[ -n "$pid" ]]; then
        echo "dockerd started by this script: pid $pid (log $LOG_FILE)"
    else
        echo "dockerd started by this script: none"
    fi
    engine_answers
}

case "${1:-}" in
    ensure) cmd_ensure ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) echo "usage: $0 ensure|stop|status" >&2; exit 2 ;;
esac
