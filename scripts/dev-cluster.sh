#!/usr/bin/env bash
# Starts an N-node NATS JetStream cluster on loopback (embedded nats-server,
# no Docker) and prints the --nats value for plumb serve. Ctrl-C stops it.
#
#   scripts/dev-cluster.sh            # 3 nodes, clients on 4222-4224
#   scripts/dev-cluster.sh --nodes 5 --dir /tmp/nats5 --port 5222
#
# Then, in other terminals, as many instances as you like:
#   plumb serve --dir examples --sandbox --addr 127.0.0.1:8081 \
#     --nats nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224
set -euo pipefail
cd "$(dirname "$0")/.."
# Built, then exec'd (not go run), so SIGTERM and Ctrl-C reach the servers.
bin="${TMPDIR:-/tmp}/plumb-devcluster"
go build -o "$bin" ./internal/cluster/devcluster
exec "$bin" "$@"
