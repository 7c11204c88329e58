#!/usr/bin/env bash
# Opens a qimera report in headless Chromium (Debian's chromium) and fails on a console error or an
# image that did not decode; saves a screenshot. Usage: scripts/check-report.sh REPORT.html [SHOT.png]
set -euo pipefail
report=$(realpath "$1")
shot=${2:-${report%.html}.png}
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "check-report: chromium is not installed (apt install chromium)" >&2; exit 2; }
profile=$(mktemp -d)
log=$(mktemp)
trap 'rm -rf "$profile" "$log"' EXIT
# The flags keep Chromium off the network (this machine has none) and out of any desktop.
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
       --disable-component-update --disable-sync --user-data-dir="$profile" --hide-scrollbars
       --enable-logging=stderr --v=0 --virtual-time-budget=10000)
dom=$("$browser" "${flags[@]}" --dump-dom "file://$report" 2> "$log")
if grep -E "CONSOLE.*(Uncaught|Error|error)" "$log"; then
  echo "check-report: console errors in $report (above)" >&2; exit 1
fi
if ! grep -q 'data-images-ok="true"' <<< "$dom"; then
  echo "check-report: $report: images did not load ($(grep -o 'data-images-ok="[^"]*"' <<< "$dom" || echo 'no load event'))" >&2
  exit 1
fi
"$browser" "${flags[@]}" --window-size=1200,2400 --screenshot="$shot" "file://$report" 2>> "$log" > /dev/null
[ -s "$shot" ] || { echo "check-report: no screenshot written" >&2; exit 1; }
echo "check-report: $report loads without console errors, every image decoded; screenshot $shot"
