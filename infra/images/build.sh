#!/usr/bin/env bash
# Build every container image this project runs, locally and idempotently (no registry needed).
#
#   infra/images/build.sh            # base (debootstrap + docker import, skipped if present), kafka, redis, services
#   infra/images/build.sh base|kafka|redis|services ...   # only these (each builds the base first if it is missing)
#
# Image names (the only place they come from; the test fixtures read the same variables):
#   H200_BASE_IMAGE   default h200/debian-base:bookworm  Debian bookworm minbase + openjdk-17-jre-headless,
#                                                        redis-server, python3, python3-venv, ca-certificates, procps
#   H200_KAFKA_IMAGE  default h200/kafka:4.4.0           single-node KRaft broker (see infra/images/kafka/entrypoint.sh)
#   H200_REDIS_IMAGE  default h200/redis:7               redis-server on 0.0.0.0 inside the container
#   H200_SERVICES_IMAGE default h200/services:dev        the project in a venv (infra/images/services/Dockerfile):
#                                                        the services, the projector and the ops tools
# A user with a registry may point these at other images (e.g. H200_KAFKA_IMAGE=apache/kafka:4.1.0) and skip
# this script; the fixtures then use the official image's KAFKA_* environment (see tests/conftest.py).
#
# Other knobs:
#   H200_DEBIAN_MIRROR   mirror for debootstrap (default: the bookworm mirror of this machine's apt sources)
#   H200_REBUILD_BASE=1  re-run debootstrap and re-import the base image even if they exist
#   DOCKER               docker CLI (default /usr/bin/docker if present; builds use the classic builder)
#   H200_WHEEL_PYTHON    the Python whose pip fetches the services' wheels on the host (default .venv/bin/python,
#                        else python3); its minor version must be the image's (3.11). With the project venv, the
#                        versions it holds of the runtime dependencies' closure (infra/images/services/pins.py)
#                        become the image's constraints: the image runs the versions tested here.
# Caches: .cache/images/ (rootfs tarball, build contexts, wheels/ + wheels.key: fetched again only when
# pyproject.toml's dependencies or the venv's versions change).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/infra/images"
CACHE="$ROOT/.cache/images"
BASE_IMAGE="${H200_BASE_IMAGE:-h200/debian-base:bookworm}"
KAFKA_IMAGE="${H200_KAFKA_IMAGE:-h200/kafka:4.4.0}"
REDIS_IMAGE="${H200_REDIS_IMAGE:-h200/redis:7}"
SERVICES_IMAGE="${H200_SERVICES_IMAGE:-h200/services:dev}"
WHEELS="$CACHE/wheels"
LABEL=org.h200.image   # on every image built here; dangling (superseded) ones are pruned after a build
SUITE=bookworm
BASE_PACKAGES="openjdk-17-jre-headless,redis-server,python3,python3-venv,ca-certificates,procps"
KAFKA_LIBS="$ROOT/infra/kafka/.cache/libs"

if [[ -n "${DOCKER:-}" ]]; then :; elif [[ -x /usr/bin/docker ]]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
export DOCKER_BUILDKIT="${DOCKER_BUILDKIT:-0}"   # classic builder: no buildx plugin needed, works with any CLI

log() { printf 'build: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

image_exists() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

"$DOCKER" info >/dev/null 2>&1 || die "no Docker engine answers via $DOCKER; run: infra/images/docker-engine.sh ensure"

detect_mirror() {
    if [[ -n "${H200_DEBIAN_MIRROR:-}" ]]; then echo "$H200_DEBIAN_MIRROR"; return; fi
    local files=() f m
    [[ -f /etc/apt/sources.list ]] && files+=(/etc/apt/sources.list)
    for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do [[ -f "$f" ]] && files+=("$f"); done
    m=""
    if ((${#files[@]})); then
        # one-line format: deb [opts] URI SUITE components...; deb822: a stanza with URIs: and Suites: fields.
        m="$(for f in "${files[@]}"; do awk -v suite="$SUITE" '
            function flush() {
                if (uris != "" && types ~ /(^|[ \t])deb([ \t]|$)/) {
                    n = split(suites, s, /[ \t]+/)
                    for (i = 1; i <= n; i++) if (s[i] == suite && !found) { split(uris, u, /[ \t]+/); print u[1]; found = 1 }
                }
                uris = ""; suites = ""; types = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            /^deb[ \t]/ {
                line = $0; sub(/\[[^]]*\][ \t]*/, "", line); n = split(line, w, /[ \t]+/)
                if (w[3] == suite && !found) { print w[2]; found = 1 }
                next
            }
            tolower($1) == "uris:"   { $1 = ""; uris = $0;   sub(/^[ \t]+/, "", uris) }
            tolower($1) == "suites:" { $1 = ""; suites = $0; sub(/^[ \t]+/, "", suites) }
            tolower($1) == "types:"  { $1 = ""; types = $0 }
            END { flush() }
        ' "$f" 2>/dev/null; done | head -n1)"
    fi
    echo "${m:-http://deb.debian.org/debian}"
}

build_base() {
    local key tarball t0 have
    key="$(printf '%s|%s|minbase|v1' "$SUITE" "$BASE_PACKAGES" | sha256sum | cut -c1-12)"
    if [[ "${H200_REBUILD_BASE:-0}" != 1 ]] && image_exists "$BASE_IMAGE"; then
        have="$("$DOCKER" image inspect -f "{{ index .Config.Labels \"$LABEL.rootfs-key\" }}" "$BASE_IMAGE" 2>/dev/null || true)"
        if [[ -z "$have" || "$have" == "<no value>" || "$have" == "$key" ]]; then
            log "base image $BASE_IMAGE exists: skipping debootstrap/import"
            return 0
        fi
        log "base image $BASE_IMAGE was built from another package list (key $have, want $key): rebuilding"
    fi
    mkdir -p "$CACHE"
    tarball="$CACHE/debian-$SUITE-minbase-$key.tar"
    if [[ "${H200_REBUILD_BASE:-0}" == 1 ]]; then rm -f "$tarball"; fi
    if [[ ! -f "$tarball" ]]; then
        [[ "$(id -u)" == 0 ]] || die "debootstrap needs root (to chroot and set file owners)"
        command -v debootstrap >/dev/null 2>&1 || {
            log "installing debootstrap"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap
        }
        local mirror dir
        mirror="$(detect_mirror)"
        dir="$CACHE/rootfs-$key.tmp"
        rm -rf "$dir"
        log "debootstrap --variant=minbase --include=$BASE_PACKAGES $SUITE $dir $mirror"
        t0="$(now)"
        if ! debootstrap --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$dir" "$mirror" \
            >"$CACHE/debootstrap.log" 2>&1; then
            tail -n 30 "$CACHE/debootstrap.log" >&2
            [[ -f "$dir/debootstrap/debootstrap.log" ]] && tail -n 30 "$dir/debootstrap/debootstrap.log" >&2
            # debootstrap leaves /proc and /sys mounted in the target on some failures
            umount -l "$dir/proc" "$dir/sys" 2>/dev/null || true
            die "debootstrap failed (log: $CACHE/debootstrap.log)"
        fi
        log "debootstrap took $(elapsed "$t0")"
        # Trim and make apt usable inside image builds (no service starts from maintainer scripts).
        chroot "$dir" apt-get clean
        rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/log/*.log "$dir"/var/log/apt/* \
            "$dir"/tmp/* "$dir"/var/tmp/*
        printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
        chmod 755 "$dir/usr/sbin/policy-rc.d"
        : >"$dir/etc/machine-id"
        t0="$(now)"
        tar --numeric-owner --xattrs -C "$dir" -cf "$tarball.part" .
        mv "$tarball.part" "$tarball"
        rm -rf "$dir"
        log "rootfs tarball $tarball ($(du -h "$tarball" | cut -f1)) written in $(elapsed "$t0")"
    else
        log "using cached rootfs tarball $tarball"
    fi
    t0="$(now)"
    "$DOCKER" import \
        --change 'ENV LANG=C.UTF-8' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["/bin/bash"]' \
        --change "LABEL $LABEL=debian-base" \
        --change "LABEL $LABEL.rootfs-key=$key" \
        --message "debootstrap --variant=minbase --include=$BASE_PACKAGES $SUITE" \
        "$tarball" "$BASE_IMAGE" >/dev/null
    log "imported $BASE_IMAGE in $(elapsed "$t0")"
}

ensure_kafka_jars() {
    if [[ -x "$ROOT/infra/kafka/fetch-jars.sh" ]]; then
        "$ROOT/infra/kafka/fetch-jars.sh" --quiet >/dev/null   # idempotent; prints the libs dir on stdout
    elif ! compgen -G "$KAFKA_LIBS/kafka_2.13-*.jar" >/dev/null; then
        log "fetching Kafka jars with Maven into $KAFKA_LIBS"
        (cd "$ROOT/infra/kafka" && mvn -q -B package)
    fi
    compgen -G "$KAFKA_LIBS/kafka_2.13-*.jar" >/dev/null || die "no Kafka jars in $KAFKA_LIBS"
}

build_kafka() {
    image_exists "$BASE_IMAGE" || build_base
    ensure_kafka_jars
    local ctx="$CACHE/kafka-context" t0
    rm -rf "$ctx"
    mkdir -p "$ctx"
    cp -a "$HERE/kafka/." "$ctx/"
    # hard links: fast, and the classic builder's COPY cache keys on content, not on mtime
    cp -al "$KAFKA_LIBS" "$ctx/libs" 2>/dev/null || cp -a "$KAFKA_LIBS" "$ctx/libs"
    t0="$(now)"
    "$DOCKER" build -q --build-arg "BASE=$BASE_IMAGE" --label "$LABEL=kafka" -t "$KAFKA_IMAGE" "$ctx" >/dev/null
    log "built $KAFKA_IMAGE in $(elapsed "$t0")"
}

build_redis() {
    image_exists "$BASE_IMAGE" || build_base
    local t0
    t0="$(now)"
    "$DOCKER" build -q --build-arg "BASE=$BASE_IMAGE" --label "$LABEL=redis" -t "$REDIS_IMAGE" "$HERE/redis" >/dev/null
    log "built $REDIS_IMAGE in $(elapsed "$t0")"
}

wheel_python() {
    if [[ -n "${H200_WHEEL_PYTHON:-}" ]]; then echo "$H200_WHEEL_PYTHON"
    elif [[ -x "$ROOT/.venv/bin/python" ]]; then echo "$ROOT/.venv/bin/python"
    else command -v python3 || die "no python3 on this host to fetch the wheels with"; fi
}

# Writes requirements.txt and constraints.txt into the context $1 and makes sure $WHEELS holds a wheel for each
# of them (and for the build backend). The host reaches PyPI; the image build does not.
ensure_wheels() {
    local ctx="$1" py host_version image_version key t0 n args
    py="$(wheel_python)"
    host_version="$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    image_version="$("$DOCKER" run --rm --network none --entrypoint python3 "$BASE_IMAGE" \
        -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    [[ "$host_version" == "$image_version" ]] \
        || die "wheels would be fetched by Python $host_version ($py) but $BASE_IMAGE runs $image_version: set H200_WHEEL_PYTHON to a python$image_version"
    "$py" - "$ROOT/pyproject.toml" "$ctx" <<'PY'
import sys, tomllib
from pathlib import Path
data = tomllib.loads(Path(sys.argv[1]).read_text())
ctx = Path(sys.argv[2])
(ctx / "requirements.txt").write_text("\n".join(data["project"]["dependencies"]) + "\n")
(ctx / "build-requirements.txt").write_text("\n".join(data["build-system"]["requires"]) + "\n")
PY
    if [[ "$py" == "$ROOT/.venv/bin/python" ]]; then
        # The venv's versions of the runtime dependencies (their whole closure, no dev tools) become the pins.
        "$py" "$HERE/services/pins.py" "$ROOT/pyproject.toml" >"$ctx/constraints.txt"
    else
        : >"$ctx/constraints.txt"
    fi
    key="$(cat "$ctx/requirements.txt" "$ctx/build-requirements.txt" "$ctx/constraints.txt" \
        | { cat; echo "python$host_version $(uname -m)"; } | sha256sum | cut -c1-16)"
    if [[ -d "$WHEELS" && "$(cat "$CACHE/wheels.key" 2>/dev/null)" == "$key" ]]; then
        log "reusing $(find "$WHEELS" -name '*.whl' | wc -l) wheels in $WHEELS (key $key)"
        return 0
    fi
    log "fetching wheels for the services image into $WHEELS (pip of $py)"
    t0="$(now)"
    rm -rf "$WHEELS.tmp"
    mkdir -p "$WHEELS.tmp" "$WHEELS"
    # A new set replaces the old one (no stale versions in the context). First from the wheels already here,
    # without the network; only if some are missing, from the index (PyPI).
    args=(--disable-pip-version-check --wheel-dir "$WHEELS.tmp" --find-links "$WHEELS"
        -r "$ctx/requirements.txt" -r "$ctx/build-requirements.txt" -c "$ctx/constraints.txt")
    if ! "$py" -m pip wheel --quiet --no-index "${args[@]}" >"$CACHE/wheels.log" 2>&1 \
        && ! "$py" -m pip wheel --quiet "${args[@]}" >"$CACHE/wheels.log" 2>&1; then
        tail -n 30 "$CACHE/wheels.log" >&2
        die "pip wheel failed (log: $CACHE/wheels.log)"
    fi
    rm -rf "$WHEELS"
    mv "$WHEELS.tmp" "$WHEELS"
    echo "$key" >"$CACHE/wheels.key"
    n="$(find "$WHEELS" -name '*.whl' | wc -l)"
    log "fetched $n wheels in $(elapsed "$t0") ($(du -sh "$WHEELS" | cut -f1))"
    # Wheels built here from source distributions carry the host's platform tag: the image's import check
    # (infra/images/services/Dockerfile) is what proves they load on the image's Python and glibc.
    find "$WHEELS" -name '*-linux_*.whl' -printf 'build: note: built on this host, not manylinux: %f\n' >&2
}

build_services() {
    image_exists "$BASE_IMAGE" || build_base
    local ctx="$CACHE/services-context" t0
    rm -rf "$ctx"
    mkdir -p "$ctx/src"
    cp -a "$HERE/services/Dockerfile" "$ctx/"
    ensure_wheels "$ctx"
    cp -al "$WHEELS" "$ctx/wheels" 2>/dev/null || cp -a "$WHEELS" "$ctx/wheels"
    # The project as it is in the working tree (not only what is committed), without bytecode.
    tar -C "$ROOT" --exclude=__pycache__ --exclude='*.pyc' -cf - pyproject.toml schemas services | tar -C "$ctx/src" -xf -
    t0="$(now)"
    if ! "$DOCKER" build --build-arg "BASE=$BASE_IMAGE" --label "$LABEL=services" -t "$SERVICES_IMAGE" "$ctx" \
        >"$CACHE/services-build.log" 2>&1; then
        tail -n 40 "$CACHE/services-build.log" >&2
        die "docker build of $SERVICES_IMAGE failed (log: $CACHE/services-build.log)"
    fi
    log "built $SERVICES_IMAGE in $(elapsed "$t0")"
}

targets=("$@")
((${#targets[@]})) || targets=(base kafka redis services)
T0="$(now)"
built=()
for t in "${targets[@]}"; do
    case "$t" in
        base) build_base; built+=("$BASE_IMAGE") ;;
        kafka) build_kafka; built+=("$KAFKA_IMAGE") ;;
        redis) build_redis; built+=("$REDIS_IMAGE") ;;
        services) build_services; built+=("$SERVICES_IMAGE") ;;
        *) die "unknown target '$t' (base|kafka|redis|services)" ;;
    esac
done
"$DOCKER" image prune -f --filter "label=$LABEL" >/dev/null || true   # superseded builds of our images only
log "done in $(elapsed "$T0"): ${built[*]}"
