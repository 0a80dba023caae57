#!/usr/bin/python3
# https-echo.py: an HTTPS server on 127.0.0.1 that wants a client
# certificate from the test CA (CERT_REQUIRED) and answers every request
# with a page naming the client certificate's subject. It binds a free port
# itself and writes it to PORTFILE; each handshake's outcome goes to stdout
# ("client: CN=..." or "handshake failed: ...").
#
# usage: https-echo.py CERT KEY CA PORTFILE
import http.server
import os
import ssl
import sys


def subject_of(cert):
    parts = []
    for rdn in cert.get("subject", ()):
        for k, v in rdn:
            parts.append("%s=%s" % ({"commonName": "CN"}.get(k, k), v))
    return ",".join(parts)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        subject = subject_of(self.connection.getpeercert() or {})
        print("client: %s" % subject, flush=True)
        body = (
            "<!DOCTYPE html><html><head><title>kyso-echo</title></head>"
            '<body><p id="subject">%s</p></body></html>' % subject
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        print("request: " + fmt % args, flush=True)


class Server(http.server.HTTPServer):
    def __init__(self, addr, handler, ctx):
        self.ctx = ctx
        super().__init__(addr, handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        sock.settimeout(30)
        try:
            tls = self.ctx.wrap_socket(sock, server_side=True)
        except (ssl.SSLError, OSError) as e:
            print("handshake failed: %s" % e, flush=True)
            sock.close()
            raise
        return tls, addr

    def handle_error(self, request, client_address):
        print("error: %s" % (sys.exc_info()[1],), flush=True)


def main():
    cert, key, ca, portfile = sys.argv[1:5]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    srv = Server(("127.0.0.1", 0), Handler, ctx)
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, portfile)
    print("listening on 127.0.0.1:%d" % srv.server_address[1], flush=True)
    while True:
        try:
            srv.handle_request()
        except (ssl.SSLError, OSError):
            pass


if __name__ == "__main__":
    main()
