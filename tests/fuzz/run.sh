#!/usr/bin/env bash
# Builds the SIP wire fuzzer (clang++-14, libFuzzer + AddressSanitizer + UndefinedBehaviorSanitizer) and runs it for
# N seconds (default 30) on the corpus in the build directory, seeded from tests/data/sip/rfc4475. Exits non-zero
# on a build failure or on any crash, leak, timeout, out-of-memory or broken invariant (libFuzzer's own exit code).
#   bash tests/fuzz/run.sh [seconds]
# Environment: DIALER_FUZZ_BUILD_DIR (default build-fuzz at the repository root), DIALER_FUZZ_CXX (clang++-14).
set -euo pipefail

seconds="${1:-30}"
case "$seconds" in
  '' | *[!0-9]*) echo "usage: $0 [seconds]" >&2; exit 2 ;;
esac

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${DIALER_FUZZ_BUILD_DIR:-$root/build-fuzz}"
cxx="${DIALER_FUZZ_CXX:-clang++-14}"

generator=()
if command -v ninja >/dev/null 2>&1 && [[ ! -f "$build/CMakeCache.txt" ]]; then generator=(-G Ninja); fi
cmake -S "$here" -B "$build" "${generator[@]}" -DCMAKE_CXX_COMPILER="$cxx" >/dev/null
cmake --build "$build" -j2

# The corpus grows across runs (libFuzzer writes new inputs to the first directory); the seeds are read only.
mkdir -p "$build/corpus" "$build/seeds" "$build/artifacts"
cp "$root"/tests/data/sip/rfc4475/*.dat "$build/seeds/"

# Tokens that a mutation rarely finds byte by byte: they carry the fuzzer past the start line and into the headers
# our checks read (libFuzzer's -dict format).
cat >"$build/sip.dict" <<'EOF'
"\x0d\x0a"
"\x0d\x0a\x0d\x0a"
"\x0d\x0a "
"SIP/2.0"
" SIP/2.0\x0d\x0a"
"SIP/2.0 200 OK\x0d\x0a"
"SIP/2.0 401 Unauthorized\x0d\x0a"
"SIP/2.0 407 Proxy Authentication Required\x0d\x0a"
"INVITE sip:a@b SIP/2.0\x0d\x0a"
"ACK"
"sip:"
"Via: SIP/2.0/UDP h;branch=z9hG4bK1\x0d\x0a"
"v:"
";branch="
"From: <sip:a@b>;tag=1\x0d\x0a"
"f:"
"To: <sip:b@c>\x0d\x0a"
"t:"
";tag="
"Call-ID: c@d\x0d\x0a"
"i:"
"CSeq: 1 INVITE\x0d\x0a"
"Content-Length: "
"l:"
"Content-Type: application/sdp\x0d\x0a"
"Content-Type: multipart/mixed;boundary=b\x0d\x0a"
"\x0d\x0a--b\x0d\x0a"
"Max-Forwards: 70\x0d\x0a"
"Contact: "
"m:"
"Date: Sat, 13 Nov 2010 23:29:00 GMT\x0d\x0a"
"WWW-Authenticate: Digest "
"Proxy-Authenticate: Digest "
"realm=\"r\", nonce=\"n\""
"qop=\"auth,auth-int\""
"algorithm=MD5"
"stale=true"
"opaque=\"o\""
"?"
"<"
">"
"\""
"\x00"
EOF

started=$(date +%s)
"$build/sip_parse_fuzz" "$build/corpus" "$build/seeds" \
  -dict="$build/sip.dict" \
  -max_total_time="$seconds" -max_len=70000 -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$build/artifacts/"
echo "sip_parse_fuzz: ${seconds}s asked, $(($(date +%s) - started))s wall, corpus $(find "$build/corpus" -type f | wc -l) files"
