# shellcheck shell=bash
# Shared helpers for the scripts under infra/ (kafka.sh, redis.sh, fetch-jars.sh).
# Source it after setting PROG; it defines functions and REPO_ROOT and changes no shell options.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PROG="${PROG:-$(basename "$0")}"

info() { printf '%s: %s\n' "$PROG" "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
# die MESSAGE... : print an error to stderr and exit 1.
die() {
    printf '%s: error: %s\n' "$PROG" "$1" >&2
    shift
    local line
    for line in "$@"; do printf '  %s\n' "$line" >&2; done
    exit 1
}

# is_uint VALUE : true when VALUE is a non-negative decimal integer.
is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }

# check_port NAME VALUE : die unless VALUE is a TCP port number.
check_port() {
    if ! is_uint "$2" || (( $2 < 1 || $2 > 65535 )); then
        die "$1='$2' is not a valid TCP port." "Set $1 to a free port number between 1 and 65535, or unset it to use the default."
    fi
}

# pid_alive PID : true when PID exists and is not a zombie (an exited process nobody reaped yet).
pid_alive() {
    local pid="$1" stat state
    is_uint "$pid" || return 1
    stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
    # Field 3 is the state; field 2 (comm) may contain spaces, so cut after the last ')'.
    state="${stat##*) }"
    state="${state%% *}"
    [[ "$state" != Z && "$state" != X ]]
}

# read_pidfile FILE : print the pid stored in FILE (first line), or nothing.
read_pidfile() {
    local pid=""
    [[ -f "$1" ]] && read -r pid 2>/dev/null <"$1" || true
    is_uint "$pid" && printf '%s\n' "$pid"
    return 0
}

# proc_cmdline PID : the command line of PID with NULs turned into spaces.
# (Trailing blanks are dropped: redis-server pads its rewritten process title with spaces.)
proc_cmdline() { tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | sed 's/ *$//' || true; }

# port_in_use PORT [HOST] : true when something accepts TCP connections on HOST:PORT (default 127.0.0.1).
# A listener on 0.0.0.0 or [::] also answers on 127.0.0.1, so this catches those too.
port_in_use() {
    local port="$1" host="${2:-127.0.0.1}"
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$host" "$port" 2>/dev/null
}

# suggest_free_port PORT : print a port near PORT+10000 that is free, together with the next one
# (so it also fits a KAFKA_PORT/KAFKA_CONTROLLER_PORT pair); prints PORT+10000 if none is found.
suggest_free_port() {
    local base="$1" off cand
    for off in 10000 20000 30000 1000 2000 100 200; do
        cand=$((base + off))
        ((cand < 65535)) || continue
        if ! port_in_use "$cand" && ! port_in_use "$((cand + 1))"; then
            printf '%s\n' "$cand"
            return 0
        fi
    done
    printf '%s\n' "$(((base + 10000) % 65535))"
}

# port_owner PORT : a short description of the process listening on PORT, if ss can tell.
port_owner() {
    local port="$1" line
    command -v ss >/dev/null 2>&1 || { echo "an unknown process"; return 0; }
    line="$(ss -Hltnp "sport = :$port" 2>/dev/null | head -n 1)"
    if [[ "$line" =~ users:\(\(\"([^\"]*)\",pid=([0-9]+) ]]; then
        local name="${BASH_REMATCH[1]}" pid="${BASH_REMATCH[2]}"
        printf '%s (pid %s: %s)\n' "$name" "$pid" "$(proc_cmdline "$pid" | cut -c1-160)"
    else
        echo "an unknown process"
    fi
}

# port_owner_pid PORT : the pid of the process listening on PORT, or nothing.
port_owner_pid() {
    local line
    command -v ss >/dev/null 2>&1 || return 0
    line="$(ss -Hltnp "sport = :$1" 2>/dev/null | head -n 1)"
    [[ "$line" =~ pid=([0-9]+) ]] && printf '%s\n' "${BASH_REMATCH[1]}"
    return 0
}

# stop_pid PID TIMEOUT_S WHAT : SIGTERM, wait up to TIMEOUT_S seconds, then SIGKILL and wait up to 10 s.
# The caller must have checked that PID is ours. Returns 1 if the process still exists after SIGKILL.
stop_pid() {
    local pid="$1" timeout_s="$2" what="$3" i
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout_s * 10; i++)); do
        pid_alive "$pid" || return 0
        sleep 0.1
    done
    warn "$what (pid $pid) did not exit within ${timeout_s} s after SIGTERM; sending SIGKILL."
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        pid_alive "$pid" || return 0
        sleep 0.1
    done
    return 1
}

# file_size FILE : size of FILE in bytes (0 if missing).
file_size() { stat -c %s "$1" 2>/dev/null || echo 0; }

# tail_file FILE N LABEL [FROM_BYTE] : print the last N lines of FILE to stderr, framed, if it is not
# empty. With FROM_BYTE, only what was written after that offset (e.g. by this start) is considered,
# unless the file shrank (rotated), in which case the whole file is.
tail_file() {
    local file="$1" n="$2" label="$3" from="${4:-0}"
    [[ -s "$file" ]] || return 0
    (( from <= $(file_size "$file") )) || from=0
    printf -- '----- last %s lines of %s (%s) -----\n' "$n" "$file" "$label" >&2
    tail -c +"$((from + 1))" "$file" | tail -n "$n" >&2
    printf -- '----- end of %s -----\n' "$file" >&2
}

# resolve_java : set JAVA to $JAVA_HOME/bin/java or the java on PATH, and JAVA_VERSION to its major
# version; die with advice unless it exists and is at least 17.
resolve_java() {
    if [[ -n "${JAVA_HOME:-}" ]]; then
        JAVA="$JAVA_HOME/bin/java"
        [[ -x "$JAVA" ]] || die "JAVA_HOME is set to '$JAVA_HOME' but $JAVA does not exist or is not executable." \
            "Point JAVA_HOME at a JDK/JRE 17 or newer (ls /usr/lib/jvm), or unset it to use the java on PATH."
    else
        JAVA="$(command -v java 2>/dev/null || true)"
        [[ -n "$JAVA" ]] || die "java was not found on PATH and JAVA_HOME is not set; Kafka 4.x needs Java 17 or newer." \
            "Install one (as root: apt-get install -y openjdk-17-jre-headless)," \
            "or set JAVA_HOME to an installed JDK/JRE (look in /usr/lib/jvm)."
    fi
    local spec
    spec="$("$JAVA" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p' | head -n 1)"
    [[ -n "$spec" ]] || die "could not determine the version of $JAVA ('$JAVA -version' failed)." \
        "Check the Java installation, or set JAVA_HOME to a working JDK/JRE 17 or newer."
    spec="${spec#1.}"      # 1.8 -> 8
    JAVA_VERSION="${spec%%.*}"
    if ! is_uint "$JAVA_VERSION" || (( JAVA_VERSION < 17 )); then
        die "$JAVA is Java $spec, but Kafka 4.x needs Java 17 or newer." \
            "Set JAVA_HOME to a newer JDK/JRE (look in /usr/lib/jvm) or put one first on PATH."
    fi
}
