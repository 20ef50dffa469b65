#!/bin/bash
# build-guest.sh OUTDIR
# Builds a minimal Linux microVM ("redis-server as init", Lupine-style):
#   OUTDIR/vmlinuz, OUTDIR/initrd.gz, OUTDIR/kernel-version
# Kernel: Debian linux-image-<ver>-cloud-amd64 (version = what the metapackage
# linux-image-cloud-amd64 depends on; override with NP_KERNEL_PKG=linux-image-...).
# Guest address: kernel cmdline np.ip=A.B.C.D/NN (default 10.77.0.2/24).
set -euo pipefail

OUTDIR=${1:?usage: build-guest.sh OUTDIR}
CACHE=${NP_CACHE:-/var/cache/netprobe-traces}
mkdir -p "$OUTDIR" "$CACHE"
OUTDIR=$(cd "$OUTDIR" && pwd)

need() { command -v "$1" >/dev/null 2>&1; }
if ! need busybox || ! need redis-server || ! need cpio; then
    apt-get install -y busybox-static redis-server cpio >/dev/null
fi
[ -x /bin/busybox ] || { echo "busybox-static missing" >&2; exit 1; }
file -b /bin/busybox 2>/dev/null | grep -q 'statically linked' || {
    echo "warning: /bin/busybox does not look static (install busybox-static)" >&2; }

PKG=${NP_KERNEL_PKG:-}
if [ -z "$PKG" ]; then
    PKG=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
          awk '/Depends: linux-image-[0-9].*-cloud-amd64$/ {print $2; exit}')
fi
if [ -z "$PKG" ]; then
    PKG=$(apt-cache search --names-only '^linux-image-[0-9.]+-[0-9]+-cloud-amd64$' |
          awk '{print $1}' | sort -V | tail -1)
fi
[ -n "$PKG" ] || { echo "no linux-image-*-cloud-amd64 found (apt-get update?)" >&2; exit 1; }
KVER=${PKG#linux-image-}
echo "kernel package: $PKG" >&2

cd "$CACHE"
DEB=$(ls "$PKG"_*.deb 2>/dev/null | head -1 || true)
if [ -z "$DEB" ]; then
    apt-get download "$PKG" >&2
    DEB=$(ls "$PKG"_*.deb | head -1)
fi
KDIR="$CACHE/extract-$KVER"
if [ ! -f "$KDIR/boot/vmlinuz-$KVER" ]; then
    rm -rf "$KDIR"; mkdir -p "$KDIR"
    dpkg -x "$DEB" "$KDIR"
fi
MODDIR="$KDIR/lib/modules/$KVER/kernel"

ROOT=$(mktemp -d /tmp/npt-initrd.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,etc,lib/modules,run,var}

# modules in dependency order (checked against each .ko's "depends=" modinfo)
MODS="drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_modern_dev
drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci net/core/failover
drivers/net/net_failover drivers/net/virtio_net"
: > "$ROOT/lib/modules/order"
for m in $MODS; do
    b=$(basename "$m")
    if [ -f "$MODDIR/$m.ko" ]; then cp "$MODDIR/$m.ko" "$ROOT/lib/modules/$b.ko"
    elif [ -f "$MODDIR/$m.ko.xz" ]; then xz -dc "$MODDIR/$m.ko.xz" > "$ROOT/lib/modules/$b.ko"
    elif [ -f "$MODDIR/$m.ko.zst" ]; then zstd -dc "$MODDIR/$m.ko.zst" > "$ROOT/lib/modules/$b.ko"
    else echo "module $m not found (built in?) - skipping" >&2; continue; fi
    echo "$b" >> "$ROOT/lib/modules/order"
done

cp /bin/busybox "$ROOT/bin/busybox"
for a in $("$ROOT/bin/busybox" --list); do
    [ "$a" = busybox ] || ln -sf busybox "$ROOT/bin/$a"
done

cp /usr/bin/redis-server "$ROOT/usr/bin/redis-server"
# every library ldd lists plus the loader, at their original paths
for lib in $(ldd /usr/bin/redis-server | grep -o '/[^ ]*'); do
    mkdir -p "$ROOT$(dirname "$lib")"
    cp -L "$lib" "$ROOT$lib"
done
# merged-/usr: make /lib64 and /lib/x86_64-linux-gnu resolvable either way
if [ -d "$ROOT/lib/x86_64-linux-gnu" ] && [ ! -e "$ROOT/usr/lib/x86_64-linux-gnu" ]; then
    mkdir -p "$ROOT/usr/lib"; ln -s ../../lib/x86_64-linux-gnu "$ROOT/usr/lib/x86_64-linux-gnu"
fi
echo "root:x:0:0:root:/:/bin/sh" > "$ROOT/etc/passwd"
echo "root:x:0:" > "$ROOT/etc/group"
echo "127.0.0.1 localhost" > "$ROOT/etc/hosts"

cat > "$ROOT/init" <<'EOF'
#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
for m in $(cat /lib/modules/order); do
    insmod /lib/modules/$m.ko || echo "init: insmod $m failed"
done
IP=10.77.0.2/24
for w in $(cat /proc/cmdline); do
    case "$w" in np.ip=*) IP=${w#np.ip=} ;; esac
done
ip link set lo up
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
ip addr add "$IP" dev eth0
ip link set eth0 up
echo "init: kernel $(uname -r), eth0 $IP"
ip addr show eth0
cd /tmp
exec /usr/bin/redis-server --bind 0.0.0.0 --protected-mode no --save '' --appendonly no \
    --dir /tmp --logfile ''
EOF
chmod 755 "$ROOT/init"

(cd "$ROOT" && find . | cpio -o -H newc --quiet | gzip -9) > "$OUTDIR/initrd.gz"
cp "$KDIR/boot/vmlinuz-$KVER" "$OUTDIR/vmlinuz"
echo "$KVER ($(basename "$DEB"))" > "$OUTDIR/kernel-version"
echo "built $OUTDIR/vmlinuz $OUTDIR/initrd.gz (kernel $KVER)" >&2
ls -l "$OUTDIR" >&2
