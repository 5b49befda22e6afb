#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Fetches the Apache Kafka broker + tools jars (and their dependencies) listed in infra/kafka/pom.xml
# from Maven Central into infra/kafka/.cache/libs, the class path kafka.sh runs the broker from.
# Maven runs only when .cache/libs is missing/empty or pom.xml changed since the last successful build
# (compared by the sha256 recorded in .cache/libs.stamp).
set -euo pipefail

PROG="fetch-jars.sh"
# shellcheck source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

KAFKA_DIR="$REPO_ROOT/infra/kafka"
POM="$KAFKA_DIR/pom.xml"
CACHE_DIR="$KAFKA_DIR/.cache"
LIBS_DIR="$CACHE_DIR/libs"
STAMP="$CACHE_DIR/libs.stamp"     # holds the sha256 of the pom.xml the libs were built from
LOCK="$CACHE_DIR/fetch.lock"

usage() {
    cat <<EOF
Usage: infra/kafka/fetch-jars.sh [options] [-- extra maven arguments]

Copies the Kafka broker/tools jars named in infra/kafka/pom.xml and their dependencies into
  $LIBS_DIR
by running 'mvn package' there. Maven runs only when that directory is missing or empty, or when
pom.xml differs from the one of the last successful build (its sha256 is kept in .cache/libs.stamp,
so a mere touch does not trigger a rebuild); otherwise the
existing jars are reused and only Java is checked. Needs Java >= 17 (JAVA_HOME or java on PATH)
and, when a build is needed, Maven (mvn on PATH) with access to Maven Central or a filled ~/.m2.

Options:
  -f, --force           rebuild even if the jars are up to date
  -v, --verbose         show Maven's output (drops -q)
  -o, --offline         pass -o to Maven (use only the local ~/.m2 repository)
  --maven-args "ARGS"   Maven arguments to use instead of the default "-q -B" (quiet, batch mode)
  --quiet               print nothing when the jars are already up to date
  -h, --help            show this help

Environment:
  JAVA_HOME             Java to check/use (else java on PATH)
  MVN                   Maven executable (default: mvn)
  MVN_ARGS              same as --maven-args (default: "-q -B")
  MAVEN_OPTS            JVM options for Maven itself (read by mvn)
  FETCH_TIMEOUT         give up on Maven after this many seconds (default: 900)

Prints the directory holding the jars on success.
EOF
}

FORCE=0
QUIET_IF_FRESH=0
MVN="${MVN:-mvn}"
MVN_ARGS="${MVN_ARGS:--q -B}"
FETCH_TIMEOUT="${FETCH_TIMEOUT:-900}"
EXTRA_ARGS=()
OFFLINE=0
VERBOSE=0

while (($#)); do
    case "$1" in
        -h | --help) usage; exit 0 ;;
        -f | --force) FORCE=1 ;;
        -v | --verbose) VERBOSE=1 ;;
        -o | --offline) OFFLINE=1 ;;
        --quiet) QUIET_IF_FRESH=1 ;;
        --maven-args)
            (($# >= 2)) || die "--maven-args needs a value, e.g. --maven-args \"-B -e\"."
            MVN_ARGS="$2"; shift ;;
        --maven-args=*) MVN_ARGS="${1#*=}" ;;
        --) shift; EXTRA_ARGS=("$@"); break ;;
        *) usage >&2; die "unknown argument '$1' (see --help)." ;;
    esac
    shift
done
is_uint "$FETCH_TIMEOUT" || die "FETCH_TIMEOUT='$FETCH_TIMEOUT' is not a number of seconds."

[[ -f "$POM" ]] || die "$POM is missing; it lists the jars to fetch." "Restore it (git checkout infra/kafka/pom.xml)."

resolve_java

pom_hash() { sha256sum "$POM" | cut -d' ' -f1; }

libs_present() {
    compgen -G "$LIBS_DIR/kafka_2.13-*.jar" >/dev/null && compgen -G "$LIBS_DIR/kafka-clients-*.jar" >/dev/null
}

# needs_build : true (0) when Maven must run; prints the reason.
needs_build() {
    if ((FORCE)); then echo "--force given"; return 0; fi
    if ! libs_present; then echo "no Kafka jars in $LIBS_DIR yet"; return 0; fi
    if [[ ! -f "$STAMP" ]]; then echo "no build stamp ($STAMP), so their origin is unknown"; return 0; fi
    # Compare contents, not mtimes: file-system timestamps are coarse, and a checkout can leave an
    # older pom.xml with a newer mtime (or the reverse).
    if [[ "$(cat "$STAMP")" != "$(pom_hash)" ]]; then
        echo "pom.xml changed since the last build"
        return 0
    fi
    return 1
}

report() {
    local version n
    version="$(basename "$(compgen -G "$LIBS_DIR/kafka_2.13-*.jar" | head -n 1)" .jar)"
    version="${version#kafka_2.13-}"
    n="$(compgen -G "$LIBS_DIR/*.jar" | wc -l)"
    info "Kafka $version jars ($n files) are in $LIBS_DIR (Java $JAVA_VERSION: $JAVA)"
}

mkdir -p "$CACHE_DIR"
# Serialise concurrent runs (e.g. make -j): wait for another fetch to finish, then re-check.
exec 9>"$LOCK"
if ! flock -w "$FETCH_TIMEOUT" 9; then
    die "another fetch-jars.sh has held $LOCK for more than ${FETCH_TIMEOUT} s." \
        "Wait for it to finish, or remove the lock file if no fetch-jars.sh is running."
fi

if ! reason="$(needs_build)"; then
    ((QUIET_IF_FRESH)) || report
    exit 0
fi

command -v "$MVN" >/dev/null 2>&1 || die "Maven ('$MVN') was not found on PATH, and it is needed because $reason." \
    "Install it (as root: apt-get install -y maven), or set MVN to the mvn executable," \
    "or copy a populated .cache/libs from another checkout."

info "fetching Kafka jars with Maven ($reason) ..."

# Build into a fresh directory so jars of an older version never linger on the class path; keep the
# previous set aside and put it back if Maven fails.
OLD_DIR=""
if [[ -d "$LIBS_DIR" ]]; then
    OLD_DIR="$CACHE_DIR/libs.previous.$$"
    mv "$LIBS_DIR" "$OLD_DIR"
fi
restore_old() {
    rm -rf "$LIBS_DIR"
    [[ -n "$OLD_DIR" && -d "$OLD_DIR" ]] && mv "$OLD_DIR" "$LIBS_DIR"
    return 0
}
trap 'restore_old' INT TERM

# shellcheck disable=SC2206   # MVN_ARGS is a list of words by design
args=($MVN_ARGS)
if ((VERBOSE)); then
    filtered=()
    for a in "${args[@]}"; do [[ "$a" == "-q" || "$a" == "--quiet" ]] || filtered+=("$a"); done
    args=("${filtered[@]}")
fi
((OFFLINE)) && args+=(-o)

rc=0
# Debian's Maven 3.8 prints bare ANSI colour resets even in batch mode; strip escape sequences.
# (pipefail: rc is Maven's/timeout's status, not sed's.)
(cd "$KAFKA_DIR" || exit 1
 timeout "$FETCH_TIMEOUT" "$MVN" "${args[@]}" "${EXTRA_ARGS[@]}" package 2>&1 | sed -u $'s/\x1b\\[[0-9;]*m//g') || rc=$?
rm -rf "$KAFKA_DIR/target"

if ((rc != 0)) || ! libs_present; then
    restore_old
    trap - INT TERM
    if ((rc == 124)); then
        die "Maven did not finish within ${FETCH_TIMEOUT} s." "Check network access to Maven Central (https://repo.maven.apache.org), or raise FETCH_TIMEOUT."
    fi
    die "the Maven build in $KAFKA_DIR failed (exit $rc)${OLD_DIR:+; the previous jars were kept}." \
        "Run 'infra/kafka/fetch-jars.sh --verbose' to see Maven's output." \
        "Usual causes: no network access to Maven Central (https://repo.maven.apache.org; try --offline if ~/.m2 is filled)," \
        "or a proxy that needs MAVEN_OPTS=\"-Dhttps.proxyHost=... -Dhttps.proxyPort=...\"."
fi
trap - INT TERM
[[ -n "$OLD_DIR" ]] && rm -rf "$OLD_DIR"
pom_hash >"$STAMP"
report
