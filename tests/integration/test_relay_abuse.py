#!/usr/bin/env python3
"""p2ptun-relay against hostile clients (issue 13, items 3, 4 and 6), on loopback.

Usage: test_relay_abuse.py PATH-TO-p2ptun-relay CASE

Cases (each its own meson test):
  own-address    two allocations and a permission to the second's relayed
                 address must not reach another port of the relay's host (a
                 UDP service this test runs on 127.0.0.1), by Send indication
                 nor by a channel whose allocation is gone; relay to relay
                 (both clients relayed by the same relay) still works.
  name-quota     one NAME with many EXPIRYs hits --max-allocations-per-user.
  address-cap    one client address (127.0.0.2) hits the per-address cap,
                 explicit and default, over UDP and TCP together, while a
                 client on 127.0.0.1 is still served.
  fd-limit       under `prlimit --nofile=N:N` the relay refuses limits it
                 cannot hold, with one clear line; limits it can hold start,
                 and their worst case (every allocation with a reserved port,
                 every connection) is served.
  conn-churn     2,000 short TCP and TLS connections in a row (closed at
                 once, after a Binding, after a handshake, mid-handshake, by
                 reset) leave the relay's descriptor count where it started.
  slowloris      500 idle or trickling connections from 127.0.0.2 while a
                 client on 127.0.0.1 gets Allocate answered over TCP and TLS
                 (the time is printed); the relay closes the idle ones within
                 its handshake and first-request deadline.

Every wait is bounded; processes are killed and the temporary directory
removed also on failure. Prints TAP.
"""

import os
import selectors
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_relay import (COOKIE, REALM, SECRET, Failure, Procs, check, make_cert,  # noqa: E402
                        recv_msg, start_relay, stun_attr, stun_attrs, stun_msg, turn_key,
                        turn_request, unxor_addr, xor_addr)

REPLY_TIMEOUT = 5.0
ALLOCATE, REFRESH, SEND, CREATE_PERMISSION, CHANNEL_BIND = 0x0003, 0x0004, 0x0016, 0x0008, 0x0009
DATA_INDICATION = 0x0017


def user_at(name, offset=3600):
    return "%d:%s" % (time.time() + offset, name)


class Turn:
    """A TURN client over UDP, TCP or TLS from a chosen source address."""

    def __init__(self, transport, port, user, src="127.0.0.1"):
        self.transport = transport
        self.server = ("127.0.0.1", port)
        if transport == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((src, 0))
        else:
            self.sock = socket.create_connection(self.server, timeout=REPLY_TIMEOUT,
                                                 source_address=(src, 0))
            if transport == "tls":
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                self.sock = ctx.wrap_socket(self.sock)
        self.sock.settimeout(REPLY_TIMEOUT)
        self.user = user.encode()
        self.key = turn_key(SECRET, self.user)
        self.nonce = None
        self.relayed = None

    def send_raw(self, data):
        if self.transport == "udp":
            self.sock.sendto(data, self.server)
        else:
            self.sock.sendall(data)

    def recv_raw(self):
        """One message, or None when nothing came within the timeout."""
        try:
            if self.transport == "udp":
                return self.sock.recv(65536)
            return recv_msg(self.sock) or None
        except (socket.timeout, ssl.SSLError, ConnectionError):
            return None

    def request(self, method, attrs):
        """Sends method with attrs and credentials; returns (code, attrs)."""
        code, a = -1, {}
        for _ in range(2):
            txid = os.urandom(12)
            self.send_raw(turn_request(method, attrs, txid, self.user, self.key, self.nonce))
            deadline = time.monotonic() + REPLY_TIMEOUT
            reply = None
            while time.monotonic() < deadline:
                reply = self.recv_raw()
                if reply is None or reply[8:20] == txid:
                    break
            check(reply is not None and reply[8:20] == txid,
                  "no answer to 0x%04x from %s over %s" % (method, self.user.decode(),
                                                          self.transport))
            a = stun_attrs(reply)
            code = a[0x0009][2] * 100 + a[0x0009][3] if 0x0009 in a else 0
            if code == 401 and self.nonce is None:
                self.nonce = a[0x0015]
                continue
            return code, a
        return code, a

    def allocate(self, even_reserve=False):
        attrs = stun_attr(0x0019, b"\x11\0\0\0")
        if even_reserve:
            attrs += stun_attr(0x0018, b"\x80")
        code, a = self.request(ALLOCATE, attrs)
        if code == 0:
            self.relayed = unxor_addr(a[0x0016])
        return code

    def permit(self, peer):
        return self.request(CREATE_PERMISSION, stun_attr(0x0012, xor_addr(*peer)))[0]

    def bind_channel(self, number, peer):
        return self.request(CHANNEL_BIND, stun_attr(0x000C, struct.pack(">HH", number, 0))
                            + stun_attr(0x0012, xor_addr(*peer)))[0]

    def send_indication(self, peer, data):
        self.send_raw(stun_msg(SEND, stun_attr(0x0012, xor_addr(*peer)) + stun_attr(0x0013, data)))

    def channel_data(self, number, data):
        self.send_raw(struct.pack(">HH", number, len(data)) + data
                      + bytes((4 - len(data) % 4) % 4))

    def received(self, timeout=1.0):
        """Payloads relayed to this client within timeout: (peer, data) for a
        Data indication, (channel, data) for ChannelData."""
        out, deadline = [], time.monotonic() + timeout
        self.sock.settimeout(0.2)
        try:
            while time.monotonic() < deadline:
                m = self.recv_raw()
                if m is None:
                    continue
                if m[0] & 0xC0 == 0x40:
                    n = struct.unpack(">H", m[2:4])[0]
                    out.append((struct.unpack(">H", m[:2])[0], m[4:4 + n]))
                elif struct.unpack(">H", m[:2])[0] == DATA_INDICATION:
                    a = stun_attrs(m)
                    out.append((unxor_addr(a[0x0012]), a.get(0x0013, b"")))
        finally:
            self.sock.settimeout(REPLY_TIMEOUT)
        return out

    def close(self):
        self.sock.close()


def udp_service(ip="127.0.0.1", port=0):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, port))
    s.settimeout(0.2)
    return s


def datagrams(sock, timeout=1.0):
    got, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got.append(sock.recvfrom(65536))
        except socket.timeout:
            pass
    return got


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def case_own_address(env):
    _, port = start_relay(env.procs, env.relay, env.tmp, "relay", [])
    service = udp_service()
    svc = service.getsockname()
    name = user_at("mallory")
    first, second, third = (Turn("udp", port, name) for _ in range(3))
    env.closers += [service, first, second, third]
    for t in (first, second, third):
        check(t.allocate() == 0, "allocation refused")
    check(second.permit(first.relayed) == 0, "permission to another allocation refused")
    # The attack: the permission is per IP; the Send goes to another port.
    second.send_indication(svc, b"to the host's service")
    got = datagrams(service)
    check(not got, "a Send indication reached the relay host's UDP service %s: %r" % (svc, got))
    check(second.bind_channel(0x4001, svc) == 403, "channel to the host's service not refused")
    # A channel to an allocation that is then given back: its port is
    # taken by a service of the host; ChannelData must not reach it.
    check(second.permit(third.relayed) == 0 and second.bind_channel(0x4000, third.relayed) == 0,
          "channel to the third allocation refused")
    check(third.request(REFRESH, stun_attr(0x000D, bytes(4)))[0] == 0, "Refresh 0 failed")
    third.close()
    squatter = udp_service(*third.relayed)
    env.closers.append(squatter)
    second.channel_data(0x4000, b"to whoever has the port now")
    got = datagrams(squatter)
    check(not got, "ChannelData reached %s after its allocation ended: %r" % (third.relayed, got))
    print("# the host's service and the freed port got nothing")
    # Relay to relay: both clients relayed by this relay, both ways, by
    # Send indication and by channel.
    check(first.permit(second.relayed) == 0, "permission back refused")
    second.send_indication(first.relayed, b"one")
    got = first.received()
    check(got == [(second.relayed, b"one")], "relay to relay by Send: %r" % got)
    first.send_indication(second.relayed, b"two")
    got = second.received()
    check(got == [(first.relayed, b"two")], "relay to relay back by Send: %r" % got)
    check(first.bind_channel(0x4002, second.relayed) == 0, "channel relay to relay refused")
    first.channel_data(0x4002, b"three")
    got = second.received()
    check(got == [(first.relayed, b"three")], "relay to relay by channel: %r" % got)
    print("# relay to relay: Send and ChannelData arrived both ways")


def case_name_quota(env):
    _, port = start_relay(env.procs, env.relay, env.tmp, "relay",
                          ["--max-allocations-per-user", "3"])
    codes = []
    for i in range(6):
        t = Turn("udp", port, user_at("peer-a", 3600 + i))
        env.closers.append(t)
        codes.append(t.allocate())
    print("# one NAME, six EXPIRYs: %r" % codes)
    check(codes == [0, 0, 0, 486, 486, 486], "per-NAME quota of 3: %r" % codes)
    other = Turn("udp", port, user_at("peer-b"))
    env.closers.append(other)
    check(other.allocate() == 0, "another NAME refused")


def flood(env, port, n, transports=("udp",)):
    """n allocations from 127.0.0.2, each its own NAME; the answers' codes."""
    codes = []
    for i in range(n):
        t = Turn(transports[i % len(transports)], port, user_at("flood-%d" % i), src="127.0.0.2")
        env.closers.append(t)
        codes.append(t.allocate())
    return codes


def case_address_cap(env):
    _, port = start_relay(env.procs, env.relay, env.tmp, "relay-cap",
                          ["--max-allocations-per-address", "5"])
    codes = flood(env, port, 8, ("udp", "tcp"))
    print("# --max-allocations-per-address 5, 8 tries from 127.0.0.2 over UDP and TCP: %r"
          % codes)
    check(codes == [0] * 5 + [486] * 3, "explicit cap: %r" % codes)
    legit = Turn("udp", port, user_at("legit"))
    env.closers.append(legit)
    check(legit.allocate() == 0, "client on 127.0.0.1 refused")
    # The default, under a flood that would fill --max-allocations.
    _, port = start_relay(env.procs, env.relay, env.tmp, "relay-default",
                          ["--max-allocations", "150"])
    codes = flood(env, port, 150)
    got = codes.count(0)
    print("# default cap: 150 tries from 127.0.0.2 got %d allocations" % got)
    check(got == 100 and set(codes[100:]) == {486}, "default per-address cap: %d" % got)
    legit = Turn("tcp", port, user_at("legit"))
    env.closers.append(legit)
    check(legit.allocate() == 0, "client on 127.0.0.1 refused beside the flood")


def case_fd_limit(env):
    if not shutil.which("prlimit"):
        raise Skip("prlimit is not installed")
    secret = os.path.join(env.tmp, "secret")
    r = subprocess.run(["prlimit", "--nofile=200:200", env.relay, "--listen", "127.0.0.1:0",
                        "--secret-file", secret, "--realm", REALM],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    err = r.stderr.decode(errors="replace")
    print("# under 200 descriptors, the defaults: exit %d, %r" % (r.returncode, err.strip()))
    check(r.returncode != 0 and b"ready" not in r.stdout, "the relay started anyway")
    check(len(err.strip().splitlines()) == 1 and "RLIMIT_NOFILE is 200" in err
          and "--max-allocations 1000" in err, "not one clear line: %r" % err)
    # 2 * 50 + 50 + 32 = 182 fit in 200: it starts, and holds its worst case.
    p, port = start_relay(env.procs, env.relay, env.tmp, "relay-fits",
                          ["--max-allocations", "50", "--max-connections", "50",
                           "--max-allocations-per-user", "50"],
                          prefix=["prlimit", "--nofile=200:200"])
    codes = []
    for i in range(50):
        t = Turn("udp", port, user_at("fill"))
        env.closers.append(t)
        codes.append(t.allocate(even_reserve=True))
    check(codes == [0] * 50, "allocations with reserved ports: %r" % codes)
    conns = []
    for i in range(50):
        s = socket.create_connection(("127.0.0.1", port), timeout=REPLY_TIMEOUT)
        env.closers.append(s)
        conns.append(s)
    for s in conns:
        txid = os.urandom(12)
        s.sendall(struct.pack(">HHI", 0x0001, 0, COOKIE) + txid)
        check(recv_msg(s)[8:20] == txid, "no Binding answer on a connection")
    print("# 50 allocations, 50 reserved ports and 50 connections: %d descriptors"
          % fd_count(p.pid))
    with open(os.path.join(env.tmp, "relay-fits.stderr"), "rb") as f:
        log = f.read()
    check(b"Too many open files" not in log, "the relay ran out of descriptors")


def case_conn_churn(env):
    cert, key = make_cert(env.tmp)
    p, port, tls_port = start_relay(env.procs, env.relay, env.tmp, "relay",
                                    ["--tls-listen", "127.0.0.1:0", "--tls-cert", cert,
                                     "--tls-key", key], want_tls=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    time.sleep(0.2)
    before = fd_count(p.pid)

    def plain():
        socket.create_connection(("127.0.0.1", port), timeout=REPLY_TIMEOUT).close()

    def binding():
        with socket.create_connection(("127.0.0.1", port), timeout=REPLY_TIMEOUT) as s:
            txid = os.urandom(12)
            s.sendall(struct.pack(">HHI", 0x0001, 0, COOKIE) + txid)
            check(recv_msg(s)[8:20] == txid, "no Binding answer")

    def tls_done():
        raw = socket.create_connection(("127.0.0.1", tls_port), timeout=REPLY_TIMEOUT)
        with ctx.wrap_socket(raw):
            pass

    def tls_cut():
        with socket.create_connection(("127.0.0.1", tls_port), timeout=REPLY_TIMEOUT) as s:
            s.sendall(b"\x16\x03\x01\x00\x50\x01\x00")

    def reset():
        s = socket.create_connection(("127.0.0.1", port), timeout=REPLY_TIMEOUT)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.sendall(struct.pack(">HHI", 0x0001, 0, COOKIE))
        s.close()

    kinds = [plain, binding, tls_done, tls_cut, reset]
    t0 = time.monotonic()
    for i in range(2000):
        kinds[i % len(kinds)]()
    took = time.monotonic() - t0
    after, deadline = fd_count(p.pid), time.monotonic() + 15
    while after != before and time.monotonic() < deadline:
        time.sleep(0.2)
        after = fd_count(p.pid)
    print("# 2000 connections in %.1f s; relay descriptors before %d, after %d"
          % (took, before, after))
    check(after == before, "descriptors %d before, %d after" % (before, after))
    check(p.poll() is None, "the relay died")


def case_slowloris(env):
    cert, key = make_cert(env.tmp)
    # A long idle timeout: what closes the idle ones must be the deadline
    # for the handshake and the first request.
    p, port, tls_port = start_relay(env.procs, env.relay, env.tmp, "relay",
                                    ["--tls-listen", "127.0.0.1:0", "--tls-cert", cert,
                                     "--tls-key", key, "--idle-timeout", "600"],
                                    want_tls=True)
    idle, trickle = [], []
    for i in range(500):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        env.closers.append(s)
        s.bind(("127.0.0.2", 0))
        s.settimeout(REPLY_TIMEOUT)
        s.connect(("127.0.0.1", tls_port if i % 2 else port))
        (trickle if i % 10 == 0 else idle).append(s)
    # The trickling ones announce a message (an Allocate of 256 bytes, a TLS
    # record of 256) and send one byte of it a second.
    stun_head = struct.pack(">HHI", ALLOCATE, 256, COOKIE) + bytes(12 + 256)
    tls_head = b"\x16\x03\x01\x01\x00\x01" + bytes(255)
    trickled = {s: (tls_head if s.getpeername()[1] == tls_port else stun_head)
                for s in trickle}
    sent = 0
    times = []
    for transport, p_ in (("tcp", port), ("tls", tls_port)):
        t0 = time.monotonic()
        t = Turn(transport, p_, user_at("legit-" + transport))
        env.closers.append(t)
        code = t.allocate()
        times.append(time.monotonic() - t0)
        check(code == 0, "Allocate over %s beside 500 idle connections: %d" % (transport, code))
    print("# Allocate answered beside 500 idle connections: TCP %.3f s, TLS %.3f s"
          % tuple(times))
    check(max(times) < 5.0, "Allocate took %.3f s" % max(times))
    # Every idle or trickling connection is closed by the relay.
    sel = selectors.DefaultSelector()
    for s in idle + trickle:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    t0, open_left, last_trickle = time.monotonic(), len(idle) + len(trickle), 0.0
    while open_left > 0 and time.monotonic() - t0 < 30:
        for k, _ in sel.select(timeout=0.2):
            try:
                data = k.fileobj.recv(4096)
            except BlockingIOError:
                continue
            except ConnectionError:
                data = b""
            if not data:
                sel.unregister(k.fileobj)
                open_left -= 1
        if time.monotonic() - last_trickle >= 1.0:
            last_trickle = time.monotonic()
            still_open = set(k.fileobj for k in sel.get_map().values())
            for s in trickle:
                if s in still_open:
                    try:
                        s.send(trickled[s][sent:sent + 1])
                    except OSError:
                        pass
            sent += 1
    took = time.monotonic() - t0
    sel.close()
    print("# the relay closed %d of 500 idle or trickling connections within %.1f s"
          % (500 - open_left, took))
    check(open_left == 0, "%d idle connections still open after %.0f s" % (open_left, took))
    check(p.poll() is None, "the relay died")


class Skip(Exception):
    pass


class Env:
    def __init__(self, relay, tmp):
        self.relay, self.tmp = relay, tmp
        self.procs = Procs()
        self.closers = []


CASES = {
    "own-address": case_own_address,
    "name-quota": case_name_quota,
    "address-cap": case_address_cap,
    "fd-limit": case_fd_limit,
    "conn-churn": case_conn_churn,
    "slowloris": case_slowloris,
}


def main():
    relay, case = os.path.abspath(sys.argv[1]), sys.argv[2]
    tmp = tempfile.mkdtemp(prefix="p2ptun-relay-abuse-")
    env = Env(relay, tmp)
    print("1..1")
    try:
        with open(os.path.join(tmp, "secret"), "w") as f:
            f.write(SECRET + "\n")
        CASES[case](env)
        print("ok 1 - %s" % case)
        return 0
    except Skip as e:
        print("ok 1 - %s # SKIP %s" % (case, e))
        return 0
    except (Failure, OSError, subprocess.SubprocessError) as e:
        print("not ok 1 - %s" % case)
        for line in str(e).splitlines():
            print("# " + line)
        return 1
    finally:
        for c in env.closers:
            try:
                c.close()
            except OSError:
                pass
        env.procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    sys.exit(main())
