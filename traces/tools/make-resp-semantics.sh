#!/usr/bin/env bash
# Captures traces/resp-semantics.pcap: a real Redis driven through CLIENT REPLY OFF/SKIP/ON,
# pub/sub in RESP2 and RESP3 with RESET, a RESP3 attribute reply (DEBUG PROTOCOL attrib) and an
# HTTP request sent to the Redis port, one connection per case (tools/resp-semantics.py), and
# what the client saw in logs/resp-semantics.client.json. Everything runs in a namespace made
# here (npt-resp, loopback only) and removed on exit. Needs root, redis-server, tcpdump, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
ns=npt-resp
cleanup() { ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true; sleep 0.3; ip netns del "$ns" 2>/dev/null || true; }
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
ip netns exec "$ns" redis-server --bind 127.0.0.1 --port 6379 --protected-mode no --save '' --appendonly no \
  --enable-debug-command yes --daemonize no > logs/resp-semantics.redis.log 2>&1 &
for _ in $(seq 50); do ip netns exec "$ns" redis-cli ping >/dev/null 2>&1 && break; sleep 0.1; done
ip netns exec "$ns" tcpdump -i lo --time-stamp-precision=nano -s 0 -w resp-semantics.pcap 'tcp port 6379' \
  2> logs/resp-semantics.tcpdump.stderr &
dump=$!
sleep 1
ip netns exec "$ns" python3 tools/resp-semantics.py > logs/resp-semantics.client.json
sleep 1
kill -INT "$dump"; wait "$dump" || true
echo "wrote traces/resp-semantics.pcap ($(stat -c %s resp-semantics.pcap) bytes)"
