#!/usr/bin/env bash
# Installs every Debian package the project needs. Idempotent: a second run installs nothing.
# Used by both quick-start commands (scripts/demo.sh and scripts/test.sh) and by CI.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libboost-dev libboost-system-dev
  libpqxx-dev libpq-dev postgresql-15 postgresql-client-15
  libconcurrentqueue-dev libspdlog-dev libfmt-dev libyaml-cpp-dev nlohmann-json3-dev libcli11-dev
  libphonenumber-dev libhowardhinnant-date-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  sip-tester libosip2-dev clang-14 libclang-rt-14-dev tzdata clang-format util-linux procps
  prometheus-cpp-dev wrk curl openssl ca-certificates
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
