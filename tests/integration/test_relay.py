#!/usr/bin/env python3
"""Interop test of p2ptun-relay with coturn's own clients on loopback.

Usage: test_relay.py PATH-TO-p2ptun-relay

Starts p2ptun-relay on 127.0.0.1 (port 0, reads its `listen` and
`tls-listen` lines) with a shared-secret file, `--allow-peer 127.0.0.1/32`
and a TLS certificate made here with the openssl CLI, starts coturn's
`turnutils_peer` as the UDP echo peer, and runs `turnutils_uclient` with TURN
REST credentials from the same secret, over UDP, TCP (-t) and TLS (-t -S):
with channels (and RTCP allocations, which use EVEN-PORT and
RESERVATION-TOKEN), and with Send/Data indications only. Every message must
come back. Also: Binding is answered for anyone with the right
XOR-MAPPED-ADDRESS; garbage, truncated and oversized datagrams and stream
messages do not stop the relay; a plain STUN message on the TLS port gets
the connection closed without a reply; an allocation made over TCP ends
with its connection (a per-user quota of one shows it); connection limits
and the idle timeout close connections; a client that does not read its
connection does not grow the relay's memory; a wrong secret gets 401, a
relay without --allow-peer refuses the loopback peer with 403, and the relay
exits cleanly on SIGTERM. Prints TAP; every wait is bounded; processes are
killed and the temporary directory removed also on failure.
"""

import hashlib
import hmac
import base64
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

from stunwire import COOKIE, stun_attr, stun_attrs, stun_msg

STARTUP_TIMEOUT = 15.0
CLIENT_TIMEOUT = 90.0
SECRET = "relay-interop-secret"
REALM = "p2ptun.test"


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def ensure_coturn():
    if shutil.which("turnutils_uclient") and shutil.which("turnutils_peer"):
        return True
    try:
        subprocess.run(["apt-get", "install", "-y", "coturn"], check=True, timeout=600,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return False
    return bool(shutil.which("turnutils_uclient") and shutil.which("turnutils_peer"))


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


class Procs:
    def __init__(self):
        self.procs = []

    def start(self, args, **kw):
        p = subprocess.Popen(args, **kw)
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


def start_relay(procs, relay, tmp, name, extra, want_tls=False, prefix=()):
    """Starts the relay (after the command prefix, e.g. prlimit) and returns
    (process, port) or, with want_tls, (process, port, tls_port)."""
    secret_file = os.path.join(tmp, "secret")
    err = open(os.path.join(tmp, name + ".stderr"), "wb")
    p = procs.start(list(prefix) + [relay, "--listen", "127.0.0.1:0", "--secret-file",
                                    secret_file, "--realm", REALM] + extra,
                    stdout=subprocess.PIPE, stderr=err)
    err.close()
    port = None
    deadline = time.monotonic() + STARTUP_TIMEOUT
    os.set_blocking(p.stdout.fileno(), False)
    buf = b""
    while time.monotonic() < deadline:
        chunk = p.stdout.read()
        if chunk:
            buf += chunk
        m = re.search(rb"^listen 127\.0\.0\.1:(\d+)\n", buf, re.M)
        t = re.search(rb"^tls-listen 127\.0\.0\.1:(\d+)\n", buf, re.M)
        if m and b"ready\n" in buf:
            port = int(m.group(1))
            if want_tls:
                check(t is not None, "relay did not print tls-listen: %r" % buf)
                return p, port, int(t.group(1))
            break
        if p.poll() is not None:
            break
        time.sleep(0.05)
    check(port is not None, "relay did not print listen/ready: %r" % buf)
    return p, port


def uclient(relay_port, peer_port, secret, extra):
    args = ["turnutils_uclient", "-W", secret, "-u", "interop", "-e", "127.0.0.1",
            "-r", str(peer_port), "-p", str(relay_port), "-n", "30", "-m", "2", "-l", "300",
            "-z", "5"] + extra + ["127.0.0.1"]
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=CLIENT_TIMEOUT)
    return r.stdout.decode(errors="replace")


# A small TURN client of our own for what coturn's clients cannot show:
# STUN over a TCP stream (RFC 8489), long-term credentials (RFC 8489 9.2).


def xor_addr(ip, port):
    x = bytes(a ^ b for a, b in zip(socket.inet_aton(ip), struct.pack(">I", COOKIE)))
    return struct.pack(">BBH", 0, 1, port ^ (COOKIE >> 16)) + x


def unxor_addr(v):
    port = struct.unpack(">H", v[2:4])[0] ^ (COOKIE >> 16)
    ip = bytes(a ^ b for a, b in zip(v[4:8], struct.pack(">I", COOKIE)))
    return socket.inet_ntoa(ip), port


def recv_msg(sock):
    """One STUN message or padded ChannelData from a stream; b"" on EOF."""
    def exactly(n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                return b""
            buf += chunk
        return buf
    head = exactly(4)
    if not head:
        return b""
    n = struct.unpack(">H", head[2:4])[0]
    if head[0] & 0xC0 == 0x40:
        return head + exactly((n + 3) // 4 * 4)
    return head + exactly(16 + n)


def turn_key(secret, user):
    """The long-term key (RFC 8489 9.2.2) of a TURN REST username (bytes)."""
    pw = base64.b64encode(hmac.new(secret.encode(), user, hashlib.sha1).digest())
    return hashlib.md5(user + b":" + REALM.encode() + b":" + pw).digest()


def turn_request(method, attrs, txid, user, key, nonce):
    """A request with attrs, and once a nonce is known, the credentials."""
    body = attrs
    if nonce is not None:
        body += (stun_attr(0x0006, user) + stun_attr(0x0014, REALM.encode())
                 + stun_attr(0x0015, nonce))
        # RFC 8489 section 14.5: the header's length covers the
        # MESSAGE-INTEGRITY attribute (24 bytes) being computed.
        head = stun_msg(method, body + bytes(24), txid)[:20]
        body += stun_attr(0x0008, hmac.new(key, head + body, hashlib.sha1).digest())
    return stun_msg(method, body, txid)


class TurnTcp:
    """Authenticated TURN requests over one TCP connection."""

    def __init__(self, port, secret, user):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.user = user.encode()
        self.key = turn_key(secret, self.user)
        self.nonce = None

    def request(self, method, attrs):
        """Sends method with attrs (and credentials); returns (class, attrs)."""
        for _ in range(2):
            txid = os.urandom(12)
            self.sock.sendall(turn_request(method, attrs, txid, self.user, self.key, self.nonce))
            reply = recv_msg(self.sock)
            check(reply, "connection closed instead of a reply")
            a = stun_attrs(reply)
            cls = (struct.unpack(">H", reply[:2])[0] >> 4) & 0x11
            code = 0
            if 0x0009 in a:
                code = a[0x0009][2] * 100 + a[0x0009][3]
            if code == 401 and self.nonce is None:
                self.nonce = a[0x0015]
                continue
            return code, a
        return code, a

    def allocate(self):
        return self.request(0x0003, stun_attr(0x0019, b"\x11\0\0\0"))

    def close(self):
        self.sock.close()


def assert_all_back(out, what):
    lost = re.findall(r"Total lost packets (\d+)", out)
    sent = re.findall(r"tot_send_msgs=(\d+), tot_recv_msgs=(\d+)", out)
    check(lost and sent, "%s: no totals in uclient output:\n%s" % (what, out[-2000:]))
    s, r = (int(x) for x in sent[-1])
    check(s == 60 and r == s and int(lost[-1]) == 0,
          "%s: sent %d, received %d, lost %s:\n%s" % (what, s, r, lost[-1], out[-2000:]))


def make_cert(tmp):
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=relay.test"],
                   check=True, timeout=60, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


def closed_without_reply(sock, timeout=5.0):
    """True when the other side closes sock (EOF or reset) without sending."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(4096)
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False
    return data == b""


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    relay = os.path.abspath(sys.argv[1])
    if not ensure_coturn():
        print("1..0 # SKIP coturn's turnutils are not installed")
        return 77
    if not shutil.which("openssl"):
        print("1..0 # SKIP the openssl command is not installed")
        return 77
    tmp = tempfile.mkdtemp(prefix="p2ptun-relay-test-")
    procs = Procs()
    results = []
    try:
        with open(os.path.join(tmp, "secret"), "w") as f:
            f.write(SECRET + "\n")
        peer_port = free_udp_port()
        procs.start(["turnutils_peer", "-L", "127.0.0.1", "-p", str(peer_port)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cert, key = make_cert(tmp)
        relay_p, port, tls_port = start_relay(
            procs, relay, tmp, "relay",
            ["--allow-peer", "127.0.0.1/32", "--tls-listen", "127.0.0.1:0",
             "--tls-cert", cert, "--tls-key", key,
             # Every uclient run uses the NAME "interop", and its UDP
             # allocations outlive it: no per-NAME quota here.
             "--max-allocations-per-user", "1000"], want_tls=True)
        time.sleep(0.2)  # let turnutils_peer bind

        def case(name, fn):
            try:
                fn()
                results.append((True, name, ""))
            except (Failure, subprocess.TimeoutExpired) as e:
                results.append((False, name, str(e)))

        case("uclient with channels (and EVEN-PORT/RESERVATION-TOKEN RTCP allocations)",
             lambda: assert_all_back(uclient(port, peer_port, SECRET, []), "channels"))
        case("uclient with Send/Data indications, no channels",
             lambda: assert_all_back(uclient(port, peer_port, SECRET, ["-s"]), "send"))
        case("uclient with Send/Data indications, no RTCP",
             lambda: assert_all_back(uclient(port, peer_port, SECRET, ["-s", "-c"]), "send-c"))

        def binding_and_garbage():
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.settimeout(5)
                s.bind(("127.0.0.1", 0))
                txid = os.urandom(12)
                s.sendto(struct.pack(">HHI", 0x0001, 0, 0x2112A442) + txid, ("127.0.0.1", port))
                data, _ = s.recvfrom(2048)
                check(data[:2] == b"\x01\x01" and data[8:20] == txid,
                      "no Binding success response: %r" % data)
                # XOR-MAPPED-ADDRESS (RFC 8489 section 14.2) names our port.
                off, mapped = 20, None
                while off + 4 <= len(data):
                    t, n = struct.unpack(">HH", data[off:off + 4])
                    if t == 0x0020:
                        mapped = struct.unpack(">H", data[off + 6:off + 8])[0] ^ 0x2112
                    off += 4 + (n + 3) // 4 * 4
                check(mapped == s.getsockname()[1], "XOR-MAPPED-ADDRESS %r" % mapped)
                # Garbage, truncated and oversized datagrams, then real clients.
                rnd = random.Random(7)
                for i in range(300):
                    n = rnd.randrange(0, 1500)
                    s.sendto(bytes(rnd.randrange(256) for _ in range(n)), ("127.0.0.1", port))
                s.sendto(b"\x00\x03\x00\x08\x21\x12\xa4\x42" + bytes(12), ("127.0.0.1", port))
                s.sendto(b"\x40\x00\xff\xff", ("127.0.0.1", port))
                s.sendto(b"\x00\x01\xff\xfc\x21\x12\xa4\x42" + bytes(60000), ("127.0.0.1", port))
            finally:
                s.close()
            check(relay_p.poll() is None, "relay died on garbage")
            assert_all_back(uclient(port, peer_port, SECRET, ["-s", "-c"]), "after garbage")
        case("Binding for anyone; garbage does not stop the relay", binding_and_garbage)

        # TURN over TCP and TLS (RFC 8656 section 3.1): the same port as UDP
        # for TCP, the TLS listener for TLS; relaying to the peer over UDP.
        case("uclient over TCP with channels (and RTCP allocations)",
             lambda: assert_all_back(uclient(port, peer_port, SECRET, ["-t"]), "tcp"))
        case("uclient over TCP with Send/Data indications",
             lambda: assert_all_back(uclient(port, peer_port, SECRET, ["-t", "-s"]), "tcp-s"))
        case("uclient over TLS with channels (and RTCP allocations)",
             lambda: assert_all_back(uclient(tls_port, peer_port, SECRET, ["-t", "-S"]), "tls"))
        case("uclient over TLS with Send/Data indications",
             lambda: assert_all_back(uclient(tls_port, peer_port, SECRET, ["-t", "-S", "-s"]),
                                     "tls-s"))

        def plain_on_tls():
            # A plain STUN Binding on the TLS port: closed, no STUN reply.
            s = socket.create_connection(("127.0.0.1", tls_port), timeout=5)
            try:
                s.sendall(struct.pack(">HHI", 0x0001, 0, COOKIE) + os.urandom(12))
                check(closed_without_reply(s), "TLS port answered or kept a plain STUN client")
            finally:
                s.close()
            # The same Binding on the TCP port is answered.
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            try:
                txid = os.urandom(12)
                s.sendall(struct.pack(">HHI", 0x0001, 0, COOKIE) + txid)
                reply = recv_msg(s)
                check(reply[:2] == b"\x01\x01" and reply[8:20] == txid,
                      "no Binding success over TCP: %r" % reply)
                mapped = unxor_addr(stun_attrs(reply)[0x0020])
                check(mapped == s.getsockname(), "XOR-MAPPED-ADDRESS over TCP %r" % (mapped,))
            finally:
                s.close()
        case("plain STUN on the TLS port is closed without a reply; TCP answers it",
             plain_on_tls)

        def stream_garbage():
            # Garbled framing, an oversized frame, and a message cut short
            # by the client closing: each connection is closed, nothing else.
            for junk in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                         struct.pack(">HHI", 0x0001, 5, COOKIE) + bytes(12),
                         b"\x40\x01\xff\xff" + bytes(64),
                         struct.pack(">HHI", 0x0003, 0xfffc, COOKIE) + bytes(12)):
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                try:
                    s.sendall(junk)
                    check(closed_without_reply(s), "garbled stream not closed: %r" % junk[:8])
                finally:
                    s.close()
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(struct.pack(">HHI", 0x0001, 8, COOKIE) + bytes(14))
            s.close()
            check(relay_p.poll() is None, "relay died on stream garbage")
            assert_all_back(uclient(port, peer_port, SECRET, ["-t", "-s", "-c"]),
                            "tcp after garbage")
        case("garbled, oversized and truncated stream messages close only their connection",
             stream_garbage)

        def slow_reader():
            # A TCP client that never reads while its peer floods it: the
            # relay drops for it instead of growing, and serves the others.
            t = TurnTcp(port, SECRET, "%d:slow" % (time.time() + 3600))
            try:
                code, a = t.allocate()
                check(code == 0 and 0x0016 in a, "allocate over TCP: %d" % code)
                relayed = unxor_addr(a[0x0016])
                peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                peer.bind(("127.0.0.1", 0))
                code, _ = t.request(0x0008, stun_attr(0x0012, xor_addr(*peer.getsockname())))
                check(code == 0, "CreatePermission: %d" % code)
                before = rss_kib(relay_p.pid)
                chunk = bytes(1200)
                deadline = time.monotonic() + 20
                for i in range(40000):  # 48 MB
                    try:
                        peer.sendto(chunk, relayed)
                    except OSError:
                        pass
                    if i % 1000 == 0 and time.monotonic() > deadline:
                        break
                peer.close()
                time.sleep(0.5)
                grown = rss_kib(relay_p.pid) - before
                check(grown < 32 * 1024, "relay grew by %d KiB for a client that does not read"
                      % grown)
                check(relay_p.poll() is None, "relay died")
                with open(os.path.join(tmp, "relay.stderr"), "rb") as f:
                    check(b"does not read: dropping" in f.read(),
                          "the relay did not say it dropped for the slow reader")
                assert_all_back(uclient(port, peer_port, SECRET, ["-t", "-s", "-c"]),
                                "tcp beside a slow reader")
            finally:
                t.close()
        case("a TCP client that does not read: data dropped, memory bounded", slow_reader)

        def wrong_secret():
            out = uclient(port, peer_port, "not-the-secret", ["-n", "1", "-m", "1"])
            # uclient gives up after the 401 to its authenticated Allocate.
            check(("401" in out or "Cannot complete Allocation" in out)
                  and "tot_recv_msgs" not in out, "wrong secret accepted:\n%s" % out[-1500:])
        case("wrong secret gets 401", wrong_secret)

        def denied():
            _, dport = start_relay(procs, relay, tmp, "relay-denied", [])
            out = uclient(dport, peer_port, SECRET, ["-n", "1", "-m", "1", "-c"])
            check("403" in out, "loopback peer without --allow-peer: no 403:\n%s" % out[-1500:])
        case("loopback peer refused with 403 without --allow-peer", denied)

        def tcp_limits():
            _, lport = start_relay(procs, relay, tmp, "relay-limits",
                                   ["--allow-peer", "127.0.0.1/32",
                                    "--max-allocations-per-user", "1",
                                    "--max-connections-per-address", "3",
                                    "--idle-timeout", "2"])
            user = "%d:quota" % (time.time() + 3600)
            a = TurnTcp(lport, SECRET, user)
            b = TurnTcp(lport, SECRET, user)
            try:
                code, _ = a.allocate()
                check(code == 0, "first allocation over TCP: %d" % code)
                code, _ = b.allocate()
                check(code == 486, "second allocation of the user: %d, not 486" % code)
                # A fourth connection from 127.0.0.1 is over the limit of 3.
                c = socket.create_connection(("127.0.0.1", lport), timeout=5)
                d = socket.create_connection(("127.0.0.1", lport), timeout=5)
                try:
                    check(closed_without_reply(d), "connection over the per-address limit kept")
                    d.close()
                    # The allocation ends with its connection: the quota of one
                    # is free again at once.
                    a.close()
                    time.sleep(0.3)
                    code, _ = b.allocate()
                    check(code == 0, "allocation after the first connection closed: %d" % code)
                    # c never sent anything: closed after the idle timeout;
                    # b has an allocation: kept.
                    t0 = time.monotonic()
                    check(closed_without_reply(c, timeout=8), "idle connection not closed")
                    check(time.monotonic() - t0 >= 0.5, "idle connection closed at once")
                    code, _ = b.request(0x0004, b"")
                    check(code == 0, "Refresh on the connection with an allocation: %d" % code)
                finally:
                    c.close()
                    d.close()
            finally:
                a.close()
                b.close()
        case("TCP: allocation ends with its connection; per-address limit; idle timeout",
             tcp_limits)

        def total_limit():
            _, lport = start_relay(procs, relay, tmp, "relay-total",
                                   ["--allow-peer", "127.0.0.1/32", "--max-connections", "2"])
            socks = [socket.create_connection(("127.0.0.1", lport), timeout=5) for _ in range(3)]
            try:
                check(closed_without_reply(socks[2]), "third connection kept over a limit of 2")
                # The first two still get answers.
                for s in socks[:2]:
                    txid = os.urandom(12)
                    s.sendall(struct.pack(">HHI", 0x0001, 0, COOKIE) + txid)
                    reply = recv_msg(s)
                    check(reply[8:20] == txid, "no Binding answer within the limit")
            finally:
                for s in socks:
                    s.close()
            with open(os.path.join(tmp, "relay-total.stderr"), "rb") as f:
                check(b"refused: connections in all (--max-connections)" in f.read(),
                      "no log line for the refused connection")
        case("TCP: --max-connections refuses past the limit, with a log line", total_limit)

        def sighup_then_term():
            relay_p.send_signal(signal.SIGHUP)
            time.sleep(0.3)
            assert_all_back(uclient(port, peer_port, SECRET, ["-s", "-c"]), "after SIGHUP")
            assert_all_back(uclient(tls_port, peer_port, SECRET, ["-t", "-S", "-s", "-c"]),
                            "TLS after SIGHUP (certificate reloaded)")
            # Exit with connections open: one with an allocation, one idle,
            # one in the middle of a TLS handshake (the sanitizer build checks
            # that all of it is freed).
            t = TurnTcp(port, SECRET, "%d:open" % (time.time() + 3600))
            idle_c = socket.create_connection(("127.0.0.1", port), timeout=5)
            tls_c = socket.create_connection(("127.0.0.1", tls_port), timeout=5)
            try:
                code, _ = t.allocate()
                check(code == 0, "allocate over TCP: %d" % code)
                tls_c.sendall(b"\x16\x03\x01\x00\x05\x01\x00")  # a first TLS record, cut
                time.sleep(0.3)
                relay_p.send_signal(signal.SIGTERM)
                rc = relay_p.wait(timeout=10)
            finally:
                t.close()
                idle_c.close()
                tls_c.close()
            check(rc == 0, "relay exit status %d after SIGTERM" % rc)
            with open(os.path.join(tmp, "relay.stderr"), "rb") as f:
                log = f.read()
            check(SECRET.encode() not in log, "the secret appears in the log")
        case("SIGHUP keeps serving; SIGTERM exits 0; secret never logged", sighup_then_term)
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)

    print("1..%d" % len(results))
    for i, (ok, name, why) in enumerate(results, 1):
        print("%s %d - %s" % ("ok" if ok else "not ok", i, name))
        if not ok:
            for line in why.splitlines():
                print("# " + line)
    return 0 if all(ok for ok, _, _ in results) else 1


if __name__ == "__main__":
    # meson stops an overlong test with SIGTERM: raise, so that the finally
    # blocks stop the processes and remove the files this test made.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    sys.exit(main())
