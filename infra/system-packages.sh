#!/usr/bin/env bash
# Installs the Debian packages the project runs, where they are missing: a container engine and its
# compose client, debootstrap (images are built here; no registry is reachable), redis-server, and chromium with
# its chromedriver (the ops console's browser test drives Debian's browser: no browser is downloaded elsewhere), and
# Node with npm (the AsyncAPI initiative's own parser checks schemas/asyncapi.json in the test suite).
set -euo pipefail

declare -A needs=([dockerd]=docker.io [docker-compose]=docker-compose [debootstrap]=debootstrap
                  [redis-server]=redis-server [java]=openjdk-17-jre-headless [mvn]=maven
                  [chromium]=chromium [chromedriver]=chromium-driver [node]=nodejs [npm]=npm)
missing=()
for command in "${!needs[@]}"; do
    command -v "$command" >/dev/null 2>&1 || missing+=("${needs[$command]}")
done
if ((${#missing[@]} == 0)); then
    echo "system-packages: all present"
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "system-packages: error: missing ${missing[*]} and not root; install them with:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "system-packages: installing ${missing[*]} ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "system-packages: installed ${missing[*]}"
