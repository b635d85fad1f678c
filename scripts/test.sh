#!/usr/bin/env bash
# Sets up the machine, builds everything and runs every test:
#   1. the OpenAPI description linted by Redocly (strict rules; npm, see test-tools.sh), and the whole suite
#      (unit, scheduler, integration against a throwaway PostgreSQL and SIPp), then the SIP parser fuzzed for 30 s,
#   2. the scheduler tests again under ThreadSanitizer (a separate, scheduler-only build),
#   3. the unit and end-to-end tests again under AddressSanitizer + UndefinedBehaviorSanitizer (a separate build
#      whose dialer binary, which the end-to-end tests start, is sanitized too): stop-now with calls in flight,
#      crashes and restarts must leave no leak, no use after free, no undefined behaviour.
# Safe to rerun: builds are incremental and the test clusters are private to their build directories.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
bash scripts/test-tools.sh

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
echo "== the OpenAPI description, linted (Redocly, recommended-strict)"
tests/lint/node_modules/.bin/redocly lint --config tests/lint/redocly.yaml adapters/http/openapi.yaml || status=1

ctest --test-dir build --output-on-failure -j"$jobs" --timeout 600 || status=1

echo "== the SIP message parser under libFuzzer (clang-14, ASan + UBSan), 30 s from the RFC 4475 seeds"
bash tests/fuzz/run.sh 30 || status=1

echo "== scheduler tests under ThreadSanitizer"
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
  ctest --test-dir build-tsan --output-on-failure -j"$jobs" --timeout 600 || status=1

echo "== unit and end-to-end tests under AddressSanitizer + UndefinedBehaviorSanitizer"
# A report aborts the process that made it (exit 134): a test process fails its test, a dialer process the test
# that started it. Reports also go to files (log_path), printed below: a dialer's stderr is not always shown.
asan_logs=$(mktemp -d /tmp/dialer-asan-logs.XXXXXX)
ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:print_suppressions=0:log_path=$asan_logs/report" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
  ctest --test-dir build-asan --output-on-failure -j"$jobs" --timeout 1200 -L 'unit|integration' || status=1
reports=$(grep -lE "ERROR: (Address|Leak)Sanitizer|runtime error|SUMMARY: " "$asan_logs"/report* 2>/dev/null || true)
if [[ -n $reports ]]; then
  echo "== sanitizer reports"
  cat $reports
  status=1
fi
rm -rf "$asan_logs"
exit $status
