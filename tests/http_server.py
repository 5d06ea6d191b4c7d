#!/usr/bin/env python3
# http_server.py - the HTTP(S) server of the weft.http tests and the crawler
# example: python3's standard library only, on 127.0.0.1, ephemeral ports.
# SPDX-License-Identifier: MIT
"""Usage:
  http_server.py [--tls]
      Serves until killed (or until its parent process goes away) and
      prints one line: HTTP_URL HTTPS_URL CA_FILE CLOSED_PORT PID
      (HTTPS_URL and CA_FILE are "-" without --tls). With --tls a test CA
      and a certificate for 127.0.0.1 are made with the openssl CLI in a
      temporary directory, removed on exit.
  http_server.py --exec CMD [ARGS...]
      Serves while CMD runs, with every "{url}" in its arguments replaced by
      the HTTP URL; exits with CMD's status.

Routes (GET unless noted):
  /hello                 "hello"
  /echo (any method)     the request body; X-Method: the method;
                         X-Echo-<name>: each request header
  /status/N              status N, body "status N"
  /redirect/N            302 to /redirect/N-1, /redirect/0 is /hello
  /chunked               "alpha", "beta", "gamma" as three chunks
  /multi                 repeated headers (X-Multi, Set-Cookie)
  /bytes/N               N bytes: "0123456789" repeated
  /page/I                "page I\\n", then links to /page/4I-2 .. /page/4I+1,
                         one a line (from /page/1, a tree of every page)
  /hang                  never answers (until the client goes away)
  /hangs                 the number of /hang requests received so far
  /close-mid             announces 1000 bytes, sends 10, closes
  /gate                  sends "first" as a chunk, then waits for /release
                         and sends "second"
  /release               releases the waiting /gate responses
  /connections           the number of connections accepted so far
  /close                 "closed", with Connection: close
  /drop                  "dropped", as if the connection stayed open (no
                         Connection: close), then the server closes it
  /reset-next            "reset-next"; the next request on the connection
                         gets a reset (RST) instead of an answer, as from
                         a server that closed the kept-alive connection
  /loop/K                302 to /loop/K+1 (a redirect loop); for K < 3
                         the next request on the connection gets a reset
  /folded                "folded", with header lines folded (obsolete line
                         folding): continuations with spaces and tabs,
                         blank ones
  /folded-first          "folded-first", its first header line folded
  /forever[/N]           a chunked body of N bytes ("x"), or one that never
                         ends, sent as fast as the client takes it
  /streamed              the number of body bytes /forever sent so far
  /stuck                 the port of a listener on 127.0.0.1 whose accept
                         queue is full: a connection to it never completes
  /interim               "interim" after a 100 and a 103 response
  /split[/NAME]          /NAME (/interim) sent a byte at a time
  /close-delimited       "until the end", delimited by the connection's end
  /http10                "old server", from an HTTP/1.0 server (the same)
  /malformed             a reply that is not HTTP
  /bad-status            a status line without a status number
  /empty                 the connection closes unanswered
  /cut-headers           the connection closes inside the headers
  /bad-chunk             a chunked body with a bad chunk size
  /trailers              "hello" chunked, with a trailer field X-Trailer
  /slow[/N]              N chunks (5) "slow i;", 10 ms apart
  /to-https              302 to /hello on the HTTPS server (--tls)
  /no-content            204, X-Kind: none
  /not-modified          304 with a Content-Length of 5 and no body
"""
import os
import select
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LIFETIME = 900  # seconds: a server nobody stops still ends
PARENT = os.getppid()

stop = threading.Event()
gate = threading.Condition()
gate_open = [0]  # generation counter of /release


class Server(ThreadingHTTPServer):
    daemon_threads = True
    https_url = "-"
    request_queue_size = 128
    connections = 0
    hangs = 0
    streamed = 0
    lock = threading.Lock()

    def process_request(self, request, client_address):
        with Server.lock:
            Server.connections += 1
        super().process_request(request, client_address)

    def handle_error(self, request, client_address):
        pass  # clients that go away mid-response are part of the tests


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True  # headers and body go as two writes
    reset_next = False  # see /reset-next

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=()):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def raw(self, response):
        """Sends response (bytes) as it is: status line and headers too."""
        self.wfile.write(response)
        self.wfile.flush()

    def chunk(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def start_chunked(self, headers=()):
        self.send_response(200)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def wait_for_close(self):
        """Returns when the client has closed the connection (or in 60 s)."""
        end = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < end:
            ready, _, _ = select.select([self.connection], [], [], 0.1)
            if not ready:
                continue
            try:
                if not self.connection.recv(1, socket.MSG_PEEK):
                    return
            except (OSError, ValueError):
                return
            stop.wait(0.1)  # more bytes: not ours to read

    def reset(self):
        """Closes the connection with a reset (RST), unanswered. The
        descriptor closes when rfile does, after this request."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def route(self):
        if self.reset_next:
            return self.reset()
        path = self.path.split("?")[0]
        parts = path.strip("/").split("/")
        name, arg = parts[0], (parts[1] if len(parts) > 1 else "")
        if name == "hello":
            return self.reply(200, "hello", [("Content-Type", "text/plain")])
        if name == "echo":
            data = self.body()
            hdrs = [("X-Method", self.command)]
            hdrs += [("X-Echo-" + k, v) for k, v in self.headers.items()]
            return self.reply(200, data, hdrs)
        if name == "status":
            return self.reply(int(arg), "status " + arg)
        if name == "redirect":
            n = int(arg)
            to = "/hello" if n <= 0 else "/redirect/%d" % (n - 1)
            return self.reply(302, "moved", [("Location", to)])
        if name == "chunked":
            self.start_chunked()
            for part in ("alpha", "beta", "gamma"):
                self.chunk(part)
            return self.chunk(b"")
        if name == "multi":
            return self.reply(200, "multi", [
                ("X-Multi", "one"), ("X-Multi", "two"),
                ("Set-Cookie", "a=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT"),
                ("Set-Cookie", "b=2")])
        if name == "bytes":
            n = int(arg)
            unit = b"0123456789" * 6554  # 65540 bytes
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            sent = 0
            while sent < n:
                piece = unit[:min(len(unit), n - sent)]
                self.wfile.write(piece)
                sent += len(piece)
            return
        if name == "page":
            i = int(arg)
            links = "".join("/page/%d\n" % j for j in range(4 * i - 2,
                                                                4 * i + 2))
            return self.reply(200, "page %d\n%s" % (i, links))
        if name == "hang":
            with Server.lock:
                Server.hangs += 1
            self.wait_for_close()
            self.close_connection = True
            return
        if name == "hangs":
            with Server.lock:
                n = Server.hangs
            return self.reply(200, str(n))
        if name == "close-mid":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if name == "gate":
            with gate:
                seen = gate_open[0]
            self.start_chunked()
            self.chunk("first")
            with gate:
                gate.wait_for(lambda: gate_open[0] != seen or stop.is_set(),
                              60)
            self.chunk("second")
            return self.chunk(b"")
        if name == "release":
            with gate:
                gate_open[0] += 1
                gate.notify_all()
            return self.reply(200, "released")
        if name == "close":
            self.close_connection = True
            return self.reply(200, "closed", [("Connection", "close")])
        if name == "drop":
            self.close_connection = True
            return self.reply(200, "dropped")
        if name == "reset-next":
            self.reset_next = True
            return self.reply(200, "reset-next")
        if name == "loop":
            k = int(arg)
            self.reset_next = k < 3
            return self.reply(302, "moved",
                              [("Location", "/loop/%d" % (k + 1))])
        if name in ("folded", "folded-first"):
            return self.raw(FOLDED[name])
        if name in RAW:
            self.close_connection = name != "interim"
            return self.raw(RAW[name])
        if name == "split":
            # A response a byte at a time: every piece of the parse
            # (status line, names, values, folds, chunk sizes) crosses
            # reads.
            raw = dict(RAW, **FOLDED)[arg or "interim"]
            for i in range(len(raw)):
                self.wfile.write(raw[i:i + 1])
                self.wfile.flush()
            self.close_connection = arg not in ("", "interim", "folded")
            return
        if name == "slow":
            # N chunks of "slow i;" with 10 ms between them.
            self.start_chunked()
            for i in range(int(arg or 5)):
                time.sleep(0.01)
                self.chunk("slow %d;" % i)
            return self.chunk(b"")
        if name == "to-https":
            return self.reply(302, "moved",
                              [("Location", Server.https_url + "/hello")])
        if name == "no-content":
            self.send_response(204)
            self.send_header("X-Kind", "none")
            self.end_headers()
            return
        if name == "not-modified":
            # A 304 may state the length of what did not change: no body
            # follows all the same.
            self.send_response(304)
            self.send_header("Content-Length", "5")
            self.end_headers()
            return
        if name == "forever":
            total = int(arg) if arg else None
            unit = 1 << 20  # large writes: faster than the client reads
            piece = b"%x\r\n%s\r\n" % (unit, b"x" * unit)
            self.start_chunked()
            sent = 0
            while (total is None or sent < total) and not stop.is_set():
                n = unit if total is None else min(unit, total - sent)
                self.wfile.write(piece if n == unit else
                                 b"%x\r\n%s\r\n" % (n, b"x" * n))
                sent += n
                with Server.lock:
                    Server.streamed += n
            return self.chunk(b"")
        if name == "streamed":
            with Server.lock:
                n = Server.streamed
            return self.reply(200, str(n))
        if name == "stuck":
            return self.reply(200, str(stuck_port()))
        if name == "connections":
            with Server.lock:
                n = Server.connections
            return self.reply(200, str(n))
        return self.reply(404, "not found: " + path)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = route


FOLDED = {
    "folded": b"HTTP/1.1 200 OK\r\n"
              b"X-Folded: one\r\n two\r\n\t three \r\n"
              b"X-Empty-Folds: a\r\n \r\n\t\r\n b\r\n"
              b"X-After: after\r\n"
              b"Content-Length: 6\r\n\r\nfolded",
    "folded-first": b"HTTP/1.1 200 OK\r\n"
                    b"\tX-Lead: lead\r\n"
                    b"X-After: after\r\n"
                    b"Content-Length: 12\r\n\r\nfolded-first",
}

# Responses sent as they are. interim: two 1xx responses before the final
# one; close-delimited: a body that ends when the connection does (no
# Content-Length, not chunked); http10: the same from an HTTP/1.0 server;
# trailers: a chunked body with a trailer field; malformed: not HTTP;
# bad-status: a status line without a number; empty:
# the connection closes unanswered; cut-headers: it closes within the
# headers; bad-chunk: a chunk size that is not hexadecimal.
RAW = {
    "interim": b"HTTP/1.1 100 Continue\r\n\r\n"
               b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n"
               b"HTTP/1.1 200 OK\r\nX-Final: yes\r\n"
               b"Content-Length: 7\r\n\r\ninterim",
    "close-delimited": b"HTTP/1.1 200 OK\r\nX-Kind: close\r\n"
                       b"Connection: close\r\n\r\nuntil the end",
    "http10": b"HTTP/1.0 200 OK\r\nX-Kind: old\r\n\r\nold server",
    "malformed": b"this is not HTTP at all\r\n\r\n",
    "bad-status": b"HTTP/1.1 abc OK\r\nContent-Length: 2\r\n\r\nno",
    "trailers": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                b"X-Head: h\r\n\r\n5\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n",
    "empty": b"",
    "cut-headers": b"HTTP/1.1 200 OK\r\nContent-Le",
    "bad-chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"zz\r\nabc\r\n0\r\n\r\n",
}

stuck = []  # the listener of /stuck and the connections that fill it


def stuck_port():
    """A listener that never accepts, its queue filled: on Linux further
    connection attempts get no answer until they time out."""
    with Server.lock:
        if not stuck:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            s.listen(0)
            stuck.append(s)
            for _ in range(8):
                c = socket.socket()
                c.setblocking(False)
                try:
                    c.connect(s.getsockname())
                except BlockingIOError:
                    pass
                stuck.append(c)
        return stuck[0].getsockname()[1]


def make_certs(d):
    """A test CA and a certificate for 127.0.0.1 it signed; the CA file."""
    def run(*args):
        subprocess.run(["openssl"] + list(args), cwd=d, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(os.path.join(d, "ca.cnf"), "w") as f:
        f.write("[req]\ndistinguished_name=dn\n[dn]\n[ext]\n"
                "basicConstraints=critical,CA:TRUE\n"
                "keyUsage=critical,keyCertSign,cRLSign\n"
                "subjectKeyIdentifier=hash\n")
    with open(os.path.join(d, "srv.ext"), "w") as f:
        f.write("basicConstraints=CA:FALSE\n"
                "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "extendedKeyUsage=serverAuth\n"
                "authorityKeyIdentifier=keyid\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
          "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=weft test CA", "-config", "ca.cnf",
        "-extensions", "ext")
    run("req", "-new", *ec, "-keyout", "srv.key", "-out", "srv.csr",
        "-subj", "/CN=127.0.0.1", "-config", "ca.cnf")
    run("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey",
        "ca.key", "-CAcreateserial", "-out", "srv.pem", "-days", "2",
        "-extfile", "srv.ext")
    return os.path.join(d, "ca.pem")


def serve(httpd):
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    return t


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def watch_parent():
    """Ends the server when the process that started it is gone."""
    start = time.monotonic()
    while os.getppid() == PARENT and time.monotonic() - start < LIFETIME:
        time.sleep(0.5)
    os._exit(0)


def main(argv):
    plain = Server(("127.0.0.1", 0), Handler)
    http_url = "http://127.0.0.1:%d" % plain.server_address[1]
    tmp = None
    https_url = ca = "-"
    if "--tls" in argv and "--exec" not in argv:
        tmp = tempfile.mkdtemp(prefix="weft-http-")
        ca = make_certs(tmp)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(os.path.join(tmp, "srv.pem"),
                            os.path.join(tmp, "srv.key"))
        secure = Server(("127.0.0.1", 0), Handler)
        secure.socket = ctx.wrap_socket(secure.socket, server_side=True,
                                        do_handshake_on_connect=False)
        https_url = "https://127.0.0.1:%d" % secure.server_address[1]
        serve(secure)
    Server.https_url = https_url
    serve(plain)
    try:
        if "--exec" in argv:
            cmd = argv[argv.index("--exec") + 1:]
            cmd = [a.replace("{url}", http_url) for a in cmd]
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
            return subprocess.call(cmd)
        threading.Thread(target=watch_parent, daemon=True).start()
        # SIGTERM was blocked before any thread started, so that every
        # thread inherits the block: only this one takes it. A handler
        # thread taking it would leave this one asleep for an hour.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        print(http_url, https_url, ca, closed_port(), os.getpid(), flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0
    finally:
        stop.set()
        with gate:
            gate.notify_all()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    sys.exit(main(sys.argv[1:]))
