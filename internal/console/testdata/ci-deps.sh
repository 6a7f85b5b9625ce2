#!/usr/bin/env bash
# Installs what the test console's browser test (internal/console,
# TestBrowser) needs: headless Chromium, Debian package `chromium`.
# Run it as root before `go test ./...` in CI; it does nothing when a
# Chromium or Chrome binary is on PATH already. CI should also export
# PLUMB_REQUIRE_BROWSER=1 so the browser test fails instead of skipping
# when no browser is found.
#
#   internal/console/testdata/ci-deps.sh && export PLUMB_REQUIRE_BROWSER=1
set -euo pipefail
for b in chromium chromium-browser google-chrome google-chrome-stable headless-shell; do
	if command -v "$b" >/dev/null 2>&1; then
		echo "ci-deps: browser found: $(command -v "$b")"
		exit 0
	fi
done
if [[ $(id -u) -ne 0 ]]; then
	echo "ci-deps: chromium is missing and installing it needs root (apt-get install -y chromium)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y chromium
command -v chromium
