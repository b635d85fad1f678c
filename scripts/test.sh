#!/usr/bin/env bash
# Sets up the machine, builds everything and runs every test:
#   1. the whole suite (unit, scheduler, integration against a throwaway PostgreSQL and SIPp),
#   2. the scheduler tests again under ThreadSanitizer (a separate, scheduler-only build),
#   3. the unit and end-to-end integration tests once more under AddressSanitizer + UBSan (a separate build of
#      the dialer binary and those two test programs; the dialer processes the tests start are sanitized too).
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

cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDIALER_SANITIZE=address,undefined -DDIALER_BUILD_BENCH=OFF
cmake --build build-asan -j"$jobs" --target dialer unit_tests integration_tests

status=0
ctest --test-dir build --output-on-failure -j"$jobs" --timeout 600 || status=1
echo "== scheduler tests under ThreadSanitizer"
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
  ctest --test-dir build-tsan --output-on-failure -j"$jobs" --timeout 600 || status=1

echo "== unit and integration tests under AddressSanitizer + UBSan"
# Every process stops at its first report (abort: exit 134), which the test that started it sees. ASan and
# LeakSanitizer reports go to one file per process in $reports instead of stderr (not every test prints a
# child's stderr) and are printed below; UBSan's go to stderr (gcc's combined runtime ignores its log_path),
# which the tests print. Leak suppressions: tests/sanitizers/lsan.supp, set by tests/CMakeLists.txt.
reports="$PWD/build-asan/sanitizer-reports"
rm -rf "$reports" && mkdir -p "$reports"
ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:log_path=$reports/asan" \
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1" \
  ctest --test-dir build-asan -L 'unit|integration' --output-on-failure -j"$jobs" --timeout 600 || status=1
# A file holds a report, or only the list of suppressions that matched.
for f in "$reports"/asan.*; do
  [ -e "$f" ] || continue
  if grep -q 'ERROR: ' "$f"; then
    echo "== sanitizer report of process ${f##*.}"
    cat "$f"
    status=1
  fi
done
exit $status
