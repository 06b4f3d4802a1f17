#!/usr/bin/env python3
"""Many UDP allocations on one p2ptun-relay, every byte checked both ways.

Usage: test_relay_many.py PATH-TO-p2ptun-relay

Starts p2ptun-relay on 127.0.0.1 (port 0) with a shared-secret file and
`--allow-peer 127.0.0.1/32`, makes ALLOCATIONS allocations from as many UDP
sockets (more than the relay takes from its epoll set per dispatch, so that
many relayed sockets are ready at once), half with a channel and half with a
permission only (Send and Data indications), then:

 - one peer socket sends ROUNDS datagrams to every relayed address, the
   allocations in turn: each client gets exactly its own, in order (hash);
 - every client sends ROUNDS datagrams to the peer: the peer gets exactly
   each allocation's, from its relayed address, in order (hash);
 - half the allocations are released (Refresh with LIFETIME 0): their relayed
   addresses deliver nothing more, the others still deliver everything, and
   new allocations made after that (their sockets take the freed slots) relay
   too;
 - the relay is still running and exits with status 0 on SIGTERM.

Prints TAP; every wait is bounded; the relay is killed and the temporary
directory removed also on failure.
"""

import base64
import hashlib
import hmac
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

import tap
from stunwire import COOKIE, stun_attr, stun_attrs, stun_msg

ALLOCATIONS = 100
ROUNDS = 20
STARTUP_TIMEOUT = 20.0
REPLY_TIMEOUT = 2.0     # per try of a request; a few tries
DATA_TIMEOUT = 30.0     # for all datagrams of one phase (sanitizer builds are slow)
QUIET = 0.5             # nothing more may arrive within this, after a phase
REALM = "p2ptun.test"
SECRET = "relay-many-secret"
CHANNEL0 = 0x4000       # RFC 8656 section 12: 0x4000 through 0x4FFF

ALLOCATE, REFRESH, CREATE_PERMISSION, CHANNEL_BIND = 0x003, 0x004, 0x008, 0x009
SEND_INDICATION, DATA_INDICATION = 0x0016, 0x0017
ATTR_USERNAME, ATTR_MESSAGE_INTEGRITY, ATTR_ERROR_CODE = 0x0006, 0x0008, 0x0009
ATTR_CHANNEL_NUMBER, ATTR_LIFETIME, ATTR_XOR_PEER_ADDRESS = 0x000C, 0x000D, 0x0012
ATTR_DATA, ATTR_REALM, ATTR_NONCE = 0x0013, 0x0014, 0x0015
ATTR_XOR_RELAYED_ADDRESS, ATTR_REQUESTED_TRANSPORT = 0x0016, 0x0019


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def xor_addr(addr):
    ip, port = addr
    x = bytes(a ^ b for a, b in zip(socket.inet_aton(ip), struct.pack(">I", COOKIE)))
    return struct.pack(">BBH", 0, 1, port ^ (COOKIE >> 16)) + x


def unxor_addr(v):
    port = struct.unpack(">H", v[2:4])[0] ^ (COOKIE >> 16)
    ip = bytes(a ^ b for a, b in zip(v[4:8], struct.pack(">I", COOKIE)))
    return socket.inet_ntoa(ip), port


def payload(phase, i, seq):
    """The datagram number seq of allocation i in a phase: a header that names
    it and bytes that depend on all three, 60 to 560 bytes in all."""
    head = struct.pack(">III", phase, i, seq)
    n = 48 + (i * 131 + seq * 17 + phase * 7) % 500
    body = hashlib.sha256(head).digest() * (n // 32 + 1)
    return head + body[:n]


class Client:
    """One allocation over its own UDP socket, with TURN REST credentials."""

    def __init__(self, relay_port, i):
        self.i = i
        self.server = ("127.0.0.1", relay_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.user = ("%d:many%d" % (time.time() + 3600, i)).encode()
        pw = base64.b64encode(hmac.new(SECRET.encode(), self.user, hashlib.sha1).digest())
        self.key = hashlib.md5(self.user + b":" + REALM.encode() + b":" + pw).digest()
        self.nonce = None
        self.relayed = None
        self.channel = CHANNEL0 + i if i % 2 == 0 else None

    def request(self, method, attrs):
        """Sends method with attrs and credentials; the reply's (code, attrs),
        code 0 for a success."""
        for _ in range(4):
            txid = os.urandom(12)
            body = attrs
            if self.nonce is not None:
                body += (stun_attr(ATTR_USERNAME, self.user)
                         + stun_attr(ATTR_REALM, REALM.encode())
                         + stun_attr(ATTR_NONCE, self.nonce))
                # RFC 8489 section 14.5: the length covers MESSAGE-INTEGRITY.
                head = stun_msg(method, body + bytes(24), txid)[:20]
                body += stun_attr(ATTR_MESSAGE_INTEGRITY,
                                  hmac.new(self.key, head + body, hashlib.sha1).digest())
            self.sock.sendto(stun_msg(method, body, txid), self.server)
            deadline = time.monotonic() + REPLY_TIMEOUT
            reply = None
            while reply is None and time.monotonic() < deadline:
                select.select([self.sock], [], [], max(0.0, deadline - time.monotonic()))
                try:
                    data = self.sock.recv(65535)
                except BlockingIOError:
                    continue
                if len(data) >= 20 and data[8:20] == txid:
                    reply = data
            if reply is None:
                continue  # lost or slow: again, with a new transaction
            a = stun_attrs(reply)
            code = 0
            if ATTR_ERROR_CODE in a:
                code = (a[ATTR_ERROR_CODE][2] & 7) * 100 + a[ATTR_ERROR_CODE][3]
            if code in (401, 438) and ATTR_NONCE in a and self.nonce != a[ATTR_NONCE]:
                self.nonce = a[ATTR_NONCE]
                continue
            return code, a
        raise Failure("allocation %d: no answer to method 0x%03x" % (self.i, method))

    def allocate(self, peer):
        code, a = self.request(ALLOCATE, stun_attr(ATTR_REQUESTED_TRANSPORT, b"\x11\0\0\0"))
        check(code == 0 and ATTR_XOR_RELAYED_ADDRESS in a,
              "allocation %d: Allocate answered %d" % (self.i, code))
        self.relayed = unxor_addr(a[ATTR_XOR_RELAYED_ADDRESS])
        if self.channel is not None:
            code, _ = self.request(CHANNEL_BIND, stun_attr(ATTR_CHANNEL_NUMBER,
                                                          struct.pack(">HH", self.channel, 0))
                                   + stun_attr(ATTR_XOR_PEER_ADDRESS, xor_addr(peer)))
            check(code == 0, "allocation %d: ChannelBind answered %d" % (self.i, code))
        else:
            code, _ = self.request(CREATE_PERMISSION, stun_attr(ATTR_XOR_PEER_ADDRESS,
                                                               xor_addr(peer)))
            check(code == 0, "allocation %d: CreatePermission answered %d" % (self.i, code))

    def release(self):
        code, _ = self.request(REFRESH, stun_attr(ATTR_LIFETIME, struct.pack(">I", 0)))
        check(code == 0, "allocation %d: Refresh 0 answered %d" % (self.i, code))

    def send(self, peer, data):
        if self.channel is not None:
            # RFC 8656 section 12.4; over UDP no padding.
            msg = struct.pack(">HH", self.channel, len(data)) + data
        else:
            msg = stun_msg(SEND_INDICATION, stun_attr(ATTR_XOR_PEER_ADDRESS, xor_addr(peer))
                           + stun_attr(ATTR_DATA, data), os.urandom(12))
        self.sock.sendto(msg, self.server)

    def unwrap(self, msg, peer):
        """The application data of a ChannelData or Data indication from peer."""
        if self.channel is not None:
            check(len(msg) >= 4, "allocation %d: short datagram" % self.i)
            ch, n = struct.unpack(">HH", msg[:4])
            # Over UDP the padding is optional (RFC 8656 section 12.5).
            check(ch == self.channel and 4 + n <= len(msg) <= 4 + (n + 3) // 4 * 4,
                  "allocation %d: ChannelData for 0x%04x of %d bytes" % (self.i, ch, len(msg)))
            return msg[4:4 + n]
        check(len(msg) >= 20 and struct.unpack(">H", msg[:2])[0] == DATA_INDICATION,
              "allocation %d: not a Data indication" % self.i)
        a = stun_attrs(msg)
        check(unxor_addr(a.get(ATTR_XOR_PEER_ADDRESS, bytes(8))) == peer,
              "allocation %d: Data indication not from the peer" % self.i)
        check(ATTR_DATA in a, "allocation %d: Data indication without DATA" % self.i)
        return a[ATTR_DATA]

    def close(self):
        self.sock.close()


def drain(socks, want, timeout, quiet=QUIET):
    """Reads datagrams from socks until want(total) says enough or timeout;
    then quiet more seconds for any extra. Returns {sock: [(data, from)]}."""
    got = {s: [] for s in socks}
    total = 0
    deadline = time.monotonic() + timeout
    quiet_until = None
    while True:
        now = time.monotonic()
        if quiet_until is None and (want(total) or now >= deadline):
            quiet_until = now + quiet
        end = quiet_until if quiet_until is not None else deadline
        if now >= end:
            return got
        ready, _, _ = select.select(socks, [], [], end - now)
        for s in ready:
            while True:
                try:
                    data, frm = s.recvfrom(65535)
                except BlockingIOError:
                    break
                got[s].append((data, frm))
                total += 1


def peer_to_clients(peer, clients, phase, silent=()):
    """The peer sends ROUNDS datagrams to every relayed address, allocations in
    turn; each client in clients must get exactly its own, in order. The
    relayed addresses in silent (released) must deliver nothing."""
    addr = peer.getsockname()
    for seq in range(ROUNDS):
        for c in clients:
            peer.sendto(payload(phase, c.i, seq), c.relayed)
        for c in silent:
            peer.sendto(payload(phase, c.i, seq), c.relayed)
        if seq % 4 == 3:
            time.sleep(0.002)  # the peer's send buffer, not the relay, is small
    n = len(clients) * ROUNDS
    socks = [c.sock for c in clients] + [c.sock for c in silent]
    got = drain(socks, lambda total: total >= n, DATA_TIMEOUT)
    for c in silent:
        check(not got[c.sock], "released allocation %d delivered %d datagrams"
              % (c.i, len(got[c.sock])))
    for c in clients:
        msgs = got[c.sock]
        check(len(msgs) == ROUNDS, "allocation %d: %d of %d datagrams from the peer"
              % (c.i, len(msgs), ROUNDS))
        check(all(frm == c.server for m, frm in msgs),
              "allocation %d: a datagram not from the relay" % c.i)
        data = [c.unwrap(m, addr) for m, frm in msgs]
        want = [payload(phase, c.i, seq) for seq in range(ROUNDS)]
        check(hashlib.sha256(b"".join(data)).digest() == hashlib.sha256(b"".join(want)).digest()
              and [len(d) for d in data] == [len(w) for w in want],
              "allocation %d: the datagrams from the peer differ" % c.i)


def clients_to_peer(peer, clients, phase):
    """Every client sends ROUNDS datagrams to the peer, a round at a time; the
    peer must get exactly each allocation's, from its relayed address, in
    order."""
    addr = peer.getsockname()
    by_relayed = {c.relayed: c for c in clients}
    got = {c.i: [] for c in clients}
    for seq in range(ROUNDS):
        for c in clients:
            c.send(addr, payload(phase, c.i, seq))
        n = len(clients) * (seq + 1)
        # Extra datagrams of a round would show in the next one's count.
        last = seq == ROUNDS - 1
        r = drain([peer], lambda total: total >= len(clients), DATA_TIMEOUT,
                  QUIET if last else 0.0)
        for data, frm in r[peer]:
            check(frm in by_relayed, "the peer got a datagram from %s:%d" % frm)
            got[by_relayed[frm].i].append(data)
        check(sum(len(v) for v in got.values()) == n, "the peer got %d of %d datagrams"
              % (sum(len(v) for v in got.values()), n))
    for c in clients:
        want = [payload(phase, c.i, seq) for seq in range(ROUNDS)]
        check(got[c.i] == want, "allocation %d: the datagrams at the peer differ" % c.i)


def start_relay(relay, tmp, secret_file):
    err = open(os.path.join(tmp, "relay.stderr"), "wb")
    p = subprocess.Popen([relay, "--listen", "127.0.0.1:0", "--secret-file", secret_file,
                          "--realm", REALM, "--allow-peer", "127.0.0.1/32",
                          "--max-allocations-per-address", str(4 * ALLOCATIONS)],
                         stdout=subprocess.PIPE, stderr=err)
    err.close()
    os.set_blocking(p.stdout.fileno(), False)
    buf = b""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline and p.poll() is None:
        buf += p.stdout.read() or b""
        m = re.search(rb"^listen 127\.0\.0\.1:(\d+)\n", buf, re.M)
        if m and b"ready\n" in buf:
            return p, int(m.group(1))
        time.sleep(0.05)
    p.kill()
    p.wait(5)
    raise Failure("relay did not print listen/ready: %r" % buf)


def main():
    relay = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="p2ptun-relay-many-test-")
    relay_p = None
    peer = None
    clients = []
    outcomes = []
    try:
        secret_file = os.path.join(tmp, "secret")
        with open(secret_file, "w") as f:
            f.write(SECRET + "\n")
        relay_p, port = start_relay(relay, tmp, secret_file)
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # A round of every client's datagram at once (up to rmem_max).
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        peer.bind(("127.0.0.1", 0))
        peer.setblocking(False)
        paddr = peer.getsockname()

        def case(name, fn):
            try:
                fn()
                outcomes.append((True, name, ""))
            except (Failure, OSError) as e:
                outcomes.append((False, name, str(e)))

        def allocate_all():
            for i in range(ALLOCATIONS):
                c = Client(port, i)
                clients.append(c)
                c.allocate(paddr)
            check(len({c.relayed for c in clients}) == ALLOCATIONS,
                  "relayed addresses are not distinct")

        kept = []

        def release_half():
            released = [c for c in clients if c.i % 4 < 2]
            for c in released:
                c.release()
            kept.extend(c for c in clients if c.i % 4 >= 2)
            peer_to_clients(peer, kept, 3, silent=released)

        def allocate_again():
            fresh = []
            for i in range(ALLOCATIONS, ALLOCATIONS + ALLOCATIONS // 2):
                c = Client(port, i)
                clients.append(c)
                c.allocate(paddr)
                fresh.append(c)
            peer_to_clients(peer, kept + fresh, 4)
            clients_to_peer(peer, kept + fresh, 5)

        def sigterm():
            check(relay_p.poll() is None, "relay exited %s" % relay_p.returncode)
            relay_p.send_signal(signal.SIGTERM)
            check(relay_p.wait(10) == 0, "exit status %s" % relay_p.returncode)

        case("%d allocations over UDP, half with channels" % ALLOCATIONS, allocate_all)
        case("peer -> %d relayed addresses, %d datagrams each, every byte arrives in order"
             % (ALLOCATIONS, ROUNDS), lambda: peer_to_clients(peer, clients, 1))
        case("%d clients -> peer, %d datagrams each, every byte arrives in order from the "
             "relayed address" % (ALLOCATIONS, ROUNDS), lambda: clients_to_peer(peer, clients, 2))
        case("half released: their relayed addresses are silent, the rest relay whole",
             release_half)
        case("%d new allocations after the releases relay whole, both ways" % (ALLOCATIONS // 2),
             allocate_again)
        case("the relay is still running and exits with status 0 on SIGTERM", sigterm)
    except Failure as e:
        outcomes.append((False, "setup", str(e)))
    finally:
        for c in clients:
            c.close()
        if peer is not None:
            peer.close()
        if relay_p is not None and relay_p.poll() is None:
            relay_p.kill()
            relay_p.wait(5)
        if relay_p is not None:
            relay_p.stdout.close()
        log = ""
        try:
            with open(os.path.join(tmp, "relay.stderr"), errors="replace") as f:
                log = f.read()[-3000:]
        except OSError:
            pass
        shutil.rmtree(tmp, ignore_errors=True)
    return tap.finish(outcomes, log)


if __name__ == "__main__":
    sys.exit(main())
