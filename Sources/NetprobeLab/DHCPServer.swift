import Foundation

/// The lab's DHCP server: busybox's udhcpd (busybox-static, which the guest image needs anyway),
/// run inside the lab's namespace on the link where the guest's frames arrive (the bridge, or the
/// client macvlan on the macvtap's parent), handing out one address, the lab's guest address, to
/// one MAC, the guest NIC's. So a guest that configures itself by DHCP (OSv, Rumprun, most VM
/// images) gets the lab's address without its image being edited.
///
/// udhcpd runs in the foreground (`-f`), its log in the lab's folder: which messages it sent
/// (OFFER, ACK) tells, when Redis never answers, whether the guest ever asked for an address.
struct DHCPServer {
    let paths: LabPaths

    var configFile: String { "\(paths.directory)/udhcpd.conf" }
    var logFile: String { "\(paths.directory)/udhcpd.log" }
    var leaseFile: String { "\(paths.directory)/udhcpd.leases" }
    var pidFile: String { "\(paths.directory)/udhcpd.pid" }

    /// udhcpd.conf: a pool of exactly `address`, reserved for `mac`, on `interface`.
    static func configuration(interface: String, address: String, netmask: String, router: String, mac: String,
                              leaseFile: String, pidFile: String) -> String {
        """
        # netprobe lab: one lease, the lab's guest address, for the guest's MAC.
        interface \(interface)
        start \(address)
        end \(address)
        max_leases 1
        static_lease \(mac) \(address)
        option subnet \(netmask)
        option router \(router)
        option lease 86400
        lease_file \(leaseFile)
        pidfile \(pidFile)

        """
    }

    /// Writes the configuration and starts udhcpd inside `namespace`; returns its pid.
    func start(in namespace: Netns, interface: String, address: String, prefixLength: Int, router: String, mac: String) throws -> Int32 {
        let config = Self.configuration(interface: interface, address: address, netmask: Self.netmask(prefixLength: prefixLength),
                                        router: router, mac: mac, leaseFile: leaseFile, pidFile: pidFile)
        try GuestImageBuilder.write(Array(config.utf8), to: configFile)
        try GuestImageBuilder.write([], to: leaseFile)
        try? FileManager.default.removeItem(atPath: pidFile)
        // -a 100: the check that nobody else uses the address (an ARP ping) waits 0.1 s, not 2 s.
        let script = "exec \"$0\" udhcpd -f -a 100 \"$1\" </dev/null >\"$2\" 2>&1 &"
        let argv = ["/bin/sh", "-c", script, GuestImageBuilder.busyboxPath, configFile, logFile]
        let out = try namespace.exec(argv, timeout: 30)
        guard out.succeeded, let pid = PidFile.wait(pidFile, seconds: 5) else {
            throw LabError.processDied(what: "udhcpd", detail: "(the lab's DHCP server, \(GuestImageBuilder.busyboxPath) udhcpd) did not start in \(namespace.name)",
                                       logTail: LogFile.tail(logFile) + out.stderr)
        }
        return pid
    }

    /// What udhcpd did so far, from its log.
    struct Events: Equatable {
        var offered = false
        var acknowledged = false
    }

    var events: Events { Self.events(inLog: LogFile.read(logFile)) }

    /// Reads lines like `udhcpd: sending OFFER to 10.77.0.2` and `udhcpd: sending ACK to 10.77.0.2`.
    static func events(inLog text: String) -> Events {
        Events(offered: text.contains("sending OFFER"), acknowledged: text.contains("sending ACK"))
    }

    /// 255.255.255.0 for 24.
    static func netmask(prefixLength: Int) -> String {
        let bits: UInt32 = prefixLength <= 0 ? 0 : UInt32.max << UInt32(32 - min(prefixLength, 32))
        return [24, 16, 8, 0].map { String((bits >> UInt32($0)) & 0xFF) }.joined(separator: ".")
    }
}
