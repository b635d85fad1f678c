#!/usr/bin/env bash
# Sets up the machine, builds the dialer, and runs the demo campaign on the embedded default:
# a private PostgreSQL cluster under ./.dialer and the simulated carrier. A rerun shows the finished
# campaign's summary (it resumes, it never imports twice); `./build/app/dialer db stop && rm -rf .dialer` starts
# afresh.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target dialer

exec ./build/app/dialer run config/demo.yaml "$@"
