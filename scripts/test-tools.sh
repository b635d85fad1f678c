#!/usr/bin/env bash
# Installs the npm tools the tests and the linting use (never the product): Redocly's OpenAPI linter, Twilio's helper
# library and the Standard Webhooks verifier, pinned in
# tests/lint/package-lock.json. Needs Node.js 20.19 or newer (Redocly CLI 2 does); Debian's own nodejs is
# installed when there is none, and a Node.js that is too old is an error that says so. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -q
  "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends nodejs npm
fi
version=$(node -p 'process.versions.node')
major=${version%%.*}
minor=$(echo "$version" | cut -d. -f2)
if (( major < 20 || (major == 20 && minor < 19) )); then
  echo "test-tools: Node.js $version is too old for @redocly/cli 2 (needs 20.19+ or 22.12+)" >&2
  exit 1
fi
npm ci --prefix tests/lint --no-audit --no-fund --loglevel=error  # exactly the locked versions (about a second)
echo "test-tools: node $version, $(tests/lint/node_modules/.bin/redocly --version 2>/dev/null | head -1) ready"
