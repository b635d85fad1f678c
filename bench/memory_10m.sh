#!/usr/bin/env bash
# Peak resident memory of one `dialer run` over a campaign of N contacts (default 10 000 000), beside the same
# run over N/10 contacts as the baseline: memory must not grow with the campaign (target: at most 256 MB).
#
#   cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release && cmake --build build-bench --target dialer
#   bash bench/memory_10m.sh [--dialer build-bench/app/dialer] [--contacts 10000000] [--keep]
#
# Each run is the operator's whole command, in a fresh state directory: the embedded PostgreSQL, the generated
# contact file, the import, the dial-out on the simulated carrier in instant mode (calls end as they are placed,
# so the figure is the engine's, not the calls'), the summary. Peak RSS is /usr/bin/time -v's "Maximum resident
# set size" of the dialer process (PostgreSQL's own memory is its server's, not counted).
#
# The contact file is written here with awk: `contacts.generate` draws from the fictional 555 lines only, which hold
# a few million numbers. These numbers have real shapes (40 US area codes, exchanges 201-259), so the campaign file
# pins the simulated carrier; never point it at a real one.
set -euo pipefail

dialer=build-bench/app/dialer
contacts=10000000
keep=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dialer) dialer="$2"; shift 2 ;;
    --contacts) contacts="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "usage: $0 [--dialer PATH] [--contacts N] [--keep]" >&2; exit 2 ;;
  esac
done
[[ -x "$dialer" ]] || { echo "no dialer at $dialer (build it: see the header of $0)" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "/usr/bin/time is missing (apt-get install time)" >&2; exit 2; }
dialer=$(realpath "$dialer")
work=$(mktemp -d /tmp/dialer-memory.XXXXXX)
chmod 755 "$work"  # as root, the private PostgreSQL (run as another user) then lives in the state dir, not elsewhere
stop_servers() { for s in "$work"/run-*/state; do [[ -d $s ]] && "$dialer" --state-dir "$s" db stop >/dev/null 2>&1; done; true; }
cleanup() { stop_servers; [[ $keep == 1 ]] && echo "kept $work" || rm -rf "$work"; }
trap cleanup EXIT

# 50 numbers of the simulated inventory at the largest per-number limits: 50 000 originations/s in all, above
# what one engine sustains, so the caps do not pace the run.
write_campaign() {  # name contacts file
  {
    echo "name: $1"
    echo "agent: memory-agent"
    echo "create_agent: true"
    echo "agent_handoff: wss://agents.example.com/memory"
    echo "provision_numbers: true"
    echo "numbers:"
    for i in $(seq 0 49); do printf '  - {e164: "+141555501%02d", max_concurrent: 200, max_cps: 1000}\n' "$i"; done
    echo "carrier: {name: simulated, settings: {mode: instant, seed: 7}}"
    echo "concurrency: 10000"
    echo "window: {start: \"00:00\", end: \"24:00\", days: every day, holidays: none}"
    echo "retry: {max_attempts: 1}"
    echo "default_region: US"
    echo "contacts: {file: contacts.csv}"
  } > "$3"
  awk -v n="$2" 'BEGIN {
    split("212 213 214 215 216 217 218 219 224 225 228 229 231 234 239 240 248 251 252 253 " \
          "254 256 260 262 267 269 270 276 281 301 302 303 304 305 307 308 309 310 312 313", npa, " ")
    print "phone,first_name,notes"
    for (i = 0; i < n; ++i) {
      rest = int(i / 10000)
      printf "+1%s%03d%04d,Lead %d,row %d\n", npa[rest % 40 + 1], 201 + int(rest / 40), i % 10000, i, i
    }
  }' > "$(dirname "$3")/contacts.csv"
}

run_one() {  # contacts -> prints "rss_mb wall_s"
  local n=$1 dir="$work/run-$1"
  mkdir -p "$dir"
  write_campaign "memory-$n" "$n" "$dir/campaign.yaml"  # and contacts.csv beside it
  /usr/bin/time -v -o "$dir/time.txt" "$dialer" --state-dir "$dir/state" run "$dir/campaign.yaml" --json \
    > "$dir/summary.json" 2> "$dir/stderr.txt" || { echo "run of $n contacts failed:" >&2; tail -20 "$dir/stderr.txt" >&2; exit 1; }
  local kb wall
  kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$dir/time.txt")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$dir/time.txt")
  echo "$((kb / 1024)) $wall"
}

base=$((contacts / 10))
read -r base_mb base_wall < <(run_one "$base")
read -r big_mb big_wall < <(run_one "$contacts")
echo "contacts=$base peak_rss_mb=$base_mb wall=$base_wall   (baseline: a tenth of the campaign)"
echo "contacts=$contacts peak_rss_mb=$big_mb wall=$big_wall   target <= 256 MB: $([[ $big_mb -le 256 ]] && echo met || echo MISSED)"
echo "growth: $((big_mb - base_mb)) MB for $((contacts - base)) more contacts"
