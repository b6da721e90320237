#!/usr/bin/env bash
# System packages needed to build rust-rdkafka's bundled librdkafka (rdkafka-sys with default
# features: librdkafka's own ./configure + make, linked against zlib; no cmake needed).
# Debian/Ubuntu. Installs only what is missing; a no-op when everything is present.
set -euo pipefail

need=()
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v c++ >/dev/null 2>&1 || need+=(g++)
command -v make >/dev/null 2>&1 || need+=(make)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v perl >/dev/null 2>&1 || need+=(perl)
[ -e /usr/include/zlib.h ] || need+=(zlib1g-dev)

if [ ${#need[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update
    $sudo apt-get install -y --no-install-recommends "${need[@]}"
fi
echo "build prerequisites present"
