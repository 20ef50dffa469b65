#!/usr/bin/env python3
"""Sends traffic of two protocols that are not Redis over loopback, for the port detection of
`netprobe report` to ignore: HTTP (a request line, headers, a response that begins "HTTP/1.0")
and a server that greets first with "+OK" as POP3 does (its greeting is a valid RESP simple
string: what tells it from Redis is that the server speaks first). Both servers run in this
process on 127.0.0.1 (ports 8080 and 1100). Prints what each client saw, as JSON.
"""
import http.server
import json
import socket
import threading
import urllib.request


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def greeter(listener):
    conn, _ = listener.accept()
    conn.sendall(b"+OK greeter ready\r\n")
    conn.recv(1024)
    conn.sendall(b"+OK\r\n")
    conn.recv(1024)
    conn.close()


http_server = http.server.ThreadingHTTPServer(("127.0.0.1", 8080), Quiet)
threading.Thread(target=http_server.serve_forever, daemon=True).start()
listener = socket.create_server(("127.0.0.1", 1100))
threading.Thread(target=greeter, args=(listener,), daemon=True).start()

seen = []
with urllib.request.urlopen("http://127.0.0.1:8080/") as r:
    seen.append({"connection": "http", "status": r.status, "bytes": len(r.read())})
s = socket.create_connection(("127.0.0.1", 1100))
greeting = s.recv(1024)
s.sendall(b"USER netprobe\r\n")
answer = s.recv(1024)
s.sendall(b"QUIT\r\n")
s.close()
seen.append({"connection": "greeter", "greeting": greeting.decode(), "answer": answer.decode()})
http_server.shutdown()
json.dump(seen, __import__("sys").stdout, indent=1)
print()
