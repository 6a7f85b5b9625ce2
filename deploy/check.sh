#!/usr/bin/env bash
# Checks the Prometheus alerting rules of deploy/: syntax (promtool check
# rules) and behaviour (promtool test rules). Installs promtool (Debian
# package prometheus) when it is missing and we are root.
set -euo pipefail
cd "$(dirname "$0")/prometheus"
if ! command -v promtool >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "deploy/check.sh: installing promtool (Debian package prometheus)" >&2
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends prometheus >/dev/null
	else
		echo "deploy/check.sh: promtool not found; install the prometheus package (it ships promtool)" >&2
		exit 1
	fi
fi
promtool check rules plumb-alerts.yml
promtool test rules plumb-alerts_test.yml
