#!/usr/bin/env bash
# The web page's end-to-end tests in a real browser: Debian's Chromium (headless) driven by
# playwright-core, against real `verity serve` processes on free loopback ports, each with a
# temporary data directory holding the knowledge/ corpus.
#
# Installs only what is missing: the `chromium` package (apt) and tests/browser's node modules
# (npm ci, pinned by package-lock.json). Expects the verity binary that scripts/test.sh builds, at
# ${CARGO_TARGET_DIR:-target}/debug/verity (VERITY_BIN overrides), and ONNX Runtime and the
# embedding model that scripts/setup.sh installs. Screenshots and measured figures go to
# test-output/browser/. Ends with node's test summary; exits non-zero if a test fails.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${VERITY_BIN:-${CARGO_TARGET_DIR:-target}/debug/verity}"
if [ ! -x "$BIN" ]; then
  echo "browser-test: no verity binary at $BIN; build it with: cargo build -p verity-cli" >&2
  exit 1
fi
export VERITY_BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"

export CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM_PATH" ]; then
  echo "browser-test: installing Debian's chromium"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

command -v node >/dev/null || { echo "browser-test: node (20 or later) is needed" >&2; exit 1; }
wanted="$(node -p "require('./tests/browser/package.json').devDependencies['playwright-core']")"
have="$(node -p "try { require('./tests/browser/node_modules/playwright-core/package.json').version } catch { '' }")"
if [ "$wanted" != "$have" ]; then
  echo "browser-test: npm ci in tests/browser"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

OUT="${VERITY_BROWSER_OUTPUT:-$PWD/test-output/browser}"
mkdir -p "$OUT"
export VERITY_BROWSER_OUTPUT="$OUT"
BASE="$(mktemp -d "${TMPDIR:-/tmp}/verity-browser-base.XXXXXX")"
trap 'rm -rf "$BASE" "${TMPDIR:-/tmp}"/verity-browser-{page,stream,limits}-*' EXIT
export VERITY_BROWSER_BASE="$BASE/data"

echo "browser-test: ingesting knowledge/ into a temporary data directory"
(cd tests/browser && node -e "import('./lib/verity.js').then((v) => v.baseDataDir())")

echo "browser-test: running the tests (Chromium $("$CHROMIUM_PATH" --version 2>/dev/null | awk '{print $2}'))"
cd tests/browser
node --test --test-concurrency=1 --test-reporter=spec tests/
