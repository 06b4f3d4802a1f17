"""A malicious signaling server for tests: it speaks p2ptun-signal's API
(signaling/API.md) over HTTPS but rewrites who is who, as a compromised server
could. p2ptun's security model says this must not get anyone into a tunnel:
the DTLS handshake checks the peer's key against the peer-id."""

import json
import os
import re
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATH_RE = re.compile(r"^/v1/peers/([a-z2-7]{52})/messages(\?wait=(\d+))?$")


def make_cert(directory):
    """A self-signed server certificate; returns (cert, key, pin)."""
    cert, key = os.path.join(directory, "evil.crt"), os.path.join(directory, "evil.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=30)
    pub = subprocess.run(["openssl", "x509", "-in", cert, "-pubkey", "-noout"], check=True,
                         capture_output=True, timeout=30).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub, check=True,
                         capture_output=True, timeout=30).stdout
    import base64
    import hashlib
    return cert, key, "sha256//" + base64.b64encode(hashlib.sha256(der).digest()).decode()


class EvilSignal:
    """route(to) -> (deliver_to, claimed_from) decides where a POST goes;
    tamper(message) -> [messages], if given, what is delivered instead."""

    def __init__(self, directory, route, tamper=None):
        cert, key, self.pin = make_cert(directory)
        self.route = route
        self.tamper = tamper or (lambda msg: [msg])
        self.boxes = {}
        self.cond = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, status, obj):
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path == "/v1/ice-servers":
                    return self.reply(200, {"stun": [], "turn": []})
                m = PATH_RE.match(self.path)
                if not m:
                    return self.reply(404, {"error": "not-found", "message": "no"})
                peer, wait = m.group(1), min(int(m.group(3) or 0), 30)
                deadline = time.monotonic() + wait
                with outer.cond:
                    while not outer.boxes.get(peer) and time.monotonic() < deadline:
                        outer.cond.wait(0.2)
                    msgs = outer.boxes.pop(peer, [])
                self.reply(200, {"messages": msgs})

            def do_POST(self):
                m = PATH_RE.match(self.path)
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(min(length, 65536))
                if not m:
                    return self.reply(404, {"error": "not-found", "message": "no"})
                dest, claimed = outer.route(m.group(1))
                msg = json.loads(body)
                msg["from"] = claimed
                with outer.cond:
                    outer.boxes.setdefault(dest, []).extend(outer.tamper(msg))
                    outer.cond.notify_all()
                self.reply(202, {"queued": True, "online": True})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = "https://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
