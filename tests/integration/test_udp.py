#!/usr/bin/env python3
"""Integration tests of UDP forwards on loopback: p2ptun-signal and two
p2ptun-agent processes, a UDP echo service exposed with /udp, clients on a
pair's -U port.

usage: test_udp.py BUILD_DIR CASE"""

import os
import select
import socket
import sys
import threading
import time

from lab import TestFailure, check, free_port, run_cases

UP_RE = r"tunnel up: peer [a-z2-7]{52}, path direct"
DATAGRAMS = 200
CLIENTS = 3
# Fits a tunnel datagram at the base packet size (1143 bytes after the
# transport's and the flow's headers) and at any size discovery finds.
LARGEST = 1100


class UdpEcho:
    """A UDP service that answers each datagram with "PORT|" + the datagram,
    PORT being the source port it came from: the flow's own socket on the
    serving agent, which changes when a flow ends and a new one begins."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.received = 0
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            r, _, _ = select.select([self.sock], [], [], 0.1)
            if not r:
                continue
            data, addr = self.sock.recvfrom(65535)
            self.received += 1
            self.sock.sendto(b"%d|" % addr[1] + data, addr)

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def start(lab, exposes, udp_forwards, pair_extra=()):
    """A serving agent with --expose specs, a pairing agent with -U
    {port: service}; waits for the tunnel. Returns (server, client)."""
    sig, url, pin = lab.signal_server()
    sdir, sid = lab.agent_dir("server")
    cdir, cid = lab.agent_dir("client")
    sargs = ["serve", "--trust", cid]
    for spec in exposes:
        sargs += ["--expose", spec]
    server = lab.agent("server", sdir, sargs, url, pin)
    server.wait_line("serving as " + sid)
    cargs = ["pair", sid]
    for port, name in udp_forwards.items():
        cargs += ["-U", "%d:%s" % (port, name)]
    client = lab.agent("client", cdir, cargs + list(pair_extra), url, pin)
    client.wait_line(UP_RE, timeout=20)
    for port, name in udp_forwards.items():
        client.wait_line("forwarding udp 127.0.0.1:%d -> %s" % (port, name))
    return server, client


def ask(sock, port, payload, tries=3, wait=2.0):
    """Sends payload to the forward and returns (source port the service saw,
    the echoed bytes); retries a lost datagram, as a UDP client does."""
    for _ in range(tries):
        sock.sendto(payload, ("127.0.0.1", port))
        deadline = time.monotonic() + wait
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([sock], [], [], left)
            if not r:
                break
            data = sock.recv(65535)
            seen, _, echoed = data.partition(b"|")
            if echoed == payload:
                return int(seen), echoed
            # Otherwise a late answer to an earlier try of this client's;
            # another client's answer here would be a flow mixed up.
            if b"#" in payload:
                check(echoed.split(b"#")[0] == payload.split(b"#")[0],
                      "a client got another client's answer: %r" % data[:40])
    raise TestFailure("no answer to a %d-byte datagram after %d tries" % (len(payload), tries))


def flows(lab):
    """Three clients at once, each 200 datagrams of 1 to 1100 bytes in
    lockstep: every answer intact and to the client that asked (one flow per
    client, each its own socket at the service); a datagram larger than the
    tunnel carries is dropped and the agent says so."""
    echo = UdpEcho()
    try:
        port = free_port()
        server, client = start(lab, ["echo=127.0.0.1:%d/udp" % echo.port], {port: "echo"})
        ports = [set() for _ in range(CLIENTS)]
        errors = []

        def one(i):
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.bind(("127.0.0.1", 0))
                    for n in range(DATAGRAMS):
                        size = 1 + (n * 97 + i * 13) % LARGEST
                        head = b"c%d#%04d#" % (i, n)
                        payload = (head + os.urandom(size))[:max(size, len(head))]
                        seen, _ = ask(s, port, payload)
                        ports[i].add(seen)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append("client %d: %s" % (i, e))

        t0 = time.monotonic()
        threads = [threading.Thread(target=one, args=(i,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        check(not errors, "; ".join(errors))
        check(all(len(p) == 1 for p in ports), "a client's flow changed sockets: %r" % ports)
        check(len(set().union(*ports)) == CLIENTS,
              "clients shared a flow at the service: %r" % ports)
        sys.stderr.write("%d clients x %d datagrams answered in %.1f s, one flow each\n"
                         % (CLIENTS, DATAGRAMS, time.monotonic() - t0))

        # Too big for the tunnel: dropped, said, and the flow still works.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            ask(s, port, b"small first")
            before = echo.received
            s.sendto(b"x" * 4000, ("127.0.0.1", port))
            client.wait_line(r"udp 127\.0\.0\.1:%d -> echo: dropped 1 datagram: 4000 bytes; "
                             r"the tunnel carries at most \d+ now" % port, timeout=10)
            ask(s, port, b"small after")
            check(echo.received == before + 1, "the service got %d datagrams, not 1"
                  % (echo.received - before))
    finally:
        echo.close()


def idle(lab):
    """--udp-timeout 2: a client silent for longer gets a new flow (a new
    socket at the service); one that keeps talking keeps its flow."""
    echo = UdpEcho()
    try:
        port = free_port()
        start(lab, ["echo=127.0.0.1:%d/udp" % echo.port], {port: "echo"},
              pair_extra=["--udp-timeout", "2"])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            first, _ = ask(s, port, b"one")
            for _ in range(4):
                time.sleep(1)
                seen, _ = ask(s, port, b"keep")
                check(seen == first, "the flow ended while in use (%d, then %d)" % (first, seen))
            time.sleep(4)
            later, _ = ask(s, port, b"again")
            check(later != first, "the flow outlived --udp-timeout 2 (still socket %d)" % first)
    finally:
        echo.close()


def limit(lab):
    """260 clients at once: 256 get a flow, the others are dropped with one
    line saying why; once the flows time out (--udp-timeout 2), a new client
    gets one again."""
    echo = UdpEcho()
    socks = []
    try:
        port = free_port()
        _, client = start(lab, ["echo=127.0.0.1:%d/udp" % echo.port], {port: "echo"},
                          pair_extra=["--udp-timeout", "2"])
        for i in range(260):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            s.sendto(b"client %d" % i, ("127.0.0.1", port))
        client.wait_line(r"udp 127\.0\.0\.1:%d -> echo: dropped 1 datagram: too many clients "
                         r"at once \(256\)" % port, timeout=10)
        # The flows end after 2 s of silence; a new client is served again.
        time.sleep(4)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            ask(s, port, b"after the others left")
    finally:
        for s in socks:
            s.close()
        echo.close()


def wrong_kind(lab):
    """-U to a TCP service and -L to a UDP one: refused by the serving agent,
    and the pairing agent exits 1 saying what is wrong."""
    echo = UdpEcho()
    try:
        tcp = socket.socket()
        tcp.bind(("127.0.0.1", 0))
        tcp.listen(1)
        port = free_port()
        server, client = start(lab, ["web=127.0.0.1:%d" % tcp.getsockname()[1],
                                     "rtp=127.0.0.1:%d/udp" % echo.port], {port: "web"})
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"hello", ("127.0.0.1", port))
        client.wait_line(r"error: -U 127\.0\.0\.1:%d:web: service 'web' is a TCP service "
                         r"\(forward it with -L\)" % port, timeout=10)
        check(client.wait_exit(10) == 1, "pair did not exit 1")
        server.wait_line(r"refused a udp flow from [a-z2-7]{52}: service 'web' is a TCP service")

        # The other way round.
        sig, url, pin = lab.signal_server()
        sdir, sid = lab.agent_dir("server2")
        cdir, cid = lab.agent_dir("client2")
        server2 = lab.agent("server2", sdir, ["serve", "--trust", cid, "--expose",
                                              "rtp=127.0.0.1:%d/udp" % echo.port], url, pin)
        server2.wait_line("serving as " + sid)
        lport = free_port()
        client2 = lab.agent("client2", cdir, ["pair", sid, "-L", "%d:rtp" % lport], url, pin)
        client2.wait_line("forwarding 127.0.0.1:%d -> rtp" % lport, timeout=20)
        with socket.create_connection(("127.0.0.1", lport), timeout=10):
            client2.wait_line(r"error: .*service 'rtp' is a UDP service \(forward it with -U\)",
                              timeout=10)
        check(client2.wait_exit(10) == 1, "pair -L to a UDP service did not exit 1")
        tcp.close()
    finally:
        echo.close()


CASES = {
    "flows": flows,
    "idle": idle,
    "limit": limit,
    "wrong-kind": wrong_kind,
}

if __name__ == "__main__":
    sys.exit(run_cases(CASES, sys.argv))
