#!/bin/bash
# make-traces.sh [OUTDIR]   (default: the traces/ directory this script lives in)
# Makes three real Redis packet captures on this machine, inside network namespaces
# created here (npt-lab, npt-host), and computes traces/expected/*.json with expected.py.
# Everything created (namespaces, qemu, redis-server, capture processes) is torn down
# on exit, also on failure. Nothing is added to the root namespace.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-$(dirname "$HERE")}
mkdir -p "$OUT" "$OUT/expected" "$OUT/logs"
OUT=$(cd "$OUT" && pwd)
LOGS=$OUT/logs
CACHE=${NP_CACHE:-/var/cache/netprobe-traces}
GUEST=$CACHE/guest
LAB=npt-lab
HOSTNS=npt-host
GUEST_IP=10.77.0.2
WORK=$(mktemp -d /tmp/npt-work.XXXXXX)

PIDS=()
cleanup() {
    set +e
    # only our own, still-running children (guards against pid reuse)
    mine() { [ "$(awk '{print $4}' "/proc/$1/stat" 2>/dev/null)" = "$$" ]; }
    for p in "${PIDS[@]}"; do
        mine "$p" && kill "$p" 2>/dev/null
    done
    sleep 0.5
    for p in "${PIDS[@]}"; do
        mine "$p" && kill -9 "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    ip netns del "$LAB" 2>/dev/null
    ip netns del "$HOSTNS" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "[make-traces] $*" >&2; }
inlab() { ip netns exec "$LAB" "$@"; }
inhost() { ip netns exec "$HOSTNS" "$@"; }

for t in tcpdump dumpcap tshark capinfos redis-server redis-benchmark redis-cli qemu-system-x86_64 python3; do
    command -v "$t" >/dev/null || { echo "missing tool: $t" >&2; exit 1; }
done

# --- guest image -------------------------------------------------------------------
if [ ! -s "$GUEST/vmlinuz" ] || [ ! -s "$GUEST/initrd.gz" ]; then
    "$HERE/build-guest.sh" "$GUEST"
fi
KVER=$(cat "$GUEST/kernel-version")
log "guest kernel $KVER"

# wait until a capture process has printed its 'listening'/'Capturing' line
wait_for_line() { # file pattern timeout_s
    local i=0
    while ! grep -q "$2" "$1" 2>/dev/null; do
        sleep 0.1; i=$((i+1))
        [ $i -lt $(( $3 * 10 )) ] || { echo "timeout waiting for '$2' in $1" >&2; cat "$1" >&2; return 1; }
    done
}
stop_pid() { # pid: SIGINT then wait
    kill -INT "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# --- lab namespace: bridge virbr0 + tap vnet0 + QEMU/TCG guest --------------------------
ip netns del "$LAB" 2>/dev/null || true
ip netns add "$LAB"
inlab ip link set lo up
inlab ip link add virbr0 type bridge
inlab ip addr add 10.77.0.1/24 dev virbr0
inlab ip link set virbr0 up
inlab ip tuntap add dev vnet0 mode tap
inlab ip link set vnet0 master virbr0
inlab ip link set vnet0 up

QEMU_CMD=(qemu-system-x86_64 -accel tcg -m 512 -smp 1 -nographic -no-reboot
    -kernel "$GUEST/vmlinuz" -initrd "$GUEST/initrd.gz"
    -append "console=ttyS0 panic=-1 np.ip=$GUEST_IP/24"
    -netdev tap,id=n0,ifname=vnet0,script=no,downscript=no
    -device virtio-net-pci,netdev=n0)
log "boot: ${QEMU_CMD[*]}"
ip netns exec "$LAB" "${QEMU_CMD[@]}" </dev/null >"$LOGS/guest-console.log" 2>&1 &
QEMU_PID=$!
PIDS+=("$QEMU_PID")

t0=$(date +%s)
until inlab timeout 2 redis-cli -h "$GUEST_IP" ping 2>/dev/null | grep -q PONG; do
    kill -0 "$QEMU_PID" 2>/dev/null || { echo "qemu exited" >&2; tail -30 "$LOGS/guest-console.log" >&2; exit 1; }
    [ $(( $(date +%s) - t0 )) -lt 120 ] || { echo "guest redis did not answer in 120 s" >&2; tail -30 "$LOGS/guest-console.log" >&2; exit 1; }
    sleep 1
done
log "guest redis answers PONG after $(( $(date +%s) - t0 )) s"

# --- a. tcpdump on the tap, nanosecond classic pcap, snaplen 128 ------------------------
A=$OUT/bridge-tap-nano.pcap
attempt=1
while :; do
    rm -f "$A"
    ip netns exec "$LAB" tcpdump -i vnet0 --time-stamp-precision=nano -s 128 -B 16384 -w "$A" 'tcp port 6379' \
        2>"$LOGS/bridge-tap-nano.tcpdump.stderr" &
    TD=$!; PIDS+=("$TD")
    wait_for_line "$LOGS/bridge-tap-nano.tcpdump.stderr" 'listening on' 10
    sleep 0.5
    inlab timeout 600 redis-benchmark -h "$GUEST_IP" -c 10 -n 20000 -t get,set -q \
        >"$LOGS/bridge-tap-nano.bench.txt" 2>&1 || { cat "$LOGS/bridge-tap-nano.bench.txt" >&2; exit 1; }
    sleep 2
    stop_pid "$TD"
    cat "$LOGS/bridge-tap-nano.tcpdump.stderr" >&2
    drops=$(sed -n 's/^\([0-9]*\) packets\? dropped by kernel.*/\1/p' "$LOGS/bridge-tap-nano.tcpdump.stderr")
    python3 "$HERE/expected.py" "$A" >"$WORK/a.json"
    counts=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); i=d["perInterface"][""]; r=i["requestsByCommand"]; print(r.get("GET",0), r.get("SET",0), i["streamGaps"])' "$WORK/a.json")
    log "trace a attempt $attempt: drops=$drops GET SET streamGaps = $counts"
    if [ "$drops" = 0 ] && [ "$counts" = "20000 20000 0" ]; then break; fi
    attempt=$((attempt+1))
    [ $attempt -le 3 ] || { echo "trace a not clean after 3 attempts" >&2; exit 1; }
done
cp "$WORK/a.json" "$OUT/expected/bridge-tap-nano.json"

# --- b. dumpcap on bridge and tap in one process, pcapng with ISBs -----------------------
# b : dumpcap defaults (kernel buffer 2 MiB, internal queue limits): drops are expected and
#     recorded in the ISBs (this is the point of the trace).
# b2: same, with -B 64 -N 1000000 -C 200000000 (bigger kernel buffer and dumpcap queue):
#     aims at 0 drops, retried up to 3 times.
dumpcap_run() { # outfile logname extra-args...
    local out=$1 name=$2; shift 2
    rm -f "$out"
    ip netns exec "$LAB" dumpcap "$@" -i virbr0 -s 128 -f 'tcp port 6379' \
        -i vnet0 -s 128 -f 'tcp port 6379' -w "$out" 2>"$LOGS/$name.dumpcap.stderr" &
    local dc=$!; PIDS+=("$dc")
    wait_for_line "$LOGS/$name.dumpcap.stderr" 'Capturing on' 10
    sleep 1
    inlab timeout 600 redis-benchmark -h "$GUEST_IP" -c 4 -n 2000 -t get,set \
        >"$LOGS/$name.bench.txt" 2>&1 || { cat "$LOGS/$name.bench.txt" >&2; exit 1; }
    sleep 2
    stop_pid "$dc"
    cat "$LOGS/$name.dumpcap.stderr" >&2
    python3 "$HERE/expected.py" "$out" >"$OUT/expected/$name.json"
}
B=$OUT/two-iface-dumpcap.pcapng
dumpcap_run "$B" two-iface-dumpcap
B2=$OUT/two-iface-dumpcap-nodrop.pcapng
for attempt in 1 2 3; do
    dumpcap_run "$B2" two-iface-dumpcap-nodrop -B 64 -N 1000000 -C 200000000
    res=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum((i.get("ifdrop") or 0)+(i.get("osdrop") or 0) for i in d["interfaces"]), *(d["perInterface"][n]["requestsByCommand"].get(c,0) for n in ("virbr0","vnet0") for c in ("GET","SET")))' "$OUT/expected/two-iface-dumpcap-nodrop.json")
    log "trace b2 attempt $attempt: drops GET/SET(virbr0) GET/SET(vnet0) = $res"
    [ "$res" = "0 2000 2000 2000 2000" ] && break
    [ $attempt -lt 3 ] || { echo "trace b2 not clean after 3 attempts" >&2; exit 1; }
done

# guest no longer needed
kill "$QEMU_PID" 2>/dev/null || true
wait "$QEMU_PID" 2>/dev/null || true

# --- c. loopback, pipelined, in namespace npt-host -----------------------------------------
ip netns del "$HOSTNS" 2>/dev/null || true
ip netns add "$HOSTNS"
inhost ip link set lo up
ip netns exec "$HOSTNS" redis-server --bind 127.0.0.1 --port 6379 --protected-mode no --save '' --appendonly no \
    --daemonize no --dir "$WORK" >"$LOGS/loopback-redis.log" 2>&1 &
RS=$!; PIDS+=("$RS")
t0=$(date +%s)
until inhost redis-cli -h 127.0.0.1 ping 2>/dev/null | grep -q PONG; do
    [ $(( $(date +%s) - t0 )) -lt 20 ] || { echo "loopback redis did not start" >&2; exit 1; }
    sleep 0.2
done
C=$OUT/loopback-pipelined.pcap
rm -f "$C"
ip netns exec "$HOSTNS" tcpdump -i lo --time-stamp-precision=nano -s 2048 -B 16384 -w "$C" 'tcp port 6379' \
    2>"$LOGS/loopback-pipelined.tcpdump.stderr" &
TD=$!; PIDS+=("$TD")
wait_for_line "$LOGS/loopback-pipelined.tcpdump.stderr" 'listening on' 10
sleep 0.5
inhost timeout 600 redis-benchmark -h 127.0.0.1 -c 4 -P 16 -n 20000 -t get,set \
    >"$LOGS/loopback-pipelined.bench.txt" 2>&1 || { cat "$LOGS/loopback-pipelined.bench.txt" >&2; exit 1; }
sleep 1
stop_pid "$TD"
cat "$LOGS/loopback-pipelined.tcpdump.stderr" >&2
python3 "$HERE/expected.py" "$C" >"$OUT/expected/loopback-pipelined.json"

# record versions
{
    echo "guest kernel: $KVER"
    qemu-system-x86_64 --version | head -1
    redis-server --version
    tcpdump --version 2>&1 | head -2
    dumpcap --version 2>&1 | head -1
    tshark --version 2>&1 | head -1
    echo "host kernel: $(uname -r)"
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$LOGS/versions.txt"
chown root:root "$A" "$B" "$B2" "$C"
chmod 644 "$A" "$B" "$B2" "$C"
for f in "$A" "$B" "$B2" "$C"; do capinfos -c -s -M "$f" | sed -n '1,4p' >&2; done
log "done"
