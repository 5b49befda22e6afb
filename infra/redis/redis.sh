#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Runs a private redis-server (not the system service) for development: start | stop [--purge] |
# status | cli [args...].  See --help.
set -euo pipefail

PROG="redis.sh"
# shellcheck source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

REDIS_DIR="$REPO_ROOT/infra/redis"
REDIS_CONF="$REDIS_DIR/redis.conf"

REDIS_PORT="${REDIS_PORT:-6379}"
REDIS_RUN_DIR="$(realpath -m "${REDIS_RUN_DIR:-$REPO_ROOT/.run/redis}")"
REDIS_START_TIMEOUT="${REDIS_START_TIMEOUT:-30}"
REDIS_STOP_TIMEOUT="${REDIS_STOP_TIMEOUT:-30}"
REDIS_SERVER="${REDIS_SERVER:-redis-server}"
REDIS_CLI="${REDIS_CLI:-redis-cli}"
# No anonymous access (docs/security.md): users admin (everything), projector (reads and writes the read models, no
# admin commands, no FLUSHALL/FLUSHDB) and reader (reads only, for the CLI and the API), each with a password file.
REDIS_SECRETS_DIR="$(realpath -m "${H200_REDIS_SECRETS_DIR:-$REPO_ROOT/.run/secrets/redis}")"

usage() {
    cat <<EOF
Usage: infra/redis/redis.sh COMMAND [options]

Runs a private redis-server on 127.0.0.1 (protected mode, ACL users admin/projector/reader, no anonymous user) with its data, pid file and
log in REDIS_RUN_DIR. It never uses or changes the system Redis service (/etc/redis). Persistence:
append-only file, fsync every second, no RDB snapshots (see infra/redis/redis.conf for why).
If redis-server is not installed, 'start' installs the Debian package when run as root.

Commands:
  start [--timeout S]   start redis-server in the background (own session, survives the calling
                        shell) and wait until it answers PING; exit 0 if ours already runs.
  stop [--purge]        stop our redis-server (SIGTERM = clean SHUTDOWN, which syncs the AOF; SIGKILL
                        after REDIS_STOP_TIMEOUT s); exit 0 if it is not running.
                        --purge also deletes the persisted data (appendonlydir, dump.rdb).
  status                exit 0 = running and answering, 1 = running but not answering, 3 = not running.
  cli [ARGS...]         run redis-cli against our server, e.g. 'redis.sh cli get key' or just 'cli'.
  -h, --help            show this help

Environment (defaults in brackets):
  REDIS_PORT            port on 127.0.0.1 [6379]
  REDIS_RUN_DIR         data (AOF), pid file and log [<repo>/.run/redis]
  REDIS_START_TIMEOUT   seconds to wait for PONG in start [30]
  REDIS_STOP_TIMEOUT    seconds between SIGTERM and SIGKILL in stop [30]
  REDIS_SERVER          redis-server executable [redis-server]
  REDIS_CLI             redis-cli executable [redis-cli]

Files in \$REDIS_RUN_DIR: redis.pid, redis.log (server log), redis.out (stdout/stderr),
appendonlydir/ (data).
EOF
}

PID_FILE="$REDIS_RUN_DIR/redis.pid"
SERVER_LOG="$REDIS_RUN_DIR/redis.log"
OUT_LOG="$REDIS_RUN_DIR/redis.out"
LOCK_FILE="$REDIS_RUN_DIR/redis.lock"

with_lock() {
    mkdir -p "$REDIS_RUN_DIR"
    exec 8>"$LOCK_FILE"
    flock -w 120 8 || die "another redis.sh start/stop has held $LOCK_FILE for 2 minutes; wait for it or check for a stuck redis.sh."
}

# redis_pids : pids of all redis-server processes (to spot one the package install starts).
redis_pids() { pgrep -x redis-server 2>/dev/null || true; pgrep -f '^/usr/bin/redis-server' 2>/dev/null || true; }

install_redis() {
    if ((EUID != 0)); then
        die "redis-server (and redis-cli) are not installed, and this script installs them only as root." \
            "Install them: sudo apt-get install -y redis-server   (Debian/Ubuntu)" \
            "or put redis-server/redis-cli 7+ on PATH, or set REDIS_SERVER and REDIS_CLI to them."
    fi
    command -v apt-get >/dev/null 2>&1 || die "redis-server is not installed and there is no apt-get to install it." \
        "Install Redis 7 or newer by other means and put redis-server/redis-cli on PATH (or set REDIS_SERVER/REDIS_CLI)."
    local before after p
    before=" $(redis_pids | sort -u | tr '\n' ' ') "
    export DEBIAN_FRONTEND=noninteractive
    local apt_opts=(-y -q --no-install-recommends -o DPkg::Lock::Timeout=120)
    # Without package lists (a freshly built container) install cannot find anything: update first.
    if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
        info "no apt package lists yet; running apt-get update ..."
        timeout 600 apt-get update -q || die "apt-get update failed; check network access to the Debian mirrors."
    fi
    info "redis-server is not installed; installing the Debian package (apt-get install redis-server) ..."
    if ! timeout 900 apt-get install "${apt_opts[@]}" redis-server; then
        info "install failed; refreshing the package lists (apt-get update) and retrying ..."
        timeout 600 apt-get update -q || die "apt-get update failed; check network access to the Debian mirrors."
        timeout 900 apt-get install "${apt_opts[@]}" redis-server || die "apt-get install redis-server failed (see its output above)."
    fi
    hash -r
    if ! command -v "$REDIS_SERVER" >/dev/null 2>&1 || ! command -v "$REDIS_CLI" >/dev/null 2>&1; then
        die "the redis-server package was installed, but '$REDIS_SERVER'/'$REDIS_CLI' are still not on PATH." \
            "Set REDIS_SERVER and REDIS_CLI to the installed executables."
    fi
    # Debian's package starts the system service (port 6379, /etc/redis/redis.conf) where an init
    # system runs and policy-rc.d allows it. We do not use that instance; report it, do not kill it.
    after="$(redis_pids | sort -u)"
    for p in $after; do
        if [[ "$before" != *" $p "* ]]; then
            warn "installing the package also started the system Redis service (pid $p: $(proc_cmdline "$p"))." \
                 "This script does not use it. If it blocks port $REDIS_PORT, stop it with 'service redis-server stop'" \
                 "(and 'systemctl disable redis-server' where systemd runs), or use another REDIS_PORT."
        fi
    done
}

# our_pid : the pid of the redis-server this script started, if it still runs. A pid counts as ours
# only if it runs the redis-server binary with our run directory as its working directory (redis
# rewrites its command line, so that cannot be used), so a recycled pid is never signalled.
our_pid() {
    local pid exe want cwd
    pid="$(read_pidfile "$PID_FILE")"
    [[ -n "$pid" ]] && pid_alive "$pid" || return 1
    exe="$(readlink "/proc/$pid/exe" 2>/dev/null)" || return 1
    want="$(readlink -f "$(command -v "$REDIS_SERVER" 2>/dev/null || echo "$REDIS_SERVER")")"
    [[ "$exe" == "$want" || "$(basename "$exe")" == redis-* ]] || return 1
    cwd="$(readlink "/proc/$pid/cwd" 2>/dev/null)" || return 1
    [[ "$cwd" == "$(realpath -m "$REDIS_RUN_DIR")" ]] || return 1
    printf '%s\n' "$pid"
}

# running_port PID : the port our redis-server listens on (from its process title), else REDIS_PORT.
running_port() {
    local title
    title="$(proc_cmdline "$1")"
    if [[ "$title" =~ 127\.0\.0\.1:([0-9]+) ]]; then echo "${BASH_REMATCH[1]}"; else echo "$REDIS_PORT"; fi
}

# redis_secret NAME : the password of Redis user NAME, generated (48 hex digits, mode 0600) if it has none yet.
redis_secret() {
    local file="$REDIS_SECRETS_DIR/$1"
    if [[ ! -s "$file" ]]; then
        (umask 077 && mkdir -p "$REDIS_SECRETS_DIR" && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$file.tmp.$$" &&
            echo >>"$file.tmp.$$" && mv -n "$file.tmp.$$" "$file" && rm -f "$file.tmp.$$")
    fi
    tr -d '[:space:]' <"$file"
}

# write_acl FILE : the users of this server (the same rules as infra/images/redis/entrypoint.sh).
write_acl() {
    # The default user is off (no client can act as it) but holds every permission: Redis 7.0-7.2 replays the AOF
    # as that user and re-checks a MULTI/EXEC's commands against it, so with no permissions every transaction (and
    # every script that wrote twice, the projector's) was dropped on restart, silently (redis/redis#14541).
    (umask 077 && cat >"$1" <<ACL
user default off ~* &* +@all
user admin on >$(redis_secret admin) ~* &* +@all
user projector on >$(redis_secret projector) ~* &* +@all -@admin -flushall -flushdb
user reader on >$(redis_secret reader) ~* &* -@all +@read +@connection +multi +exec +discard +eval_ro +evalsha_ro +script|load +script|exists
ACL
    )
}

# ping PORT : succeed when the server on PORT answers PONG (not LOADING, not an error), logged in as admin.
ping_redis() {
    local out
    out="$(REDISCLI_AUTH="$(redis_secret admin)" timeout 3 "$REDIS_CLI" --no-auth-warning --user admin -h 127.0.0.1 -p "$1" ping 2>/dev/null)" || return 1
    [[ "$out" == PONG ]]
}

redis_version() { "$REDIS_SERVER" --version 2>/dev/null | sed -n 's/.*v=\([0-9.]*\).*/\1/p'; }

SERVER_LOG_FROM=0
OUT_LOG_FROM=0
show_logs_on_failure() {
    tail_file "$SERVER_LOG" 30 "redis log" "$SERVER_LOG_FROM"
    tail_file "$OUT_LOG" 30 "stdout/stderr" "$OUT_LOG_FROM"
}

check_timeout_value() {
    is_uint "$2" && (($2 > 0)) || die "$1='$2' is not a positive number of seconds."
}

explain_busy_port() {
    local port="$1" owner owner_pid hint
    local -a lines=()
    owner="$(port_owner "$port")"
    owner_pid="$(port_owner_pid "$port")"
    if [[ "$owner" == redis* ]] || ping_redis "$port"; then
        hint="A Redis server not started by this script answers there"
        if [[ -n "$owner_pid" ]] && { [[ "$(proc_cmdline "$owner_pid")" == *"/etc/redis"* ]] ||
            [[ "$(readlink "/proc/$owner_pid/cwd" 2>/dev/null)" == /var/lib/redis* ]]; }; then
            hint="$hint: it is the system service from the Debian package (stop it with 'service redis-server stop')"
        fi
        lines+=("$hint.")
    fi
    lines+=("Stop that process, or choose another port, e.g.: REDIS_PORT=$(suggest_free_port "$port") $0 start")
    die "port $port on 127.0.0.1 (REDIS_PORT) is already in use by $owner, so our redis-server cannot listen there." "${lines[@]}"
}

ensure_installed() {
    if ! command -v "$REDIS_SERVER" >/dev/null 2>&1 || ! command -v "$REDIS_CLI" >/dev/null 2>&1; then
        if [[ "$REDIS_SERVER" != redis-server || "$REDIS_CLI" != redis-cli ]]; then
            die "REDIS_SERVER='$REDIS_SERVER' or REDIS_CLI='$REDIS_CLI' is not an executable." \
                "Fix those variables, or unset them to use (and if needed install) the Debian redis-server package."
        fi
        install_redis
    fi
}

cmd_start() {
    local timeout_s="$REDIS_START_TIMEOUT"
    while (($#)); do
        case "$1" in
            --timeout) (($# >= 2)) || die "--timeout needs a number of seconds."; timeout_s="$2"; shift ;;
            --timeout=*) timeout_s="${1#*=}" ;;
            -h | --help) usage; exit 0 ;;
            *) die "unknown option '$1' for start (see --help)." ;;
        esac
        shift
    done
    check_timeout_value REDIS_START_TIMEOUT "$timeout_s"
    check_port REDIS_PORT "$REDIS_PORT"
    [[ -f "$REDIS_CONF" ]] || die "$REDIS_CONF is missing." "Restore it with git checkout infra/redis/redis.conf."
    ensure_installed
    local version
    version="$(redis_version)"
    if [[ "${version%%.*}" =~ ^[0-9]+$ ]] && ((${version%%.*} < 7)); then
        die "$REDIS_SERVER is Redis $version, but infra/redis/redis.conf needs Redis 7 or newer (multi-part AOF, appenddirname)." \
            "Install a newer redis-server, or set REDIS_SERVER/REDIS_CLI to one."
    fi

    with_lock
    local pid port
    if pid="$(our_pid)"; then
        port="$(running_port "$pid")"
        info "Redis is already running (pid $pid) on 127.0.0.1:$port; not starting another."
        [[ "$port" == "$REDIS_PORT" ]] || warn "it listens on $port, not on REDIS_PORT=$REDIS_PORT; run '$0 stop' first to change ports."
        REDIS_PORT="$port"
    else
        rm -f "$PID_FILE"
        if port_in_use "$REDIS_PORT"; then explain_busy_port "$REDIS_PORT"; fi
        mkdir -p "$REDIS_RUN_DIR"
        local run_dir
        run_dir="$(realpath -m "$REDIS_RUN_DIR")"
        SERVER_LOG_FROM="$(file_size "$SERVER_LOG")"
        OUT_LOG_FROM="$(file_size "$OUT_LOG")"
        printf '\n===== %s redis.sh start (port %s) =====\n' "$(date '+%F %T')" "$REDIS_PORT" >>"$OUT_LOG"
        write_acl "$run_dir/users.acl"
        # setsid: own session, no controlling terminal, survives the calling shell. The inner shell
        # enters the run directory, writes its pid and execs redis-server, so the pid file is the server's.
        # shellcheck disable=SC2016
        setsid bash -c 'cd "$0" && echo $$ >"$1" && shift && exec "$@"' "$run_dir" "$PID_FILE" \
            "$REDIS_SERVER" "$REDIS_CONF" --port "$REDIS_PORT" --dir "$run_dir" --logfile "$SERVER_LOG" \
            --aclfile "$run_dir/users.acl" \
            </dev/null >>"$OUT_LOG" 2>&1 8>&- &
        local i
        pid=""
        for ((i = 0; i < 100; i++)); do
            pid="$(read_pidfile "$PID_FILE")"
            [[ -n "$pid" ]] && break
            sleep 0.05
        done
        [[ -n "$pid" ]] || { show_logs_on_failure; die "redis-server did not start (no pid written to $PID_FILE)."; }
        info "started redis-server (pid $pid); waiting up to ${timeout_s} s for PONG on 127.0.0.1:$REDIS_PORT ..."
    fi

    local deadline=$((SECONDS + timeout_s))
    while ((SECONDS < deadline)); do
        if ! pid_alive "$pid"; then
            rm -f "$PID_FILE"
            show_logs_on_failure
            die "redis-server exited during start-up; its log is shown above ($SERVER_LOG)." \
                "If it reports a damaged AOF in $REDIS_RUN_DIR/appendonlydir, repair it with redis-check-aof --fix," \
                "or delete the data with '$0 stop --purge' and rebuild the read model from Kafka."
        fi
        if ping_redis "$REDIS_PORT"; then
            info "Redis $(redis_version) ready on 127.0.0.1:$REDIS_PORT (data in $REDIS_RUN_DIR)"
            info "users admin, projector, reader (passwords in $REDIS_SECRETS_DIR): e.g. H200_REDIS_URL=redis://reader@127.0.0.1:$REDIS_PORT/0"
            return 0
        fi
        sleep 0.2
    done
    show_logs_on_failure
    die "redis-server (pid $pid) did not answer PING on 127.0.0.1:$REDIS_PORT within ${timeout_s} s; it is left running" \
        "(a large AOF may still be loading). Check '$0 status', raise REDIS_START_TIMEOUT, or stop it with '$0 stop'."
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
    check_timeout_value REDIS_STOP_TIMEOUT "$REDIS_STOP_TIMEOUT"
    with_lock
    local pid
    if pid="$(our_pid)"; then
        info "stopping redis-server (pid $pid) ..."
        # SIGTERM makes Redis shut down cleanly: the AOF is flushed and fsynced before it exits.
        if ! stop_pid "$pid" "$REDIS_STOP_TIMEOUT" "redis-server"; then
            die "redis-server (pid $pid) is still there after SIGKILL; check 'ps -o pid,stat,cmd -p $pid'."
        fi
        info "Redis stopped."
    else
        info "Redis is not running (nothing to stop)."
    fi
    rm -f "$PID_FILE"
    if ((purge)); then
        rm -rf "$REDIS_RUN_DIR/appendonlydir" "$REDIS_RUN_DIR/dump.rdb"
        info "deleted the Redis data in $REDIS_RUN_DIR (appendonlydir, dump.rdb)."
    fi
}

cmd_status() {
    local pid port
    if pid="$(our_pid)"; then
        port="$(running_port "$pid")"
        if ping_redis "$port"; then
            local keys
            keys="$(REDISCLI_AUTH="$(redis_secret admin)" timeout 3 "$REDIS_CLI" --no-auth-warning --user admin -h 127.0.0.1 -p "$port" dbsize 2>/dev/null || echo '?')"
            info "Redis $(redis_version) is running (pid $pid) and answering on 127.0.0.1:$port ($keys keys in db 0; data in $REDIS_RUN_DIR)."
            return 0
        fi
        info "Redis is running (pid $pid) but does not answer PING on 127.0.0.1:$port (loading data, or stuck; see $SERVER_LOG)."
        return 1
    fi
    if port_in_use "$REDIS_PORT"; then
        info "Redis is not running from this checkout ($REDIS_RUN_DIR), but port $REDIS_PORT is in use by $(port_owner "$REDIS_PORT")."
    else
        info "Redis is not running."
    fi
    return 3
}

cmd_cli() {
    command -v "$REDIS_CLI" >/dev/null 2>&1 || die "redis-cli ('$REDIS_CLI') is not installed; run '$0 start' (installs it as root) or set REDIS_CLI."
    local pid port="$REDIS_PORT"
    if pid="$(our_pid)"; then port="$(running_port "$pid")"; fi
    REDISCLI_AUTH="$(redis_secret admin)" exec "$REDIS_CLI" --no-auth-warning --user admin -h 127.0.0.1 -p "$port" "$@"
}

main() {
    (($#)) || { usage >&2; exit 2; }
    local cmd="$1"
    shift
    case "$cmd" in
        start) cmd_start "$@" ;;
        stop) cmd_stop "$@" ;;
        status) cmd_status "$@" ;;
        cli) cmd_cli "$@" ;;
        -h | --help | help) usage ;;
        *) usage >&2; die "unknown command '$cmd' (expected start, stop, status or cli)." ;;
    esac
}

main "$@"
