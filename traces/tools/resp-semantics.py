#!/usr/bin/env python3
"""Drives a real Redis (7.x) through the reply rules a Redis analyzer must follow, one connection
per case, so that a capture of it (make-resp-semantics.sh) holds each case on the wire.

Prints, per connection, the commands sent and the replies read (what the client saw), as JSON:
the expected pairing is derived from that, independently of netprobe.
"""
import json
import socket
import sys
import time

HOST, PORT = "127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 6379


def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Conn:
    def __init__(self, name):
        self.name = name
        self.s = socket.create_connection((HOST, PORT))
        self.s.settimeout(0.3)
        self.log = []

    def send(self, *args, raw=None):
        self.s.sendall(raw if raw is not None else resp(*args))
        time.sleep(0.05)
        got = b""
        try:
            while True:
                chunk = self.s.recv(65536)
                if not chunk:
                    break
                got += chunk
                if len(chunk) < 65536:
                    break
        except socket.timeout:
            pass
        self.log.append({"sent": " ".join(a if isinstance(a, str) else a.decode() for a in args) if raw is None else raw.decode(),
                         "received": got.decode(errors="replace")})
        return got

    def close(self):
        self.s.close()
        return {"connection": self.name, "exchanges": self.log}


cases = []

# 1. CLIENT REPLY: OFF answers nothing until ON (which answers +OK); SKIP drops the next reply.
c = Conn("client-reply")
c.send("SET", "a", "1")            # +OK
c.send("CLIENT", "REPLY", "SKIP")  # no reply
c.send("SET", "b", "2")            # skipped: no reply
c.send("GET", "b")                 # $1 2
c.send("CLIENT", "REPLY", "OFF")   # no reply
c.send("SET", "c", "3")            # no reply
c.send("GET", "c")                 # no reply
c.send("CLIENT", "REPLY", "ON")    # +OK
c.send("GET", "c")                 # $1 3
cases.append(c.close())

# 2. Pub/sub in RESP2: SUBSCRIBE answers with a subscribe array per channel, messages are pushed,
#    PING answers ["pong", ""], RESET leaves subscribed mode (+RESET) and later commands pair.
sub = Conn("pubsub-resp2")
pub = Conn("publisher")
sub.send("SUBSCRIBE", "ch1", "ch2")     # two ["subscribe", ch, n] replies
pub.send("PUBLISH", "ch1", "hello")     # :1 ; sub gets a ["message", ...] push
sub.send("PING")                        # ["pong", ""]
pub.send("PUBLISH", "ch2", "world")     # :1 ; push to sub
sub.send("UNSUBSCRIBE", "ch1")          # ["unsubscribe", "ch1", 1]
sub.send("RESET")                       # +RESET
sub.send("GET", "a")                    # $1 1
cases.append(sub.close())

# 3. Pub/sub in RESP3: pushes are '>' frames; ordinary commands keep their replies.
sub3 = Conn("pubsub-resp3")
sub3.send("HELLO", "3")                 # a map
sub3.send("SUBSCRIBE", "ch3")           # >3 subscribe push (the reply to SUBSCRIBE)
pub.send("PUBLISH", "ch3", "x")         # :1 ; >3 message push to sub3
sub3.send("GET", "a")                   # $1 1 (RESP3 allows commands while subscribed)
sub3.send("RESET")                      # +RESET
sub3.send("GET", "a")                   # $1 1
cases.append(sub3.close())
cases.append(pub.close())

# 4. RESP3 attributes: DEBUG PROTOCOL attrib sends an attribute map before its reply.
at = Conn("attributes")
at.send("HELLO", "3")
at.send("DEBUG", "PROTOCOL", "attrib")  # |1 ... then the reply
at.send("GET", "a")
cases.append(at.close())

# 5. HTTP sent to the Redis port: not RESP (Redis closes the connection on "Host:").
h = Conn("http")
h.send(raw=b"GET / HTTP/1.1\r\nHost: redis\r\nAccept: */*\r\n\r\n")
cases.append(h.close())

json.dump(cases, sys.stdout, indent=1)
print()
