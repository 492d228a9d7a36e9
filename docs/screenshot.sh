#!/usr/bin/env bash
# Look at an fpreplay HTML report the way a user does: render it in headless Chromium to a PNG.
#
#   docs/screenshot.sh report.html [out.png] [height]
#
# Needs chromium (Debian: apt-get install -y chromium). Networking, sync and updates are off, so
# the picture also proves the page needs nothing from the network. Tests do not need this script:
# they parse the HTML instead.
set -euo pipefail
html="${1:?usage: docs/screenshot.sh report.html [out.png] [height]}"
png="${2:-${html%.html}.png}"
height="${3:-2400}"
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --disable-sync --no-first-run --user-data-dir="$profile" \
  --screenshot="$(realpath -m "$png")" --window-size="1280,$height" \
  "file://$(realpath "$html")" 2>/dev/null
echo "$png"
