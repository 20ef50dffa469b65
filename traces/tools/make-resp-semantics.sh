#!/usr/bin/env bash
# Captures traces/resp-semantics.pcap: a real Redis driven through CLIENT REPLY OFF/SKIP/ON,
# pub/sub in RESP2 and RESP3 with RESET, a RESP3 attribute reply (DEBUG PROTOCOL attrib) and an
# HTTP request sent to the Redis port, one connection per case (tools/resp-semantics.py), and
# what the client saw in logs/resp-semantics.client.json. Everything runs in a namespace made
# here (npt-resp, loopback only) and removed on exit. Needs root, redis-server, tcpdump, python3.
#
#   make-resp-semantics.sh          Redis on 6379, capture filter 'tcp port 6379'
#   make-resp-semantics.sh PORT     Redis on PORT: traces/resp-semantics-PORT.pcap (logs likewise
#                                   named), capture filter 'tcp', with traffic of two protocols that
#                                   are not Redis beside it (tools/other-protocols.py: HTTP on 8080,
#                                   a "+OK" greeter on 1100) for the port detection to ignore
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-6379}
if [ "$port" = 6379 ]; then name=resp-semantics; filter='tcp port 6379'; else name=resp-semantics-$port; filter=tcp; fi
ns=npt-resp
cleanup() { ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true; sleep 0.3; ip netns del "$ns" 2>/dev/null || true; }
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
ip netns exec "$ns" redis-server --bind 127.0.0.1 --port "$port" --protected-mode no --save '' --appendonly no \
  --enable-debug-command yes --daemonize no > "logs/$name.redis.log" 2>&1 &
for _ in $(seq 50); do ip netns exec "$ns" redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
ip netns exec "$ns" tcpdump -i lo --time-stamp-precision=nano -s 0 -w "$name.pcap" "$filter" \
  2> "logs/$name.tcpdump.stderr" &
dump=$!
sleep 1
ip netns exec "$ns" python3 tools/resp-semantics.py "$port" > "logs/$name.client.json"
if [ "$port" != 6379 ]; then
  ip netns exec "$ns" python3 tools/other-protocols.py > "logs/$name.other-protocols.json"
fi
sleep 1
kill -INT "$dump"; wait "$dump" || true
echo "wrote traces/$name.pcap ($(stat -c %s "$name.pcap") bytes)"
