import NetprobeCore

/// One TCP connection of a load run: the client vantage point's view of a flow.
public struct ClientConnection: Sendable, Equatable {
    /// Position in the run's connection list (0-based); records refer to it.
    public var index: Int
    /// The client's address and ephemeral port (getsockname).
    public var client: Endpoint
    /// The Redis server's address and port.
    public var server: Endpoint
    /// When the connection was established (CLOCK_REALTIME, ns).
    public var connectedNs: Int64

    public init(index: Int, client: Endpoint, server: Endpoint, connectedNs: Int64) {
        self.index = index
        self.client = client
        self.server = server
        self.connectedNs = connectedNs
    }
}

/// One request as the client saw it: when it left and when its reply was complete, and where
/// both sit in their TCP streams, so that an analyzer can find the packets that carried them.
///
/// Stream offsets count payload bytes from the start of each direction of the connection (the
/// first byte after the handshake is offset 0, i.e. TCP sequence number ISN + 1).
public struct ClientRequestRecord: Sendable, Equatable {
    /// The connection's index in the run (see `ClientConnection`).
    public var connection: Int
    /// Client address and local port of the connection.
    public var client: Endpoint
    /// Server address and port.
    public var server: Endpoint
    public var command: LoadCommandKind
    /// The reply was a RESP error (`-ERR ...`).
    public var isErrorReply: Bool
    /// Bytes sent on this connection before the request's first byte.
    public var requestOffset: UInt64
    /// The request's length in bytes.
    public var requestLength: Int
    /// Bytes received on this connection before the reply's first byte.
    public var replyOffset: UInt64
    /// CLOCK_REALTIME ns read just before the send(2) that carried the request's last byte.
    public var sendNs: Int64
    /// CLOCK_REALTIME ns read just after the recv(2) that returned the reply's last byte.
    public var receiveNs: Int64

    public init(connection: Int, client: Endpoint, server: Endpoint, command: LoadCommandKind,
                isErrorReply: Bool, requestOffset: UInt64, requestLength: Int, replyOffset: UInt64,
                sendNs: Int64, receiveNs: Int64) {
        self.connection = connection
        self.client = client
        self.server = server
        self.command = command
        self.isErrorReply = isErrorReply
        self.requestOffset = requestOffset
        self.requestLength = requestLength
        self.replyOffset = replyOffset
        self.sendNs = sendNs
        self.receiveNs = receiveNs
    }

    /// The latency the client saw: receive - send.
    public var latencyNs: Int64 { receiveNs - sendNs }
}

// The binary record format (`ClientRecordFormat`, shared with the core) in the load generator's terms.

extension ClientConnection {
    /// The connection's entry in the record format (the index is kept in 16 bits).
    public var entry: ClientRecordFormat.Connection {
        ClientRecordFormat.Connection(
            index: UInt16(truncatingIfNeeded: index), client: client.address.recordAddress, clientPort: client.port,
            server: server.address.recordAddress, serverPort: server.port, connectedNs: connectedNs)
    }

    public init(_ e: ClientRecordFormat.Connection) {
        self.init(index: Int(e.index), client: Endpoint(address: IPAddress(e.client), port: e.clientPort),
                  server: Endpoint(address: IPAddress(e.server), port: e.serverPort), connectedNs: e.connectedNs)
    }
}

extension ClientRequestRecord {
    /// The request's entry in the record format.
    @inline(__always)
    public var entry: ClientRecordFormat.Request {
        ClientRecordFormat.Request(
            connection: UInt16(truncatingIfNeeded: connection), command: command.rawValue, flags: isErrorReply ? 1 : 0,
            clientPort: client.port, requestOffset: requestOffset, requestLength: UInt32(truncatingIfNeeded: requestLength),
            replyOffset: replyOffset, sendNs: sendNs, receiveNs: receiveNs)
    }

    /// The request of entry `e` on `connection` (the one `e` names); nil for a command this
    /// version does not know.
    public init?(_ e: ClientRecordFormat.Request, connection c: ClientConnection) {
        guard let command = LoadCommandKind(rawValue: e.command) else { return nil }
        self.init(connection: c.index, client: c.client, server: c.server, command: command,
                  isErrorReply: e.isErrorReply, requestOffset: e.requestOffset, requestLength: Int(e.requestLength),
                  replyOffset: e.replyOffset, sendNs: e.sendNs, receiveNs: e.receiveNs)
    }
}
