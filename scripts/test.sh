#!/usr/bin/env bash
# Sets up the machine, builds everything and runs every test:
#   1. the whole suite (unit, scheduler, integration against a throwaway PostgreSQL and SIPp),
#   2. the scheduler tests again under ThreadSanitizer (a separate, scheduler-only build).
# Safe to rerun: builds are incremental and the test cluster is private to the build directory.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

jobs=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$jobs"

cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDIALER_SCHEDULER_ONLY=ON -DDIALER_SANITIZE=thread -DDIALER_BUILD_BENCH=OFF
cmake --build build-tsan -j"$jobs"

status=0
ctest --test-dir build --output-on-failure -j"$jobs" --timeout 600 || status=1
echo "== scheduler tests under ThreadSanitizer"
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
  ctest --test-dir build-tsan --output-on-failure -j"$jobs" --timeout 600 || status=1
exit $status
