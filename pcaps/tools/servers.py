#!/usr/bin/env python3
"""Servers for pcaps/record.sh: DNS (UDP), HTTP, HTTPS and a raw TCP sink.

Every TCP server logs, per connection, the kernel's own payload byte counts
(TCP_INFO tcpi_bytes_received and tcpi_bytes_acked) once the client has
closed, so the recorded flows can be checked against an independent count
that covers TLS records too. Standard library only.
"""
import json, os, socket, ssl, struct, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import ThreadingTCPServer, StreamRequestHandler

LOG_LOCK = threading.Lock()
LOG = None


def log(entry):
    with LOG_LOCK:
        LOG.write(json.dumps(entry, sort_keys=True) + "\n")
        LOG.flush()


def tcp_bytes(sock):
    """(bytes received, bytes sent and acked) from struct tcp_info."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    acked, received = struct.unpack_from("QQ", info, 120)
    return received, acked


def drain_and_count(sock, raw):
    """Wait for the client's FIN, so everything sent is acked, then count."""
    raw.settimeout(10)
    try:
        while raw.recv(65536):
            pass
    except OSError:
        pass
    return tcp_bytes(raw)


class Web(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "outflow-recorder"

    def log_message(self, *a):
        pass

    def reply(self, body, ctype="application/octet-stream"):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def do_GET(self):
        path = os.path.join(self.server.docroot, os.path.basename(self.path))
        try:
            body = open(path, "rb").read()
        except OSError:
            self.send_error(404)
            return
        self.last = {"method": "GET", "path": self.path, "response_body": len(body)}
        self.reply(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        if self.path.startswith("/dns-query"):
            # DNS over HTTPS (RFC 8484): the message in, the answer out.
            q = self.rfile.read(n)
            resp = dns_answer(q, self.server.addr)
            self.last = {"method": "POST", "path": self.path, "request_body": n, "response_body": len(resp),
                         "doh_query": dns_name(q)}
            self.reply(resp, "application/dns-message")
            return
        left, got = n, 0
        while left:
            chunk = self.rfile.read(min(left, 65536))
            if not chunk:
                break
            got += len(chunk)
            left -= len(chunk)
        body = json.dumps({"received": got}).encode() + b"\n"
        self.last = {"method": self.command, "path": self.path, "request_body": got, "response_body": len(body)}
        self.reply(body, "application/json")

    do_PUT = do_POST

    def finish(self):
        super().finish()
        sock = self.request
        raw = sock
        if isinstance(sock, ssl.SSLSocket):
            try:
                raw = sock.unwrap()  # close_notify both ways, then plain TCP
            except (ssl.SSLError, OSError):
                raw = socket.socket(fileno=os.dup(sock.fileno()))
        try:
            raw.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        received, acked = drain_and_count(sock, raw)
        entry = dict(getattr(self, "last", {}))
        entry.update({"server": self.server.name, "client": "%s:%d" % self.client_address,
                      "tcp_bytes_received": received, "tcp_bytes_acked": acked})
        log(entry)


class Sink(StreamRequestHandler):
    """Counts what a raw TCP client sends (the openssl enc stream)."""

    def handle(self):
        got = 0
        while True:
            chunk = self.connection.recv(65536)
            if not chunk:
                break
            got += len(chunk)
        self.connection.shutdown(socket.SHUT_WR)
        received, acked = tcp_bytes(self.connection)
        log({"server": "sink", "client": "%s:%d" % self.client_address, "app_bytes_received": got,
             "tcp_bytes_received": received, "tcp_bytes_acked": acked})


def parse_query(q):
    qid, flags, qd = struct.unpack("!HHH", q[:6])
    i, labels = 12, []
    while q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode())
        i += q[i] + 1
    qtype, = struct.unpack("!H", q[i + 1:i + 3])
    return qid, ".".join(labels), qtype, q[12:i + 5]


def dns_name(q):
    try:
        return parse_query(q)[1]
    except Exception:
        return None


def dns_answer(q, answer_ip):
    """Every A query for a .test name is answered with answer_ip."""
    qid, name, qtype, question = parse_query(q)
    answers = b""
    if qtype == 1 and name.endswith(".test"):
        answers = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + socket.inet_aton(answer_ip)
    return struct.pack("!HHHHHH", qid, 0x8180, 1, 1 if answers else 0, 0, 0) + question + answers


def dns(addr, answer_ip):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 53))
    while True:
        q, peer = s.recvfrom(4096)
        if len(q) < 12:
            continue
        _, name, qtype, _ = parse_query(q)
        resp = dns_answer(q, answer_ip)
        answers = resp[6:8] != b"\x00\x00"
        s.sendto(resp, peer)
        log({"server": "dns", "client": "%s:%d" % peer, "query": name, "qtype": qtype,
             "request_bytes": len(q), "response_bytes": len(resp), "answers": 1 if answers else 0})


def main():
    global LOG
    addr, docroot, certdir, logpath = sys.argv[1:5]
    LOG = open(logpath, "a")
    threading.Thread(target=dns, args=(addr, addr), daemon=True).start()
    for port, name, tls in ((80, "http", False), (443, "https", True)):
        srv = ThreadingHTTPServer((addr, port), Web)
        srv.name, srv.docroot, srv.addr = name, docroot, addr
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(os.path.join(certdir, "server.crt"), os.path.join(certdir, "server.key"))
            srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    sink = ThreadingTCPServer((addr, 9443), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    print("ready", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
