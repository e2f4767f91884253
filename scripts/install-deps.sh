#!/usr/bin/env bash
# Installs the system packages Switchboard needs when they are missing (Debian).
set -euo pipefail
missing=()
pkg-config --exists hiredis 2>/dev/null || missing+=(libhiredis-dev)
pkg-config --exists zlib 2>/dev/null || missing+=(zlib1g-dev)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
# The interop tests make a venv; Debian's own python3 needs python3-venv for that.
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
