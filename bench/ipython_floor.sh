#!/usr/bin/env bash
# IPython latency floor (issue 4, BENCHMARKS.md): launches the release server with
# `--plugins agent_skills jupyter`, attaches the zmq_floor example to that server's own
# kernel (its connection file, found from the kernel's command line) and interleaves raw
# ZeroMQ execute round trips with HTTP run_ipython round trips, both `print(1)`.
#   cargo build --release -p sandboxd && cargo build --release -p sandboxd-kernel --examples
#   bench/ipython_floor.sh [N=1000]
set -eu
cd "$(dirname "$0")/.."
ws=$(mktemp -d); port=$((30000 + RANDOM % 10000)); key=k$RANDOM$RANDOM
SESSION_API_KEY=$key target/release/sandboxd $port --working-dir $ws --plugins agent_skills jupyter >/dev/null 2>&1 &
spid=$!
for i in $(seq 1 200); do curl -s localhost:$port/alive | grep -q ok && break; sleep 0.02; done
curl -s -XPOST localhost:$port/execute_action -H "X-Session-API-Key: $key" -H 'content-type: application/json' -d '{"action":{"action":"run_ipython","timeout":60,"args":{"code":"print(1)"}}}' >/dev/null
kp=$(pgrep -P $spid -f ipykernel_launcher)
cf=$(tr '\0' '\n' < /proc/$kp/cmdline | grep -A1 '^-f$' | tail -1)
target/release/examples/zmq_floor --attach "$cf" "http://127.0.0.1:$port" "$key" ${1:-1000}
kill -TERM $spid; wait $spid || true
rm -rf "$ws"
