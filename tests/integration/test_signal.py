#!/usr/bin/env python3
"""Integration test of p2ptun-signal (signaling/API.md) on loopback.

Usage: test_signal.py PATH-TO-p2ptun-signal

Starts the real server on 127.0.0.1 with port 0, reads the url/pin lines it
prints, makes client identities with the openssl CLI and talks HTTPS with
Python's ssl module (and curl for the public-key pin). Prints TAP; exits
non-zero on any failure. Every wait is bounded; servers are killed and
temporary files removed also on failure.
"""

import base64
import hashlib
import http.client
import json
import os
import selectors
import shutil
import signal
import ssl
import stat
import subprocess
import sys
import tempfile
import threading
import time
import traceback

STARTUP_TIMEOUT = 20.0
HTTP_TIMEOUT = 15.0


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def run(cmd, timeout=30, **kw):
    return subprocess.run(cmd, check=True, timeout=timeout, capture_output=True, **kw)


class Identity:
    """An agent identity: EC P-256 key and self-signed certificate."""

    def __init__(self, tmp, name):
        self.key = os.path.join(tmp, name + ".key")
        self.cert = os.path.join(tmp, name + ".crt")
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-nodes", "-keyout", self.key,
             "-out", self.cert, "-subj", "/CN=" + name, "-days", "1"])
        self.peer_id = peer_id_of_cert(self.cert)


def spki_der_of_cert(cert_path, inform="PEM"):
    pub = run(["openssl", "x509", "-inform", inform, "-in", cert_path,
               "-pubkey", "-noout"]).stdout
    return run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub).stdout


def peer_id_of_cert(cert_path):
    digest = hashlib.sha256(spki_der_of_cert(cert_path)).digest()
    return base64.b32encode(digest).decode().lower().rstrip("=")


def random_peer_id():
    return base64.b32encode(os.urandom(32)).decode().lower().rstrip("=")


def enroll(exe, state_dir, *peer_ids):
    """Enrolls peer_ids on the server of state_dir (running or not) with the
    operator's command, p2ptun-signal enroll --peer."""
    for first in range(0, len(peer_ids), 64):
        chunk = peer_ids[first:first + 64]
        argv = [exe, "enroll", "--state-dir", state_dir]
        for peer_id in chunk:
            argv += ["--peer", peer_id]
        p = subprocess.run(argv, capture_output=True, timeout=60, env=sanitizer_env())
        check(p.returncode == 0, "p2ptun-signal enroll --peer %s...: exit %d, %r"
              % (chunk[0], p.returncode, p.stderr.decode(errors="replace")))


def sanitizer_env():
    """The environment for the server. Under AddressSanitizer, clang 14's
    LeakSanitizer crashes ("Tracer caught signal 11") on the dynamic TLS of the
    GIO/GnuTLS worker threads with Debian 12's glibc; not tracking dynamic TLS
    avoids that and keeps leak checking on. No effect on other builds."""
    env = dict(os.environ)
    asan = env.get("ASAN_OPTIONS", "")
    if "intercept_tls_get_addr" not in asan:
        env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "intercept_tls_get_addr=0"
    return env


class Server:
    def __init__(self, exe, tmp, name, state_dir, *extra):
        self.stderr_path = os.path.join(tmp, name + ".stderr")
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [exe, "--listen", "127.0.0.1:0", "--state-dir", state_dir, *extra],
            stdout=subprocess.PIPE, stderr=self.stderr, env=sanitizer_env())
        self.url = self.pin = None
        lines = self._read_lines(3)
        check(len(lines) == 3 and lines[2] == "ready",
              "startup lines: %r (stderr: %s)" % (lines, self.read_stderr()))
        check(lines[0].startswith("url https://127.0.0.1:"), "url line: %r" % lines[0])
        check(lines[1].startswith("pin sha256//"), "pin line: %r" % lines[1])
        self.url = lines[0].split(" ", 1)[1]
        self.pin = lines[1].split(" ", 1)[1]
        self.port = int(self.url.rsplit(":", 1)[1])
        check(self.port > 0, "bound port")

    def _read_lines(self, count):
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        buf = b""
        try:
            while buf.count(b"\n") < count:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    break
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                buf += chunk
        finally:
            sel.close()
        return buf.decode(errors="replace").splitlines()

    def read_stderr(self):
        if not self.stderr.closed:
            self.stderr.flush()
        with open(self.stderr_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc.stdout.close()
        self.stderr.close()
        return self.proc.returncode


def request(server, ident, method, path, body=None, timeout=HTTP_TIMEOUT,
            chunked=False, source=None):
    """One request on a new connection (from the address @source, if given);
    returns (status, parsed JSON or None)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the pin is checked separately
    if ident is not None:
        ctx.load_cert_chain(ident.cert, ident.key)
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx,
                                       timeout=timeout,
                                       source_address=(source, 0) if source else None)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if chunked:
            conn.request(method, path, body=iter([body]), headers=headers,
                         encode_chunked=True)
        else:
            conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = None
        return resp.status, parsed
    finally:
        conn.close()


def messages_path(peer_id, wait=None):
    p = "/v1/peers/%s/messages" % peer_id
    return p if wait is None else "%s?wait=%s" % (p, wait)


def offer(session="0123456789abcdef0123456789abcdef"):
    return json.dumps({"v": 1, "type": "offer", "session": session,
                       "ufrag": "abcd", "pwd": "0123456789012345678901"}).encode()


def check_error(result, status, code):
    got_status, body = result
    check(got_status == status, "status %r, wanted %d (%r)" % (got_status, status, body))
    check(isinstance(body, dict) and body.get("error") == code
          and isinstance(body.get("message"), str) and body["message"],
          "error body %r, wanted code %s" % (body, code))


class Background:
    """Runs request() in a thread; the result is read with bounded waits."""

    def __init__(self, *args, **kw):
        self.result = None
        self.error = None
        self.done_at = None
        self.thread = threading.Thread(target=self._run, args=args, kwargs=kw,
                                       daemon=True)
        self.thread.start()

    def _run(self, *args, **kw):
        try:
            self.result = request(*args, **kw)
        except Exception as e:  # reported by join()
            self.error = e
        self.done_at = time.monotonic()

    def join(self, timeout):
        self.thread.join(timeout)
        check(not self.thread.is_alive(), "request still open after %.1f s" % timeout)
        if self.error is not None:
            raise self.error
        return self.result


def main():
    if len(sys.argv) != 2:
        print("usage: test_signal.py PATH-TO-p2ptun-signal", file=sys.stderr)
        return 2
    exe = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="p2ptun-signal-test-")
    servers = []
    results = []

    def case(name):
        def wrap(fn):
            try:
                fn()
                results.append((True, name, None))
            except Exception as e:
                detail = str(e) if isinstance(e, Failure) else traceback.format_exc()
                results.append((False, name, detail))
            return fn
        return wrap

    try:
        state = os.path.join(tmp, "state")
        srv = Server(exe, tmp, "main", state, "--stun", "stun.example.org:3478",
                     "--stun", "[2001:db8::1]:3478")
        servers.append(srv)
        a = Identity(tmp, "a")
        b = Identity(tmp, "b")
        c = Identity(tmp, "c")
        # The server is closed: the operator enrolls the clients (a stranger
        # is not enrolled).
        enroll(exe, state, a.peer_id, b.peer_id, c.peer_id)
        stranger = Identity(tmp, "stranger")

        @case("state dir 0700, key and certificate 0600")
        def _():
            check(stat.S_IMODE(os.stat(state).st_mode) == 0o700, "state dir mode")
            for f in ("key.pem", "cert.pem"):
                mode = stat.S_IMODE(os.stat(os.path.join(state, f)).st_mode)
                check(mode == 0o600, "%s mode %o" % (f, mode))

        @case("printed pin is the SHA-256 of the certificate's SPKI")
        def _():
            spki = spki_der_of_cert(os.path.join(state, "cert.pem"))
            want = "sha256//" + base64.b64encode(hashlib.sha256(spki).digest()).decode()
            check(srv.pin == want, "pin %s, wanted %s" % (srv.pin, want))

        @case("curl with the printed pin succeeds, with a wrong pin fails")
        def _():
            ok = subprocess.run(["curl", "-sS", "-k", "--max-time", "10",
                                 "--pinnedpubkey", srv.pin, srv.url + "/healthz"],
                                capture_output=True, timeout=20)
            check(ok.returncode == 0 and json.loads(ok.stdout) == {"status": "ok"},
                  "curl with pin: rc %d %r" % (ok.returncode, ok.stderr))
            wrong = "sha256//" + base64.b64encode(bytes(32)).decode()
            bad = subprocess.run(["curl", "-sS", "-k", "--max-time", "10",
                                  "--pinnedpubkey", wrong, srv.url + "/healthz"],
                                 capture_output=True, timeout=20)
            check(bad.returncode == 90, "curl with wrong pin: rc %d" % bad.returncode)

        @case("GET /healthz without a certificate")
        def _():
            check(request(srv, None, "GET", "/healthz") == (200, {"status": "ok"}),
                  "healthz")

        @case("no client certificate: 401 unauthenticated")
        def _():
            check_error(request(srv, None, "GET", "/v1/ice-servers"), 401,
                        "unauthenticated")
            check_error(request(srv, None, "POST", messages_path(b.peer_id), offer()),
                        401, "unauthenticated")
            check_error(request(srv, None, "GET", messages_path(b.peer_id, 0)), 401,
                        "unauthenticated")

        @case("GET /v1/ice-servers")
        def _():
            status, body = request(srv, a, "GET", "/v1/ice-servers")
            check(status == 200, "status %d" % status)
            check(body.get("stun") == ["stun.example.org:3478", "[2001:db8::1]:3478"],
                  "stun %r" % body)
            check(body.get("turn", []) == [], "turn %r" % body)

        @case("a stranger: 403 not-enrolled; a post to a peer-id not enrolled: 404")
        def _():
            check_error(request(srv, stranger, "GET", "/v1/ice-servers"), 403, "not-enrolled")
            check_error(request(srv, stranger, "GET", messages_path(stranger.peer_id, 0)), 403,
                        "not-enrolled")
            check_error(request(srv, stranger, "POST", messages_path(b.peer_id), offer()), 403,
                        "not-enrolled")
            check_error(request(srv, a, "POST", messages_path(stranger.peer_id), offer()), 404,
                        "unknown-peer")

        @case("A posts to B: 202, B offline")
        def _():
            check(request(srv, a, "POST", messages_path(b.peer_id), offer())
                  == (202, {"queued": True, "online": False}), "post")

        @case("B receives it, stamped from A")
        def _():
            status, body = request(srv, b, "GET", messages_path(b.peer_id, 0))
            check(status == 200, "status %d" % status)
            msgs = body["messages"]
            check(len(msgs) == 1, "messages %r" % msgs)
            check(msgs[0]["from"] == a.peer_id, "from %r" % msgs[0].get("from"))
            check(msgs[0]["type"] == "offer" and msgs[0]["ufrag"] == "abcd", "content")
            # Delivered messages are removed.
            check(request(srv, b, "GET", messages_path(b.peer_id, 0))
                  == (200, {"messages": []}), "queue emptied")

        @case("B is online for 30 s after a receive")
        def _():
            check(request(srv, a, "POST", messages_path(b.peer_id), offer())
                  == (202, {"queued": True, "online": True}), "post")
            request(srv, b, "GET", messages_path(b.peer_id, 0))

        @case("a sender may not set from: 400 bad-message")
        def _():
            m = json.loads(offer())
            m["from"] = c.peer_id
            check_error(request(srv, a, "POST", messages_path(b.peer_id),
                                json.dumps(m).encode()), 400, "bad-message")
            check(request(srv, b, "GET", messages_path(b.peer_id, 0))
                  == (200, {"messages": []}), "nothing queued")

        @case("reading another peer's messages: 403 forbidden")
        def _():
            check_error(request(srv, b, "GET", messages_path(a.peer_id, 0)), 403,
                        "forbidden")

        @case("bad peer-id: 400 bad-peer-id")
        def _():
            for bad in ("notapeer", a.peer_id.upper(), a.peer_id + "a", a.peer_id[:-1],
                        a.peer_id[:-1] + "b"):  # last char with nonzero pad bits
                check_error(request(srv, a, "POST", messages_path(bad), offer()), 400,
                            "bad-peer-id")
            check_error(request(srv, a, "GET", messages_path("x" * 300, 0)), 400,
                        "bad-peer-id")

        @case("garbage body: 400 bad-message")
        def _():
            for body in (b"", b"garbage", b"\xff\xfe\x00", b"[]", b'{"v":1}',
                         b'{"v":1,"type":"offer"}', offer()[:-1]):
                check_error(request(srv, a, "POST", messages_path(b.peer_id), body), 400,
                            "bad-message")

        @case("body over 16 KiB: 413 body-too-large")
        def _():
            big = b'{"v":1,"type":"offer","x":"' + b"a" * 17000 + b'"}'
            check_error(request(srv, a, "POST", messages_path(b.peer_id), big), 413,
                        "body-too-large")
            check_error(request(srv, a, "POST", messages_path(b.peer_id), big,
                                chunked=True), 413, "body-too-large")

        @case("a huge body is cut off; the server keeps serving")
        def _():
            huge = b"x" * (2 * 1024 * 1024)
            try:
                result = request(srv, a, "POST", messages_path(b.peer_id), huge,
                                 chunked=True)
                check_error(result, 413, "body-too-large")
            except (OSError, http.client.HTTPException):
                pass  # reset while sending: expected past 1 MiB
            check(request(srv, None, "GET", "/healthz")[0] == 200, "healthz after")

        @case("wrong method 405, unknown path 404")
        def _():
            check_error(request(srv, a, "PUT", messages_path(b.peer_id), b"{}"), 405,
                        "method-not-allowed")
            check_error(request(srv, a, "POST", "/v1/ice-servers", b"{}"), 405,
                        "method-not-allowed")
            check_error(request(srv, a, "DELETE", "/healthz"), 405, "method-not-allowed")
            check_error(request(srv, a, "GET", "/v1/nothing"), 404, "not-found")
            check_error(request(srv, None, "GET", "/nothing"), 404, "not-found")

        @case("bad wait: 400 bad-request")
        def _():
            for w in ("31", "-1", "abc", "1.5", "+3", ""):
                check_error(request(srv, b, "GET", messages_path(b.peer_id, w)), 400,
                            "bad-request")

        @case("long-poll answers an empty list when the wait is over")
        def _():
            t0 = time.monotonic()
            result = request(srv, b, "GET", messages_path(b.peer_id, 1))
            elapsed = time.monotonic() - t0
            check(result == (200, {"messages": []}), "result %r" % (result,))
            check(0.8 <= elapsed <= 4.0, "waited %.2f s for wait=1" % elapsed)

        @case("a post wakes a pending long-poll at once")
        def _():
            poll = Background(srv, b, "GET", messages_path(b.peer_id, 20))
            time.sleep(0.5)
            check(poll.done_at is None, "long-poll answered early: %r" % (poll.result,))
            posted_at = time.monotonic()
            check(request(srv, a, "POST", messages_path(b.peer_id), offer())
                  == (202, {"queued": True, "online": True}), "post while waiting")
            status, body = poll.join(5)
            check(status == 200 and len(body["messages"]) == 1
                  and body["messages"][0]["from"] == a.peer_id, "woken with %r" % body)
            check(poll.done_at - posted_at < 2.0,
                  "woke %.2f s after the post" % (poll.done_at - posted_at))

        @case("a second receive ends the first with an empty list")
        def _():
            first = Background(srv, b, "GET", messages_path(b.peer_id, 20))
            time.sleep(0.5)
            t0 = time.monotonic()
            second = Background(srv, b, "GET", messages_path(b.peer_id, 20))
            check(first.join(5) == (200, {"messages": []}), "first answered empty")
            check(first.done_at - t0 < 3.0, "first ended %.2f s later" % (first.done_at - t0))
            # The second one is still waiting; a post ends it with the message.
            check(request(srv, a, "POST", messages_path(b.peer_id), offer())[0] == 202,
                  "post")
            status, body = second.join(5)
            check(status == 200 and len(body["messages"]) == 1, "second got %r" % body)

        @case("a long-poll whose client went away keeps the messages queued")
        def _():
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.load_cert_chain(b.cert, b.key)
            conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=ctx,
                                               timeout=HTTP_TIMEOUT)
            conn.request("GET", messages_path(b.peer_id, 20))
            time.sleep(0.5)
            conn.close()
            time.sleep(0.5)
            check(request(srv, a, "POST", messages_path(b.peer_id), offer())[0] == 202,
                  "post")
            status, body = request(srv, b, "GET", messages_path(b.peer_id, 0))
            check(status == 200 and len(body["messages"]) == 1, "kept: %r" % body)

        @case("65th queued message: 429 mailbox-full")
        def _():
            d = random_peer_id()  # enrolled, never connected
            enroll(exe, state, d)
            for i in range(64):
                status, body = request(srv, c, "POST", messages_path(d), offer())
                check(status == 202, "post %d: %d %r" % (i, status, body))
            check_error(request(srv, c, "POST", messages_path(d), offer()), 429,
                        "mailbox-full")

        @case("server still healthy; no message bodies in its log")
        def _():
            check(request(srv, None, "GET", "/healthz")[0] == 200, "healthz")
            check("abcd" not in srv.read_stderr() and "0123456789012345678901"
                  not in srv.read_stderr(), "log shows message content")

        @case("a second server on a running server's state dir: one-line error, exit 1")
        def _():
            p = subprocess.run([exe, "--listen", "127.0.0.1:0", "--state-dir", state],
                               capture_output=True, timeout=20, env=sanitizer_env())
            err = p.stderr.decode(errors="replace")
            check(p.returncode == 1 and p.stdout == b"", "exit code %d, stdout %r"
                  % (p.returncode, p.stdout))
            check(err.count("\n") == 1 and err.startswith("p2ptun-signal: "), "stderr %r" % err)

        @case("SIGINT stops the server cleanly")
        def _():
            rc = srv.stop(signal.SIGINT)
            check(rc == 0, "exit code %r; stderr: %s" % (rc, srv.read_stderr()))

        # A second server on the same state dir (the first one stopped: it
        # held the state dir): reuses the key and the enrollments, and has
        # small limits for the rate and peer tests.
        small = Server(exe, tmp, "small", state, "--rate", "1", "--burst", "5",
                       "--max-peers", "1")
        servers.append(small)

        @case("second run reuses the key: same pin")
        def _():
            check(small.pin == srv.pin, "pin changed: %s vs %s" % (small.pin, srv.pin))

        @case("max peers: 503 too-many-peers")
        def _():
            check(request(small, a, "GET", messages_path(a.peer_id, 0))
                  == (200, {"messages": []}), "A's own mailbox")
            check_error(request(small, a, "POST", messages_path(b.peer_id), offer()), 503,
                        "too-many-peers")

        @case("rate limit per peer-id: 429 rate-limited")
        def _():
            seen = []
            for _ in range(10):
                seen.append(request(small, b, "GET", "/v1/ice-servers"))
                if seen[-1][0] == 429:
                    break
            check(seen[0][0] == 200, "first request %r" % (seen[0],))
            check_error(seen[-1], 429, "rate-limited")
            check(len(seen) <= 7, "limited only after %d requests" % len(seen))

        @case("rate limit per address without a certificate: 429 rate-limited")
        def _():
            seen = []
            for _ in range(10):
                seen.append(request(small, None, "GET", "/healthz"))
                if seen[-1][0] == 429:
                    break
            check(seen[0][0] == 200, "first request %r" % (seen[0],))
            check_error(seen[-1], 429, "rate-limited")
            # A client with a certificate has a bucket of its own.
            check(request(small, c, "GET", "/v1/ice-servers")[0] == 200,
                  "authenticated client limited by the address bucket")

        @case("SIGTERM stops the server cleanly, also with a long-poll open")
        def _():
            pending = Background(small, a, "GET", messages_path(a.peer_id, 20))
            time.sleep(0.5)
            check(pending.done_at is None, "long-poll answered early")
            rc = small.stop(signal.SIGTERM)
            try:
                pending.join(5)
            except (OSError, http.client.HTTPException):
                pass  # the connection closed without an answer
            check(rc == 0, "exit code %r; stderr: %s" % (rc, small.read_stderr()))

        # The one server of this file that admits strangers: the test of
        # --open itself.
        open_state = os.path.join(tmp, "open-state")
        open_srv = Server(exe, tmp, "open", open_state, "--open")
        servers.append(open_srv)

        @case("--open: a warning at start; strangers are served, revoked ones are not")
        def _():
            err = open_srv.read_stderr()
            check("WARNING: --open" in err, "no warning: %r" % err)
            check(request(open_srv, stranger, "GET", "/v1/ice-servers")[0] == 200, "ice-servers")
            nobody = random_peer_id()
            check(request(open_srv, stranger, "POST", messages_path(nobody), offer())
                  == (202, {"queued": True, "online": False}), "post to a peer-id never seen")
            p = subprocess.run([exe, "revoke", "--state-dir", open_state, stranger.peer_id],
                               capture_output=True, timeout=30, env=sanitizer_env())
            check(p.returncode == 0, "revoke: exit %d, %r" % (p.returncode, p.stderr))
            check_error(request(open_srv, stranger, "GET", "/v1/ice-servers"), 403, "revoked")
            rc = open_srv.stop(signal.SIGTERM)
            check(rc == 0, "exit code %r; stderr: %s" % (rc, open_srv.read_stderr()))

        @case("bad options: one-line error, exit code 2")
        def _():
            for args in (["--listen", "127.0.0.1:0", "--state-dir", state, "--rate", "x"],
                         ["--listen", "127.0.0.1:99999", "--state-dir", state],
                         ["--listen", "localhost:0", "--state-dir", state],
                         ["--state-dir", state],
                         ["--listen", "127.0.0.1:0", "--state-dir", state, "--stun", "x"],
                         ["--listen", "127.0.0.1:0", "--state-dir", state,
                          "--max-peers", "10junk"],
                         # closed by default: the enrollments need a state dir
                         ["--listen", "127.0.0.1:0", "--cert", os.path.join(state, "cert.pem"),
                          "--key", os.path.join(state, "key.pem")]):
                p = subprocess.run([exe, *args], capture_output=True, timeout=20,
                                   env=sanitizer_env())
                err = p.stderr.decode(errors="replace")
                check(p.returncode == 2, "%r: exit code %d" % (args, p.returncode))
                check(err.count("\n") == 1 and err.startswith("p2ptun-signal: "),
                      "%r: stderr %r" % (args, err))
                check(p.stdout == b"", "%r: stdout %r" % (args, p.stdout))
    except Exception:
        results.append((False, "setup", traceback.format_exc()))
    finally:
        for s in servers:
            try:
                if s.proc.poll() is None:
                    s.proc.kill()
                    s.proc.wait(5)
                s.stop()
            except Exception:
                pass
        shutil.rmtree(tmp, ignore_errors=True)

    failed = 0
    for i, (ok, name, detail) in enumerate(results, 1):
        print("%s %d - %s" % ("ok" if ok else "not ok", i, name))
        if not ok:
            failed += 1
            for line in (detail or "").rstrip().splitlines():
                print("# " + line)
    print("1..%d" % len(results))
    return 1 if failed else 0


if __name__ == "__main__":
    # meson stops an overlong test with SIGTERM: raise, so that the finally
    # blocks stop the processes and remove the files this test made.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    sys.exit(main())
