/// The guest's `/init`: a busybox shell script that is the whole operating system around Redis.
///
/// It mounts proc, sys and devtmpfs, loads the virtio modules in the order listed in
/// /lib/modules/order, brings up eth0 with the address from the kernel command line
/// (`np.ip=A.B.C.D/NN`, default 10.77.0.2/24), and execs redis-server, which becomes PID 1.
/// Lines it prints start with `netprobe-init:`; the first one (`aliveMarker`) is the sign of
/// life the KVM probe waits for. With `np.probe=1` on the command line it powers off right after
/// that line (the probe needs no network).
enum GuestInit {
    /// Printed as soon as init runs.
    static let aliveMarker = "netprobe-init: alive"
    /// Printed when eth0 has its address, just before Redis starts.
    static let networkMarker = "netprobe-init: eth0 up"

    /// The script text (part of the guest image's cache key).
    static let script = """
        #!/bin/sh
        # netprobe guest init: Redis is the only program (made by netprobe lab).
        export PATH=/bin:/sbin:/usr/bin:/usr/sbin
        mount -t proc proc /proc
        mount -t sysfs sysfs /sys
        mount -t devtmpfs devtmpfs /dev 2>/dev/null
        mount -t tmpfs tmpfs /tmp
        echo "\(aliveMarker) (kernel $(uname -r))"
        IP=10.77.0.2/24
        PORT=6379
        PROBE=0
        for w in $(cat /proc/cmdline); do
            case "$w" in
                np.ip=*) IP=${w#np.ip=} ;;
                np.port=*) PORT=${w#np.port=} ;;
                np.probe=1) PROBE=1 ;;
            esac
        done
        if [ "$PROBE" = 1 ]; then
            echo "netprobe-init: probe done, powering off"
            poweroff -f
        fi
        for m in $(cat /lib/modules/order); do
            insmod /lib/modules/$m.ko || echo "netprobe-init: insmod $m failed"
        done
        ip link set lo up
        i=0
        while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
        if [ ! -e /sys/class/net/eth0 ]; then
            echo "netprobe-init: no eth0 after 10 s (is there a virtio-net device?)"
        fi
        ip addr add "$IP" dev eth0
        ip link set eth0 up
        echo "\(networkMarker) $IP, starting redis-server on port $PORT"
        cd /tmp
        exec /usr/bin/redis-server --bind 0.0.0.0 --port "$PORT" --protected-mode no --save '' --appendonly no \\
            --dir /tmp --logfile ''

        """

    /// The lines of `script` that give eth0 its static address.
    static let staticNetworkLines = """
        ip addr add "$IP" dev eth0
        ip link set eth0 up
        echo "\(networkMarker) $IP, starting redis-server on port $PORT"

        """

    /// Where the DHCP variant's udhcpc event script lives in the initramfs.
    static let udhcpcScriptPath = "etc/udhcpc.script"

    /// The same init, asking for its address by DHCP (busybox udhcpc: ten requests a second
    /// apart) instead of taking it from the command line: the built-in guest as a guest that
    /// configures itself, the way OSv and Rumprun do. Without a lease it says so and starts
    /// Redis all the same (it then answers nobody).
    static let dhcpScript: String = {
        let dhcp = """
            ip link set eth0 up
            if udhcpc -i eth0 -q -n -t 10 -T 1 -s /\(udhcpcScriptPath); then
                IP=$(cat /tmp/dhcp-address)
            else
                echo "netprobe-init: no DHCP lease after 10 requests"
                IP=none
            fi
            echo "\(networkMarker) $IP by DHCP, starting redis-server on port $PORT"

            """
        let variant = script.replacingOccurrences(of: staticNetworkLines, with: dhcp)
        precondition(variant != script, "GuestInit.staticNetworkLines no longer matches the script")
        return variant
    }()

    /// udhcpc's event script: the lease's address (and default route) on the interface.
    static let udhcpcScript = """
        #!/bin/sh
        case "$1" in
            deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
            bound|renew)
                ip addr flush dev "$interface"
                ip addr add "$ip/$mask" dev "$interface"
                [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
                echo "$ip/$mask" > /tmp/dhcp-address ;;
        esac

        """
}

