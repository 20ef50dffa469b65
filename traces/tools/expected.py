#!/usr/bin/env python3
"""expected.py TRACE [--port 6379] > expected/NAME.json

Independent computation (tshark + this script; no netprobe code) of per-command Redis
request counts and request->response latencies in a packet capture.

Definitions (the ones netprobe is to implement):
  * vantage = capture interface: frame.interface_name from tshark (pcapng: the IDB's
    if_name); classic pcap has no interface name, so its single vantage is "".
  * connection = TCP 4-tuple (client ip, client port, server ip, server port) where the
    server port is 6379, per vantage.  A new SYN on a tuple already carrying data starts a
    new connection instance.
  * the request stream is client->server bytes, the response stream server->client bytes,
    each reassembled by raw TCP sequence number.  Every byte is counted once: a
    retransmitted byte range (seq already seen) is ignored and keeps the timestamp of the
    packet that carried it first.  Bytes after a hole (never captured) or after a
    payload truncated by the snaplen are not parsed (counted in streamGaps /
    truncatedPayloadSegments).
  * streamGaps counts directions with a hole (bytes never captured); truncatedStreams
    counts directions cut short by a snaplen-truncated payload: the captured part of
    that segment is still parsed, nothing after it.
  * requests are RESP arrays of bulk strings (inline commands also accepted); the
    command name is the first element, upper-cased.  Responses are complete RESP2/RESP3
    values (nested aggregates counted as one reply), so pipelined replies pair correctly.
  * request i on a connection pairs with response i on the same connection, only when
    both SYN and SYN-ACK were captured (stream starts known); otherwise every request
    and reply of that connection is unpaired (unalignedConnections).  Parsing of a
    direction stops at its first hole, so pairs before both holes stay aligned.
  * latency = timestamp of the packet carrying the response's FIRST byte minus the
    timestamp of the packet carrying the request's LAST byte (integer nanoseconds).
  * percentiles: nearest rank, value at rank ceil(p/100*N) (1-based) of the sorted list.
  * unpaired = requests without a response + responses without a request, summed
    over connections.
"""
import bisect
import json
import os
import struct
import subprocess
import sys
from fractions import Fraction

FIELDS = ["frame.number", "frame.time_epoch", "frame.interface_name", "frame.interface_id",
          "frame.len", "frame.cap_len", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst",
          "tcp.srcport", "tcp.dstport", "tcp.seq_raw", "tcp.len", "tcp.flags.syn",
          "tcp.flags.ack", "tcp.payload"]


def tshark_cmd(path):
    cmd = ["tshark", "-n", "-r", path,
           "-o", "tcp.desegment_tcp_streams:FALSE",
           "-o", "tcp.relative_sequence_numbers:FALSE",
           "-T", "fields", "-E", "separator=/t", "-E", "occurrence=f"]
    for f in FIELDS:
        cmd += ["-e", f]
    return cmd


def parse_epoch_ns(s):
    if "." in s:
        sec, frac = s.split(".", 1)
    else:
        sec, frac = s, ""
    frac = (frac + "000000000")[:9]
    return int(sec) * 1_000_000_000 + int(frac)


def parse_bool(s):
    return s in ("1", "True", "true")


def parse_hex_bytes(s):
    if not s:
        return b""
    return bytes.fromhex(s.replace(":", ""))


# ---------------------------------------------------------------- stream reassembly
class Direction:
    def __init__(self):
        self.base = None          # absolute seq of stream offset 0
        self.next = 0             # next expected offset
        self.chunk_starts = []    # stream offsets where a new packet's bytes begin
        self.chunk_ts = []        # timestamp (ns) of that packet
        self.data = bytearray()
        self.pending = {}         # offset -> (bytes, ts, truncated) out of order
        self.retransmitted = 0
        self.broken = False       # a truncated payload ended parseable bytes
        self.truncated = 0
        self.syn_seen = False

    def set_base_from_syn(self, seq):
        self.base = (seq + 1) & 0xFFFFFFFF
        self.syn_seen = True

    def add(self, seq, payload, tcp_len, ts):
        if self.base is None:
            self.base = seq
        off = (seq - self.base) & 0xFFFFFFFF
        if off >= 0x80000000:          # before the base: old data, treat as retransmission
            self.retransmitted += 1
            return
        truncated = len(payload) < tcp_len
        if truncated:
            self.truncated += 1
        if self.broken:
            return
        if off + tcp_len <= self.next:
            self.retransmitted += 1
            return
        if off > self.next:
            self.pending.setdefault(off, (payload, tcp_len, ts, truncated))
            return
        self._append(off, payload, tcp_len, ts, truncated)
        while not self.broken:
            nxt = [o for o in self.pending if o <= self.next]
            if not nxt:
                break
            for o in sorted(nxt):
                p, l, t, tr = self.pending.pop(o)
                if o + l > self.next and not self.broken:
                    self._append(o, p, l, t, tr)

    def _append(self, off, payload, tcp_len, ts, truncated):
        skip = self.next - off
        new = payload[skip:]
        if new:
            self.chunk_starts.append(self.next)
            self.chunk_ts.append(ts)
            self.data += new
        if truncated:
            self.broken = True
            self.next = off + len(payload)
        else:
            self.next = off + tcp_len

    def ts_of(self, offset):
        i = bisect.bisect_right(self.chunk_starts, offset) - 1
        return self.chunk_ts[i]

    def gaps(self):
        return 1 if (self.pending and not self.broken) else 0


class Conn:
    def __init__(self):
        self.c2s = Direction()
        self.s2c = Direction()
        self.has_data = False


# ---------------------------------------------------------------- RESP parsing
class Incomplete(Exception):
    pass


def _line(buf, pos):
    e = buf.find(b"\r\n", pos)
    if e < 0:
        raise Incomplete()
    return e


def resp_value_end(buf, pos):
    """Return the offset just past the RESP value starting at pos."""
    if pos >= len(buf):
        raise Incomplete()
    t = buf[pos:pos + 1]
    e = _line(buf, pos)
    if t in (b"+", b"-", b":", b"_", b",", b"#", b"("):
        return e + 2
    if t in (b"$", b"!", b"="):
        n = int(buf[pos + 1:e])
        if n < 0:
            return e + 2
        end = e + 2 + n + 2
        if end > len(buf):
            raise Incomplete()
        return end
    if t in (b"*", b"~", b">", b"%", b"|"):
        n = int(buf[pos + 1:e])
        p = e + 2
        if n < 0:
            return p
        if t in (b"%", b"|"):
            n *= 2
        for _ in range(n):
            p = resp_value_end(buf, p)
        if t == b"|":                  # attribute: the actual reply follows
            p = resp_value_end(buf, p)
        return p
    raise ValueError("bad RESP type byte %r at %d" % (t, pos))


def parse_requests(buf):
    """-> list of (start, end, NAME), leftover byte count"""
    out = []
    pos = 0
    n = len(buf)
    while pos < n:
        try:
            if buf[pos:pos + 1] == b"*":
                end = resp_value_end(buf, pos)
                e = _line(buf, pos)
                name = ""
                if int(buf[pos + 1:e]) > 0 and buf[e + 2:e + 3] == b"$":
                    e2 = _line(buf, e + 2)
                    ln = int(buf[e + 3:e2])
                    name = bytes(buf[e2 + 2:e2 + 2 + ln]).decode("latin-1").upper()
            else:                       # inline command
                e = buf.find(b"\n", pos)
                if e < 0:
                    raise Incomplete()
                end = e + 1
                words = bytes(buf[pos:e]).strip().split()
                if not words:           # empty line: not a command
                    pos = end
                    continue
                name = words[0].decode("latin-1").upper()
        except Incomplete:
            break
        out.append((pos, end, name))
        pos = end
    return out, n - pos


def parse_responses(buf):
    out = []
    pos = 0
    n = len(buf)
    while pos < n:
        try:
            end = resp_value_end(buf, pos)
        except Incomplete:
            break
        out.append((pos, end))
        pos = end
    return out, n - pos


# ---------------------------------------------------------------- statistics
PCTS = [("p50", Fraction(50)), ("p90", Fraction(90)), ("p99", Fraction(99)),
        ("p999", Fraction("99.9"))]


def nearest_rank(sorted_vals, p):
    n = len(sorted_vals)
    r = -(-(p * n) // 100)              # ceil(p/100*n), exact
    r = max(1, min(n, int(r)))
    return sorted_vals[r - 1]


def summary(vals_ns):
    if not vals_ns:
        return None, None
    v = sorted(vals_ns)
    ns = {k: nearest_rank(v, p) for k, p in PCTS}
    ns["max"] = v[-1]
    ns["min"] = v[0]
    ns["mean"] = sum(v) / len(v)
    ns["count"] = len(v)
    us = {k: (round(x / 1000.0, 3) if k != "count" else x) for k, x in ns.items()}
    ns["mean"] = round(ns["mean"], 3)
    return us, ns


# ---------------------------------------------------------------- pcapng blocks (ISB)
def pcapng_interfaces(path):
    """Read IDBs and ISBs straight from the file. Returns None for non-pcapng files."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 12 or struct.unpack_from("<I", raw, 0)[0] != 0x0A0D0D0A:
        return None
    res = []
    pos = 0
    section = -1
    idbs = []
    bo = "<"
    while pos + 12 <= len(raw):
        btype = struct.unpack_from("<I", raw, pos)[0]
        if btype == 0x0A0D0D0A:
            magic = struct.unpack_from("<I", raw, pos + 8)[0]
            bo = "<" if magic == 0x1A2B3C4D else ">"
            section += 1
            idbs = []
        btype, blen = struct.unpack_from(bo + "II", raw, pos)
        body = raw[pos + 8:pos + blen - 4]

        def options(b):
            o = {}
            p = 0
            while p + 4 <= len(b):
                code, ln = struct.unpack_from(bo + "HH", b, p)
                if code == 0:
                    break
                o.setdefault(code, []).append(b[p + 4:p + 4 + ln])
                p += 4 + ((ln + 3) & ~3)
            return o

        if btype == 1:
            linktype, _, snap = struct.unpack_from(bo + "HHI", body, 0)
            o = options(body[8:])
            ent = {"section": section, "id": len(idbs),
                   "name": o.get(2, [b""])[0].decode("utf-8", "replace"),
                   "linktype": linktype, "snaplen": snap,
                   "tsresol": o[9][0][0] if 9 in o else 6}
            if 11 in o:
                ent["filter"] = o[11][0][1:].decode("utf-8", "replace")
            idbs.append(ent)
            res.append(ent)
        elif btype == 5:
            ifid, tshi, tslo = struct.unpack_from(bo + "III", body, 0)
            o = options(body[12:])
            ent = idbs[ifid]
            ent["isb_timestampRaw"] = (tshi << 32) | tslo
            if 1 in o:
                ent["isb_comment"] = o[1][0].decode("utf-8", "replace")
            names = {2: "starttime", 3: "endtime", 4: "ifrecv", 5: "ifdrop",
                     6: "filteraccept", 7: "osdrop", 8: "usrdeliv"}
            for code, key in names.items():
                if code in o and len(o[code][0]) == 8:
                    if code in (2, 3):      # u32 high, u32 low in if_tsresol units
                        hi, lo = struct.unpack(bo + "II", o[code][0])
                        ent["isb_" + key] = (hi << 32) | lo
                    else:
                        ent[key] = struct.unpack(bo + "Q", o[code][0])[0]
            ent["isbOptionCodes"] = sorted(o)
            ent["isbCount"] = ent.get("isbCount", 0) + 1
        pos += blen
    return res


# ---------------------------------------------------------------- main
def main():
    args = sys.argv[1:]
    port = 6379
    if "--port" in args:
        i = args.index("--port")
        port = int(args[i + 1])
        del args[i:i + 2]
    if len(args) != 1:
        sys.exit(__doc__)
    path = args[0]
    name = os.path.basename(path)

    proc = subprocess.run(tshark_cmd(path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          check=True, text=True)
    total = 0
    per_if_packets = {}
    conns = {}          # (iface, cip, cport, sip, sport) -> list[Conn]
    first_ts = last_ts = None
    for line in proc.stdout.splitlines():
        c = line.split("\t")
        c += [""] * (len(FIELDS) - len(c))
        rec = dict(zip(FIELDS, c))
        total += 1
        iface = rec["frame.interface_name"]
        per_if_packets[iface] = per_if_packets.get(iface, 0) + 1
        ts = parse_epoch_ns(rec["frame.time_epoch"])
        first_ts = ts if first_ts is None else min(first_ts, ts)
        last_ts = ts if last_ts is None else max(last_ts, ts)
        src = rec["ip.src"] or rec["ipv6.src"]
        dst = rec["ip.dst"] or rec["ipv6.dst"]
        if not rec["tcp.srcport"] or not src:
            continue
        sport, dport = int(rec["tcp.srcport"]), int(rec["tcp.dstport"])
        if dport == port:
            key, to_server = (iface, src, sport, dst, dport), True
        elif sport == port:
            key, to_server = (iface, dst, dport, src, sport), False
        else:
            continue
        seq = int(rec["tcp.seq_raw"])
        tcp_len = int(rec["tcp.len"] or 0)
        syn = parse_bool(rec["tcp.flags.syn"])
        lst = conns.setdefault(key, [])
        if not lst or (syn and to_server and not parse_bool(rec["tcp.flags.ack"])
                       and lst[-1].has_data):
            lst.append(Conn())
        conn = lst[-1]
        d = conn.c2s if to_server else conn.s2c
        if syn:
            d.set_base_from_syn(seq)
            continue
        if tcp_len == 0:
            continue
        payload = parse_hex_bytes(rec["tcp.payload"])
        conn.has_data = True
        d.add(seq, payload, tcp_len, ts)

    per_if = {}
    for iface in sorted(per_if_packets):
        per_if[iface] = {"packets": per_if_packets[iface], "connections": 0,
                         "requestsByCommand": {}, "responses": 0, "unpaired": 0,
                         "retransmittedSegments": 0, "streamGaps": 0,
                         "truncatedPayloadSegments": 0, "truncatedStreams": 0,
                         "incompleteTrailingBytes": 0,
                         "negativeLatencies": 0, "unalignedConnections": 0,
                         "_lat": [], "_latcmd": {}, "connectionsDetail": []}
    for key, lst in conns.items():
        st = per_if[key[0]]
        for conn in lst:
            st["connections"] += 1
            reqs, lreq = parse_requests(conn.c2s.data)
            resps, lresp = parse_responses(conn.s2c.data)
            st["incompleteTrailingBytes"] += lreq + lresp
            det = {"client": "%s:%d" % (key[1], key[2]), "server": "%s:%d" % (key[3], key[4]),
                   "requestsByCommand": {}, "responses": len(resps),
                   "requestBytes": len(conn.c2s.data), "responseBytes": len(conn.s2c.data),
                   "incompleteTrailingBytes": {"request": lreq, "response": lresp}}
            for label, d in (("request", conn.c2s), ("response", conn.s2c)):
                st["retransmittedSegments"] += d.retransmitted
                st["streamGaps"] += d.gaps()
                st["truncatedStreams"] += 1 if d.broken else 0
                st["truncatedPayloadSegments"] += d.truncated
                if d.retransmitted or d.gaps() or d.truncated:
                    det[label + "StreamIssues"] = {"retransmittedSegments": d.retransmitted,
                                                   "gap": bool(d.gaps()),
                                                   "truncatedPayloadSegments": d.truncated}
            st["connectionsDetail"].append(det)
            for _, _, cmd in reqs:
                st["requestsByCommand"][cmd] = st["requestsByCommand"].get(cmd, 0) + 1
                det["requestsByCommand"][cmd] = det["requestsByCommand"].get(cmd, 0) + 1
            st["responses"] += len(resps)
            if conn.c2s.syn_seen and conn.s2c.syn_seen:
                pairs = list(zip(reqs, resps))
                st["unpaired"] += abs(len(reqs) - len(resps))
            else:
                # the start of a stream was not captured: which request a reply answers
                # is unknown, so nothing on this connection is paired
                pairs = []
                st["unpaired"] += len(reqs) + len(resps)
                st["unalignedConnections"] += 1
                det["unaligned"] = True
            for (qs, qe, cmd), (rs, re_) in pairs:
                lat = conn.s2c.ts_of(rs) - conn.c2s.ts_of(qe - 1)
                if lat < 0:
                    st["negativeLatencies"] += 1
                st["_lat"].append(lat)
                st["_latcmd"].setdefault(cmd, []).append(lat)

    for iface, st in per_if.items():
        st["requests"] = sum(st["requestsByCommand"].values())
        st["requestsByCommand"] = dict(sorted(st["requestsByCommand"].items()))
        us, ns = summary(st.pop("_lat"))
        st["latencyUs"] = us
        st["latencyNs"] = ns
        lc = st.pop("_latcmd")
        st["latencyUsByCommand"] = {k: summary(v)[0] for k, v in sorted(lc.items())}

    out = {
        "trace": name,
        "fileSize": os.path.getsize(path),
        "packets": total,
        "firstTimestampNs": first_ts,
        "lastTimestampNs": last_ts,
        "serverPort": port,
        "percentileMethod": "nearest-rank: value at 1-based rank ceil(p/100*N) of the sorted "
                            "latencies; p999 means p=99.9; latencyUs = latencyNs/1000 rounded "
                            "to 3 decimals; mean is the arithmetic mean",
        "latencyDefinition": "ts(packet carrying the response's first byte) - ts(packet "
                             "carrying the request's last byte); request i paired with "
                             "response i per TCP connection per interface; retransmitted "
                             "byte ranges counted once (first capture)",
        "interfaceNaming": "tshark frame.interface_name (pcapng if_name); classic pcap has "
                           "no interface name: key \"\"",
        "computedWith": "tools/expected.py via: " + " ".join(
            a if " " not in a else "'%s'" % a for a in tshark_cmd(name)),
        "perInterface": per_if,
    }
    ifs = pcapng_interfaces(path)
    if ifs is not None:
        for ent in ifs:             # absent ISB options are reported as null
            for key in ("ifrecv", "ifdrop", "osdrop"):
                ent.setdefault(key, None)
        out["interfaces"] = ifs
        out["interfacesNote"] = ("read directly from the pcapng IDB/ISB blocks by "
                                 "expected.py; ifdrop = isb_ifdrop (opt 5), osdrop = "
                                 "isb_osdrop (opt 7), ifrecv = isb_ifrecv (opt 4), "
                                 "usrdeliv = isb_usrdeliv (opt 8); null = option absent "
                                 "from the ISB; isb_starttime/isb_endtime in if_tsresol units")
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
