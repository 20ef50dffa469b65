import CPcap
import Glibc
import NetprobeSystem

/// Settings of one live capture handle.
public struct LiveCaptureSettings: Sendable {
    /// Bytes kept of each packet. The default keeps Ethernet, IP and TCP headers plus the start of
    /// the RESP payload of small pipelined batches; raise it (`-s 0` = 262144) for large values.
    public var snapLength: Int32 = 2048
    /// Kernel ring buffer per interface (pcap_set_buffer_size).
    public var bufferBytes: Int32 = 64 << 20
    /// A BPF filter compiled for the kernel (pcap_compile + pcap_setfilter).
    public var filter: String = "tcp port 6379"
    /// Delivery timeout: the kernel hands over a block of packets at least this often. It does not
    /// affect timestamps (taken on arrival).
    public var timeoutMs: Int32 = 100
    /// Per-packet delivery (TPACKET_V2, pcap_set_immediate_mode; `capture --immediate-mode`).
    /// Off by default: block delivery (TPACKET_V3) wakes the capture thread once per filled block
    /// or timeout instead of once per packet, and those wake-ups are paid on the CPUs of Redis and
    /// its clients. Measured with netprobe-capture-bench on 2 CPUs (redis-benchmark -c 10, with
    /// and without capture alternating): Redis's throughput with capture, as a share of without,
    /// was 0.58 immediate / 0.94 block on loopback (64k req/s; capture CPU 1.4 s against 0.09 s
    /// per 400k packets) and 0.83 / 0.95 against the TCG guest behind bridge + tap (14k req/s);
    /// no kernel drops either way. Block delivery only delays handing packets over (at most
    /// `timeoutMs`); the stamps are taken on arrival either way.
    public var immediate = false
    public init() {}
}

/// One libpcap capture handle on one interface, nanosecond timestamps, kernel BPF filter.
///
/// Owns its `pcap_t` and closes it in `deinit`. Open it on a thread that is inside the
/// interface's network namespace (see `NetworkNamespace.withNamespace`); it stays bound there.
public final class LiveCapture {
    public let interface: String
    let handle: OpaquePointer
    /// The link type as pcap reports it (pcap_datalink).
    public let linkType: UInt32
    public let settings: LiveCaptureSettings
    /// A warning from pcap_activate (positive status), if any.
    public let activationWarning: String?
    /// How many times the kernel's received count (ps_recv) counts one captured packet: 2 on
    /// loopback when outgoing copies cannot be kept out of the socket, else 1.
    public let receivedCopiesPerPacket: UInt64

    /// pcap_create -> snaplen, promisc off, nanosecond stamps, immediate mode, buffer, timeout ->
    /// pcap_activate -> pcap_compile + pcap_setfilter -> non-blocking.
    public init(interface: String, settings: LiveCaptureSettings) throws {
        // The handle is set up by `Self.open`, which closes it on every failure; this object
        // owns it (and closes it in deinit) only once it is fully working. (A throw from the
        // initializer after every stored property is set runs deinit, so an initializer that
        // both owned the handle and closed it on failure closed it twice.)
        let opened = try Self.open(interface: interface, settings: settings)
        self.interface = interface
        self.settings = settings
        handle = opened.handle
        linkType = opened.linkType
        activationWarning = opened.warning
        receivedCopiesPerPacket = opened.receivedCopiesPerPacket
    }

    private struct Opened {
        var handle: OpaquePointer
        var linkType: UInt32
        var warning: String?
        var receivedCopiesPerPacket: UInt64 = 1
    }

    /// Creates, configures and activates a handle; on any failure it is closed here and the error
    /// names the interface and libpcap's text.
    private static func open(interface: String, settings: LiveCaptureSettings) throws -> Opened {
        var errbuf = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        guard let h = pcap_create(interface, &errbuf) else {
            throw CaptureError("pcap_create on \(interface): \(errorText(errbuf))")
        }
        var ok = false
        defer { if !ok { pcap_close(h) } }
        pcap_set_snaplen(h, settings.snapLength)
        pcap_set_promisc(h, 0)
        pcap_set_timeout(h, settings.timeoutMs)
        pcap_set_immediate_mode(h, settings.immediate ? 1 : 0)
        pcap_set_buffer_size(h, settings.bufferBytes)
        let precision = pcap_set_tstamp_precision(h, Int32(PCAP_TSTAMP_PRECISION_NANO))
        guard precision == 0 else {
            throw CaptureError.pcap("nanosecond timestamps are not supported", interface: interface, status: precision, handle: h)
        }
        let status = pcap_activate(h)
        if status < 0 { throw CaptureError.pcap("cannot start capturing", interface: interface, status: status, handle: h) }
        var opened = Opened(handle: h, linkType: UInt32(pcap_datalink(h)))
        if status > 0 { opened.warning = String(cString: pcap_geterr(h)) }
        if !settings.filter.isEmpty {
            var program = bpf_program()
            guard pcap_compile(h, &program, settings.filter, 1, PCAP_NETMASK_UNKNOWN) == 0 else {
                throw CaptureError("capture filter \"\(settings.filter)\" on \(interface): \(String(cString: pcap_geterr(h)))")
            }
            defer { pcap_freecode(&program) }
            guard pcap_setfilter(h, &program) == 0 else {
                throw CaptureError("cannot set the capture filter \"\(settings.filter)\" on \(interface): \(String(cString: pcap_geterr(h)))")
            }
        }
        if interface == "lo" {
            // Loopback shows every packet twice (going out, coming in) and libpcap throws the
            // outgoing copy away, but only after the kernel has copied it into the ring and
            // counted it: PACKET_IGNORE_OUTGOING (Linux 4.20) keeps it out of the socket, halving
            // the work done in Redis's and the client's context per packet. libpcap 1.10 does not
            // set it itself (pcap_setdirection filters in user space).
            var one: Int32 = 1
            if setsockopt(pcap_fileno(h), solPacket, packetIgnoreOutgoing, &one, socklen_t(MemoryLayout<Int32>.size)) != 0 {
                opened.receivedCopiesPerPacket = 2
                let why = Errno(rawValue: errno).message
                opened.warning = [opened.warning, "PACKET_IGNORE_OUTGOING not set (\(why)): the kernel counts each loopback packet twice"]
                    .compactMap { $0 }.joined(separator: "; ")
            }
        }
        guard pcap_setnonblock(h, 1, &errbuf) == 0 else {
            throw CaptureError("pcap_setnonblock on \(interface): \(errorText(errbuf))")
        }
        ok = true
        return opened
    }

    deinit { pcap_close(handle) }

    /// A descriptor to poll(2) for readability (pcap_get_selectable_fd).
    public var selectableFD: Int32 { pcap_get_selectable_fd(handle) }

    /// What the next read found.
    public enum ReadResult {
        case packet(timestampNs: Int64, data: UnsafeRawBufferPointer, originalLength: Int)
        case none
        /// The interface went away or failed: the text says why.
        case failed(String)
    }

    /// Reads one packet without blocking (pcap_next_ex). The data is valid until the next call.
    public func next() -> ReadResult {
        var header: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        let rc = pcap_next_ex(handle, &header, &data)
        switch rc {
        case 1:
            guard let h = header?.pointee, let data else { return .none }
            // With nanosecond precision, tv_usec holds nanoseconds.
            let ns = Int64(h.ts.tv_sec) * 1_000_000_000 + Int64(h.ts.tv_usec)
            return .packet(timestampNs: ns, data: UnsafeRawBufferPointer(start: data, count: Int(h.caplen)), originalLength: Int(h.len))
        case 0:
            return .none
        case PCAP_ERROR_BREAK:
            return .none
        default:
            return .failed(String(cString: pcap_geterr(handle)))
        }
    }

    /// Takes every packet waiting in the ring and does nothing with it (pcap_dispatch with an
    /// empty callback, without blocking); returns how many there were, or nil when the handle
    /// failed. netprobe-capture-bench's `--floor` uses it to measure what the kernel's side of a
    /// capture costs when user space does no work at all.
    public func discardWaiting() -> Int? {
        let n = pcap_dispatch(handle, -1, { _, _, _ in }, nil)
        return n >= 0 || n == PCAP_ERROR_BREAK ? Int(max(n, 0)) : nil
    }

    /// Kernel counters (pcap_stats): received, dropped because the ring was full (what matters),
    /// dropped by the interface (promiscuous mode only).
    public func statistics() -> (received: UInt64, dropped: UInt64, interfaceDropped: UInt64)? {
        var s = pcap_stat()
        guard pcap_stats(handle, &s) == 0 else { return nil }
        return (UInt64(s.ps_recv), UInt64(s.ps_drop), UInt64(s.ps_ifdrop))
    }
}

/// SOL_PACKET and PACKET_IGNORE_OUTGOING (<linux/socket.h>, <linux/if_packet.h>; not in Glibc's module).
private let solPacket: Int32 = 263
private let packetIgnoreOutgoing: Int32 = 23

/// The text libpcap left in an error buffer (NUL-terminated).
func errorText(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
