#!/usr/bin/env python3
"""Integration tests of the direct tunnel on loopback: p2ptun-signal and two
p2ptun-agent processes, real TCP services, bytes checked by SHA-256.

usage: test_tunnel.py BUILD_DIR CASE"""

import base64
import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

from lab import (TestFailure, TestSkip, check, connect_retry, free_port, pattern_bytes,
                 read_until_end, roundtrip, run_cases, stun_answers)

MIB = 1024 * 1024
# The peer's checks can come before its candidate lines (trickled through
# the signaling server): its host candidate is peer-reflexive until then.
UP_RE = r"tunnel up: peer [a-z2-7]{52}, path direct \(host 127\.0\.0\.1:\d+ -> (?:host|prflx) 127\.0\.0\.1:\d+, udp\), rtt [\d.]+ ms"


def setup_pair(lab, services, forwards, trust=True, serve_extra=(), pair_extra=(),
               sig_extra=()):
    """A serving agent exposing services {name: port}, and a pairing agent with
    -L forwards {local_port: name}. Returns (server, client, ids)."""
    sig, url, pin = lab.signal_server(*sig_extra)
    sdir, sid = lab.agent_dir("server")
    cdir, cid = lab.agent_dir("client")
    sargs = ["serve"]
    for name, port in services.items():
        sargs += ["--expose", "%s=127.0.0.1:%d" % (name, port)]
    if trust:
        sargs += ["--trust", cid]
    server = lab.agent("server", sdir, sargs + list(serve_extra), url, pin)
    server.wait_line("serving as " + sid)
    cargs = ["pair", sid]
    for lport, name in forwards.items():
        cargs += ["-L", "%d:%s" % (lport, name)]
    client = lab.agent("client", cdir, cargs + list(pair_extra), url, pin)
    return server, client, (sid, cid, url, pin)


def transfer(lab, size=64 * MIB, up_re=UP_RE, during=None, **setup):
    """64 MiB through a forwarded port in each direction, hashes equal.
    during(server, client), if given, runs once the first MiB came down."""
    source = lab.service("source", size=size, seed=7)
    sink = lab.service("sink")
    pdown, pup = free_port(), free_port()
    server, client, _ = setup_pair(lab, {"down": source.port, "up": sink.port},
                                   {pdown: "down", pup: "up"}, **setup)
    client.wait_line(up_re, timeout=20)
    client.wait_line("forwarding 127.0.0.1:%d -> up" % pup)

    expected = hashlib.sha256(pattern_bytes(7, size)).hexdigest()
    result = {}
    under_way = threading.Event()

    def download():
        h = hashlib.sha256()
        n = 0
        with connect_retry(pdown) as s:
            while True:
                data = s.recv(1 << 16)
                if not data:
                    break
                h.update(data)
                n += len(data)
                if n >= MIB:
                    under_way.set()
        result["down"] = (n, h.hexdigest())

    if during:
        def hook():
            if under_way.wait(120):
                during(server, client)
        hook_thread = threading.Thread(target=hook, daemon=True)
        hook_thread.start()
    t = threading.Thread(target=download)
    t0 = time.monotonic()
    t.start()
    payload = pattern_bytes(9, size)
    with connect_retry(pup) as s:
        view = memoryview(payload)
        for off in range(0, size, 1 << 16):
            s.sendall(view[off:off + (1 << 16)])
        s.shutdown(socket.SHUT_WR)
        answer = b""
        while True:
            data = s.recv(4096)
            if not data:
                break
            answer += data
    t.join(300)
    elapsed = time.monotonic() - t0
    check(not t.is_alive(), "download did not finish")
    check(answer.decode() == hashlib.sha256(payload).hexdigest(),
          "upload hash differs: %r" % answer[:80])
    check(result["down"] == (size, expected), "download differs: %d bytes" % result["down"][0])
    if during:
        hook_thread.join(10)
        check(not hook_thread.is_alive(), "the hook did not finish")
    sys.stderr.write("%d MiB (%d each way, concurrently) in %.1f s\n"
                     % (2 * size // MIB, size // MIB, elapsed))
    return server, client


def transfer_datapath(lab, mode, max_datagram, want_mode, want_size):
    """transfer() with P2PTUN_UDP_BATCH=mode (and P2PTUN_MAX_DATAGRAM): both
    agents say which send path and datagram size they use, and the records
    grow past the Internet size only where the route allows."""
    os.environ["G_MESSAGES_DEBUG"] = "p2ptun"
    os.environ["P2PTUN_UDP_BATCH"] = mode
    if max_datagram:
        os.environ["P2PTUN_MAX_DATAGRAM"] = str(max_datagram)
    server, client = transfer(lab)
    for agent in (server, client):
        m = agent.wait_line(r"datagrams up to (\d+) bytes, (.*)$", timeout=5)
        check((m.group(1), m.group(2)) == (str(want_size), want_mode),
              "%s: datagrams up to %s bytes, %s; expected %d, %s"
              % (agent.name, m.group(1), m.group(2), want_size, want_mode))
        sizes = [int(x) for x in re.findall(r"tunnel packets of (\d+) bytes", agent.text())]
        largest = max(sizes, default=0)
        if want_size > 1472:
            check(largest > 1435, "%s: packets never grew past 1435 bytes (%s)"
                  % (agent.name, sizes))
        else:
            check(largest <= 1435, "%s: packets of %d bytes on a 1472-byte path"
                  % (agent.name, largest))
        sys.stderr.write("%s: datagrams up to %s bytes (%s), packets grew to %d\n"
                         % (agent.name, m.group(1), m.group(2), largest))


def streams50(lab):
    """50 concurrent streams through one tunnel, each its own data, all intact."""
    echo = lab.service("echo")
    port = free_port()
    server, client, _ = setup_pair(lab, {"echo": echo.port}, {port: "echo"})
    client.wait_line(UP_RE, timeout=20)
    client.wait_line("forwarding 127.0.0.1:%d -> echo" % port)
    errors = []

    def one(i):
        data = pattern_bytes(100 + i, 256 * 1024 + i * 997)
        try:
            with connect_retry(port) as s:
                def send():
                    s.sendall(data)
                    s.shutdown(socket.SHUT_WR)
                w = threading.Thread(target=send)
                w.start()
                got = bytearray()
                while True:
                    chunk = s.recv(1 << 16)
                    if not chunk:
                        break
                    got += chunk
                w.join(60)
            if bytes(got) != data:
                errors.append("stream %d: %d of %d bytes, content %s" % (
                    i, len(got), len(data), "differs" if len(got) == len(data) else "short"))
        except OSError as e:
            errors.append("stream %d: %s" % (i, e))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    check(not any(t.is_alive() for t in threads), "some streams did not finish")
    check(not errors, "; ".join(errors[:5]))
    check(echo.connections == 50, "service saw %d connections, not 50" % echo.connections)


def serve_echo(lab):
    """A signaling server and a serving agent that exposes an echo service to
    a client identity. Returns (url, pin, server peer-id, client config dir)."""
    echo = lab.service("echo")
    sig, url, pin = lab.signal_server()
    sdir, sid = lab.agent_dir("server")
    cdir, cid = lab.agent_dir("client")
    server = lab.agent("server", sdir, ["serve", "--expose", "echo=127.0.0.1:%d" % echo.port,
                                        "--trust", cid], url, pin)
    server.wait_line("serving as")
    return url, pin, sid, cdir


def stdio(lab):
    """pair --stdio carries stdin to the service and its answer to stdout, then exits 0."""
    url, pin, sid, cdir = serve_echo(lab)
    client = lab.agent("client", cdir, ["pair", sid, "--stdio", "echo"], url, pin,
                       stdin=subprocess.PIPE, capture_stdout=True)
    # More than the windows and buffers between stdin and stdout hold, so the
    # reader of stdout falls behind: libnice's pseudo-TCP stalled here for
    # seconds (zero-window probe backoff, about 1 run in 8 with 2 MiB).
    data = pattern_bytes(3, 2 * 1024 * 1024)
    got = bytearray()

    def reader():
        while True:
            chunk = client.proc.stdout.read1(1 << 16)
            if not chunk:
                return
            got.extend(chunk)

    r = threading.Thread(target=reader)
    r.start()
    client.proc.stdin.write(data)
    client.proc.stdin.close()
    r.join(60)
    check(not r.is_alive(), "stdout did not end")
    code = client.wait_exit(30)
    check(bytes(got) == data, "stdio round trip differs: %d of %d bytes" % (len(got), len(data)))
    check(code == 0, "pair --stdio exited %d" % code)


def untrusted(lab):
    """A serving agent that does not trust us refuses the tunnel, and says why."""
    echo = lab.service("echo")
    server, client, (sid, cid, _, _) = setup_pair(lab, {"echo": echo.port}, {free_port(): "echo"},
                                                  trust=False)
    client.wait_line(r"error: the peer does not trust this agent \(our peer-id is %s\)" % cid)
    check(client.wait_exit(10) == 1, "pair should exit 1")
    server.wait_line("refused a tunnel from %s: not trusted" % cid)
    check(server.proc.poll() is None, "the server must keep serving")


def not_exposed(lab):
    """Asking for a service the peer does not expose is refused with the reason."""
    echo = lab.service("echo")
    port = free_port()
    server, client, _ = setup_pair(lab, {"echo": echo.port}, {port: "nosuch"})
    client.wait_line(UP_RE, timeout=20)
    client.wait_line("forwarding 127.0.0.1:%d -> nosuch" % port)
    with connect_retry(port) as s:
        s.settimeout(10)
        _, ending = read_until_end(s, 0)
        check(ending == "reset", "a refused stream must be reset, not closed in order")
    client.wait_line(r"error: service 'nosuch' is not exposed by this agent")
    check(client.wait_exit(10) == 1, "pair should exit 1")
    server.wait_line(r"refused a stream from [a-z2-7]{52}: service 'nosuch' is not exposed")


def offline(lab):
    """A peer that is not connected: pair says so, keeps waiting, and connects
    when the peer comes; --timeout ends the wait."""
    echo = lab.service("echo")
    sig, url, pin = lab.signal_server()
    sdir, sid = lab.agent_dir("server")
    cdir, cid = lab.agent_dir("client")
    lab.enroll(sig.state, sid)  # enrolled, not yet connected
    lonely = lab.agent("lonely", cdir, ["pair", sid, "-L", "%d:echo" % free_port(),
                                        "--timeout", "2"], url, pin)
    lonely.wait_line("peer %s is not connected to the signaling server; waiting" % sid)
    lonely.wait_line(r"error: timed out after 2 s: no tunnel to peer %s" % sid, timeout=10)
    check(lonely.wait_exit(10) == 1, "a timed-out pair should exit 1")

    port = free_port()
    client = lab.agent("client", cdir, ["pair", sid, "-L", "%d:echo" % port], url, pin)
    client.wait_line("peer %s is not connected to the signaling server; waiting" % sid)
    server = lab.agent("server", sdir, ["serve", "--expose", "echo=127.0.0.1:%d" % echo.port,
                                        "--trust", cid], url, pin)
    client.wait_line(UP_RE, timeout=30)
    got = roundtrip(port, b"hello")
    check(got == b"hello", "echo through the late tunnel: %r" % got)


def mutual(lab):
    """Two agents that each run pair <the other> connect with no trust set up."""
    echo_a, echo_b = lab.service("echo"), lab.service("echo")
    sig, url, pin = lab.signal_server()
    adir, aid = lab.agent_dir("a")
    bdir, bid = lab.agent_dir("b")
    pa, pb = free_port(), free_port()
    a = lab.agent("a", adir, ["pair", bid, "-L", "%d:echo" % pa, "--expose",
                              "echo=127.0.0.1:%d" % echo_a.port], url, pin)
    b = lab.agent("b", bdir, ["pair", aid, "-L", "%d:echo" % pb, "--expose",
                              "echo=127.0.0.1:%d" % echo_b.port], url, pin)
    a.wait_line(UP_RE, timeout=30)
    b.wait_line(UP_RE, timeout=30)
    for port, svc in ((pa, echo_b), (pb, echo_a)):
        got = roundtrip(port, b"ping %d" % port)
        check(got == b"ping %d" % port, "echo through port %d: %r" % (port, got))
        check(svc.connections == 1, "the other side's service must answer")


def sigterm(lab):
    """SIGTERM closes the tunnel and tells the peer; exit code 0."""
    echo = lab.service("echo")
    port = free_port()
    server, client, (sid, cid, _, _) = setup_pair(lab, {"echo": echo.port}, {port: "echo"})
    client.wait_line(UP_RE, timeout=20)
    s = connect_retry(port)
    s.sendall(b"x")
    check(s.recv(1) == b"x", "echo before SIGTERM")
    client.signal(signal.SIGTERM)
    check(client.wait_exit(10) == 0, "pair should exit 0 on SIGTERM")
    server.wait_line("peer %s: the peer ended the tunnel" % cid, timeout=10)
    # The stream was cut, not ended by the service: a reset on both ends.
    s.settimeout(5)
    _, ending = read_until_end(s, 0)
    s.close()
    check(ending == "reset", "the forwarded connection must be reset, it ended with %s" % ending)
    check(echo.wait_endings(1) == ["reset"], "the service's connection must be reset: %r"
          % echo.endings)


def read_prefix(s, n, what):
    """Reads the first n bytes (or a little more) of a download."""
    s.settimeout(30)
    got = 0
    while got < n:
        data = s.recv(1 << 16)
        check(data, "%s ended after %d bytes" % (what, got))
        got += len(data)
    return got


def peer_sigterm(lab):
    """The serving agent stops in the middle of a download: the client sees
    a reset after a prefix, never a clean end; pair says that the peer went
    away and keeps its -L port; the service's connection is reset too. The
    serving agent starts again: pair reconnects by itself, and a new
    connection through the same port works."""
    size = 256 * MIB
    source = lab.service("source", size=size, seed=7)
    port = free_port()
    server, client, (sid, cid, url, pin) = setup_pair(lab, {"down": source.port},
                                                      {port: "down"})
    client.wait_line(UP_RE, timeout=20)
    with connect_retry(port) as s:
        got = read_prefix(s, MIB, "the download")
        server.signal(signal.SIGTERM)
        n, ending = read_until_end(s, size)
    check(ending == "reset", "a download cut after %d of %d bytes ended with %s, not a reset"
          % (got + n, size, ending))
    check(got + n < size, "the whole download arrived before the stop; cannot judge")
    client.wait_line(r"peer %s went away: the peer ended the tunnel.*; reconnecting in "
                     r"[\d.]+ s" % sid, timeout=10)
    check(server.wait_exit(10) == 0, "serve should exit 0 on SIGTERM")
    check(source.wait_endings(1) == ["reset"], "the service's connection must be reset: %r"
          % source.endings)
    sys.stderr.write("download cut after %d of %d bytes: reset\n" % (got + n, size))
    time.sleep(1.5)
    check(client.proc.poll() is None, "pair must keep running while its peer is away")

    sdir, _ = lab.agent_dir("server")
    lab.agent("server-again", sdir, ["serve", "--expose", "down=127.0.0.1:%d" % source.port,
                                     "--trust", cid], url, pin)
    m = client.wait_line(r"tunnel up: .*\(reconnected after ([\d.]+) s\)", timeout=60)
    sys.stderr.write("reconnected %s s after the peer went away\n" % m.group(1))
    with connect_retry(port) as s:
        read_prefix(s, MIB, "the download after the reconnection")


def pair_killed(lab):
    """The pairing agent is killed (SIGKILL): serve's session goes silent.
    A new pair with the same identity gets a new session, which replaces
    the silent one (its stream reset), and carries data."""
    echo = lab.service("echo")
    port = free_port()
    server, client, (sid, cid, url, pin) = setup_pair(lab, {"echo": echo.port}, {port: "echo"})
    client.wait_line(UP_RE, timeout=20)
    s = connect_retry(port)
    s.sendall(b"x")
    check(s.recv(1) == b"x", "echo before the kill")
    client.proc.kill()
    client.wait_exit(10)
    s.close()
    server.wait_line(r"peer %s: no answer for [\d.]+ s" % cid, timeout=20)
    cdir, _ = lab.agent_dir("client")
    port2 = free_port()
    again = lab.agent("client-again", cdir, ["pair", sid, "-L", "%d:echo" % port2], url, pin)
    again.wait_line(UP_RE, timeout=20)
    server.wait_line(r"peer %s: a new session replaces its silent one" % cid, timeout=10)
    check(roundtrip(port2, b"after the kill") == b"after the kill",
          "echo through the new session differs")
    # The old session's service connection, and the new one's clean end.
    endings = echo.wait_endings(2)
    check(sorted(endings) == ["eof", "reset"], "the old session's service connection must be "
          "reset, the new one's end cleanly: %r" % endings)


def give_up(lab):
    """pair --give-up-after: its peer stops and does not come back; pair
    tries again meanwhile, then gives up with one line and exit 1 once the
    time is over (not before)."""
    echo = lab.service("echo")
    port = free_port()
    server, client, (sid, cid, _, _) = setup_pair(lab, {"echo": echo.port}, {port: "echo"},
                                                  pair_extra=["--give-up-after", "3"])
    client.wait_line(UP_RE, timeout=20)
    server.signal(signal.SIGTERM)
    client.wait_line(r"peer %s went away: .*; reconnecting in [\d.]+ s" % sid, timeout=10)
    t0 = time.monotonic()
    client.wait_line(r"error: no tunnel to peer %s for 3 s \(--give-up-after\): giving up"
                     % sid, timeout=15)
    took = time.monotonic() - t0
    check(client.wait_exit(10) == 1, "pair should exit 1 when it gives up")
    sys.stderr.write("gave up %.1f s after the peer went away\n" % took)
    check(took >= 2.5, "pair gave up after %.1f s, before --give-up-after 3" % took)


def signal_killed(lab):
    """The signaling server is killed (SIGKILL) in the middle of a transfer:
    the tunnel does not need it, and the transfer completes intact. (A
    stale OpenSSL error of the signaling connection once ended the DTLS
    session here.)"""
    def kill_signal(server, client):
        signal_server = next(p for p in lab.procs if p.name == "signal")
        signal_server.proc.kill()
        sys.stderr.write("killed p2ptun-signal with SIGKILL mid-transfer\n")

    server, client = transfer(lab, during=kill_signal)
    check(client.proc.poll() is None and server.proc.poll() is None,
          "the agents must keep running without their signaling server")


def signal_errors(lab):
    """Unreachable signaling server and pin mismatch: one clear line, exit 1."""
    sig, url, pin = lab.signal_server()
    cdir, cid = lab.agent_dir("client")
    peer = "a" * 52
    dead = "https://127.0.0.1:%d" % free_port()
    p = lab.agent("unreachable", cdir, ["pair", peer, "-L", "%d:x" % free_port()], dead, pin)
    p.wait_line(r"error: cannot reach the signaling server")
    check(p.wait_exit(10) == 1, "unreachable: exit 1")
    wrong = "sha256//" + "A" * 43 + "="
    p = lab.agent("badpin", cdir, ["pair", peer, "-L", "%d:x" % free_port()], url, wrong)
    p.wait_line(r"error: .*does not match the pin")
    check(p.wait_exit(10) == 1, "pin mismatch: exit 1")


def peer_mismatch(lab):
    """A compromised signaling server passes agent Y off as X: the agent that
    expects X refuses Y at the DTLS handshake, with the message."""
    from evil_signal import EvilSignal
    echo = lab.service("echo")
    adir, aid = lab.agent_dir("a")
    xdir, xid = lab.agent_dir("x")
    ydir, yid = lab.agent_dir("y")
    # A's messages to X go to Y as if from A; Y's messages to A arrive as if from X.
    evil = EvilSignal(lab.dir, lambda to: (yid, aid) if to == xid else (aid, xid))
    lab.services.append(evil)
    y = lab.agent("y", ydir, ["serve", "--expose", "echo=127.0.0.1:%d" % echo.port, "--trust", aid],
                  evil.url, evil.pin)
    y.wait_line("serving as")
    a = lab.agent("a", adir, ["pair", xid, "-L", "%d:echo" % free_port()], evil.url, evil.pin)
    a.wait_line(r"error: peer certificate does not match the peer-id: expected %s, got %s"
                % (xid, yid), timeout=30)
    check(a.wait_exit(10) == 1, "pair should exit 1")
    check("tunnel up" not in a.text(), "no tunnel may come up")
    check(echo.connections == 0, "the service must not be reached")


def other_generation(lab):
    """A message of another path generation is not for the tunnel: a
    server that slips a bye of generation 1 beside the real answer ends
    nothing, and the tunnel comes up and carries data."""
    from evil_signal import EvilSignal
    echo = lab.service("echo")
    adir, aid = lab.agent_dir("a")
    bdir, bid = lab.agent_dir("b")

    def also_bye(msg):
        if msg["type"] != "answer":
            return [msg]
        return [msg, {"v": 1, "type": "bye", "session": msg["session"], "from": msg["from"],
                      "generation": 1, "reason": "shutdown", "text": "not for this path"}]

    evil = EvilSignal(lab.dir, lambda to: (to, aid if to == bid else bid), tamper=also_bye)
    lab.services.append(evil)
    b = lab.agent("b", bdir, ["serve", "--expose", "echo=127.0.0.1:%d" % echo.port,
                              "--trust", aid], evil.url, evil.pin)
    b.wait_line("serving as")
    port = free_port()
    a = lab.agent("a", adir, ["pair", bid, "-L", "%d:echo" % port], evil.url, evil.pin)
    a.wait_line(UP_RE, timeout=30)
    check(roundtrip(port, b"same path") == b"same path", "echo through the tunnel differs")
    check("ended the session" not in a.text(), "a bye of another generation ended the tunnel")


def ice_failed(lab):
    """No candidate pair can work (IPv4 host candidates on one side, IPv6 on
    the other): pair gives up with the candidate types tried."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s6:
            s6.bind(("::1", 0))
    except OSError as e:
        raise TestSkip("no IPv6 loopback here (%s)" % e)
    url, pin, sid, cdir = serve_echo(lab)
    client = lab.agent("client", cdir, ["pair", sid, "-L", "%d:echo" % free_port()], url, pin,
                       local="::1")
    client.wait_line(r"error: ICE failed: no working path to the peer within \d+ s "
                     r"\(local candidates: host; remote candidates: host\)", timeout=30)
    check(client.wait_exit(10) == 1, "pair should exit 1")
    check("tunnel up" not in client.text(), "no tunnel may come up")


def relayed_re(transport):
    return (r"tunnel up: peer [a-z2-7]{52}, path relayed \(relay 127\.0\.0\.1:\d+ -> "
            r"relay 127\.0\.0\.1:\d+, %s\), rtt [\d.]+ ms" % transport)


def relay_transfer(lab, uri, transport, secret_file, size, pin=None):
    """size bytes each way through -L, both agents --relay-only through the
    TURN server at uri, handed out by the signaling server; the agents say
    they reach it over transport."""
    sig_extra = ("--relay", uri, "--turn-secret-file", secret_file)
    if pin:
        sig_extra += ("--relay-pin", pin)
    return transfer(lab, size=size, up_re=relayed_re(transport), sig_extra=sig_extra,
                    serve_extra=("--relay-only",), pair_extra=("--relay-only",))


def relay_p2ptun(lab):
    """The tunnel through p2ptun-relay."""
    secret, secret_file = lab.turn_secret()
    relay, port = lab.relay_server(secret_file)
    relay_transfer(lab, "turn:127.0.0.1:%d" % port, "udp", secret_file, 64 * MIB)


def relay_p2ptun_tcp(lab):
    """The tunnel through p2ptun-relay, TURN over TCP."""
    secret, secret_file = lab.turn_secret()
    relay, port = lab.relay_server(secret_file)
    relay_transfer(lab, "turn:127.0.0.1:%d?transport=tcp" % port, "tcp", secret_file, 64 * MIB)


def relay_p2ptun_tls(lab):
    """The tunnel through p2ptun-relay, TURN over TLS with a pinned
    self-signed certificate. Its TLS listener closes connections that are
    not TLS (test relay-interop), so the relay was reached over real TLS."""
    secret, secret_file = lab.turn_secret()
    cert, key, pin = tls_certificate(lab, "relay")
    relay, _ = lab.relay_server(secret_file, tls=(cert, key))
    check(relay.tls_pin == pin, "p2ptun-relay prints pin %r, openssl says %r"
          % (relay.tls_pin, pin))
    relay_transfer(lab, "turns:127.0.0.1:%d" % relay.tls_port, "tls", secret_file, 64 * MIB,
                   pin=pin)


def relay_credentials_renewed(lab):
    """Relay credentials live --turn-ttl seconds (12 here); a serving agent
    renews its own, so that a tunnel that begins after the first ones expired
    still gets relayed candidates (both agents --relay-only: without renewal
    the serving agent's Allocate is refused and ICE fails)."""
    secret, secret_file = lab.turn_secret()
    relay, port = lab.relay_server(secret_file)
    echo = lab.service("echo")
    sig, url, pin = lab.signal_server("--relay", "turn:127.0.0.1:%d" % port,
                                      "--turn-secret-file", secret_file, "--turn-ttl", "12")
    sdir, sid = lab.agent_dir("server")
    cdir, cid = lab.agent_dir("client")
    server = lab.agent("server", sdir, ["serve", "--expose", "echo=127.0.0.1:%d" % echo.port,
                                        "--trust", cid, "--relay-only"], url, pin)
    server.wait_line("serving as")
    time.sleep(15)
    lport = free_port()
    client = lab.agent("client", cdir, ["pair", sid, "--relay-only", "-L", "%d:echo" % lport],
                       url, pin)
    client.wait_line(relayed_re("udp"), timeout=20)
    data = pattern_bytes(5, 256 * 1024)
    check(roundtrip(lport, data) == data, "echo through the relay differs")


# Relay credentials of MOVE_TTL seconds (the signaling server's least), and
# a stream that runs for two and a half of their lifetimes.
MOVE_TTL = 10
MOVE_SECONDS = 25
MOVE_HEAD_START = 2.5
# Paced: 32 KiB every 20 ms each way (1.6 MB/s), a load that a sanitizer
# build carries too.
MOVE_CHUNK = 32 * 1024
MOVE_PACE = 0.02
# The longest the echoed data may stop: a move is make-before-break, while
# a path that died would be noticed after 2 s and replaced after that.
MOVE_MAX_GAP = 1.5


def paced_echo(port, seconds):
    """Sends pattern bytes through the forwarded port to the echo service at
    a steady pace for seconds, reading the echo meanwhile. Returns (sent,
    received, longest gap between two reads in s)."""
    payload = pattern_bytes(11, int(seconds / MOVE_PACE + 1) * MOVE_CHUNK)
    got = bytearray()
    gap = [0.0]

    with connect_retry(port) as s:
        def receive():
            last = time.monotonic()
            while True:
                data = s.recv(1 << 16)
                now = time.monotonic()
                if not data:
                    return
                gap[0] = max(gap[0], now - last)
                last = now
                got.extend(data)

        reader = threading.Thread(target=receive, daemon=True)
        reader.start()
        t0 = time.monotonic()
        off = 0
        while time.monotonic() - t0 < seconds:
            s.sendall(payload[off:off + MOVE_CHUNK])
            off += MOVE_CHUNK
            time.sleep(max(0.0, t0 + off / MOVE_CHUNK * MOVE_PACE - time.monotonic()))
        s.shutdown(socket.SHUT_WR)
        reader.join(60)
        check(not reader.is_alive(), "the echo did not end")
    return payload[:off], bytes(got), gap[0]


def relay_credentials_move(lab, coturn, first):
    """Relay credentials that live MOVE_TTL seconds, both agents --relay-only,
    and a stream that carries data both ways for three of their lifetimes:
    before the credentials of a relayed path expire, the tunnel moves to a
    new ICE generation gathered with fresh ones (make before break), so the
    bytes arrive intact, the data never stops for long, and no path is lost.
    Through p2ptun-relay, which removes an allocation when its credentials
    expire, or through coturn, which gets each old allocation back."""
    os.environ["G_MESSAGES_DEBUG"] = "p2ptun"
    secret, secret_file = lab.turn_secret()
    if coturn:
        port, _, coturn_log = start_coturn(lab, secret)
    else:
        relay, port = lab.relay_server(secret_file)
    echo = lab.service("echo")
    sig, url, pin = lab.signal_server("--relay", "turn:127.0.0.1:%d" % port,
                                      "--turn-secret-file", secret_file,
                                      "--turn-ttl", str(MOVE_TTL))
    sdir, sid = lab.agent_dir("server")
    cdir, cid = lab.agent_dir("client")
    lport = free_port()
    # The client may start first: it waits for a peer the server knows.
    lab.enroll(sig.state, sid)

    def start_server():
        server = lab.agent("server", sdir, ["serve", "--expose", "echo=127.0.0.1:%d" % echo.port,
                                            "--trust", cid, "--relay-only"], url, pin)
        server.wait_line("serving as")
        return server

    def start_client():
        client = lab.agent("client", cdir, ["pair", sid, "--relay-only",
                                            "-L", "%d:echo" % lport], url, pin)
        if first == "client":
            client.wait_line("peer %s is not connected to the signaling server; waiting" % sid)
        return client

    # The credentials of the agent that starts first expire first, and it
    # begins the first move: the serving agent (the controlled side) asks
    # for it with a restart, the pairing agent (controlling) makes it at
    # once. Later moves come from either side.
    if first == "server":
        server = start_server()
        time.sleep(MOVE_HEAD_START)
        client = start_client()
    else:
        client = start_client()
        time.sleep(MOVE_HEAD_START)
        server = start_server()
    client.wait_line(relayed_re("udp"), timeout=20)
    sent, got, gap = paced_echo(lport, MOVE_SECONDS)
    sys.stderr.write("%d bytes each way in %d s, longest gap %.2f s\n"
                     % (len(sent), MOVE_SECONDS, gap))
    check(len(got) == len(sent) and hashlib.sha256(got).digest() == hashlib.sha256(sent).digest(),
          "the echo differs: %d of %d bytes" % (len(got), len(sent)))
    moved = {}
    for agent in (client, server):
        moves = moved[agent.name] = len(re.findall(r"ICE generation \d+ replaces \d+",
                                                   agent.text()))
        own = len(re.findall(r"^p2ptun-agent: peer \S+: relay credentials expire soon, moving",
                             agent.text(), re.M))
        sys.stderr.write("%s: %d moves, %d for its own credentials\n" % (agent.name, moves, own))
        # A path lives MOVE_TTL - 5 s at most (TUNNEL_RELAY_MARGIN_MIN_S).
        check(moves >= MOVE_SECONDS // MOVE_TTL,
              "%s moved %d times in %d s" % (agent.name, moves, MOVE_SECONDS))
        for bad in ("path lost", "still no path", "no answer for", "went away"):
            check(bad not in agent.text(), "%s: %r" % (agent.name, bad))
    check("relay credentials expire soon, moving to ICE generation 1"
          in (server if first == "server" else client).text(),
          "the %s agent did not begin the first move" % first)
    check(gap <= MOVE_MAX_GAP, "the data stopped for %.2f s" % gap)
    if coturn:
        # Each move gives both old allocations back (a Refresh with lifetime
        # 0), while their credentials are valid; the last one may be on its way.
        released = sum("lifetime=0" in line for line in list(coturn_log))
        check(released >= 2 * (moved["client"] - 1),
              "coturn saw %d allocations given back after %d moves" % (released, moved["client"]))


def tls_certificate(lab, name):
    """A self-signed P-256 certificate for 127.0.0.1; returns (cert, key, pin)."""
    cert, key = lab.path(name + ".crt"), lab.path(name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=" + name,
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    spki = subprocess.run("openssl x509 -in '%s' -pubkey -noout | openssl pkey -pubin "
                          "-outform DER" % cert, shell=True, check=True,
                          stdout=subprocess.PIPE).stdout
    pin = "sha256//" + base64.b64encode(hashlib.sha256(spki).digest()).decode()
    return cert, key, pin


def start_coturn(lab, secret, tls=None):
    """coturn's turnserver on loopback with the TURN REST secret: UDP and TCP
    on one port, TLS on another when tls is (cert, key). Returns (port, tls_port)."""
    turnserver = "/usr/bin/turnserver"
    if not os.access(turnserver, os.X_OK):
        raise TestSkip("coturn's %s is not installed (apt-get install coturn)" % turnserver)
    port = free_port()
    tls_port = free_port() if tls else None
    low = free_port()
    argv = [turnserver, "-n", "--verbose", "--listening-ip=127.0.0.1", "--listening-port=%d" % port,
            "--relay-ip=127.0.0.1", "--use-auth-secret", "--static-auth-secret=" + secret,
            "--realm=p2ptun.test", "--no-dtls", "--no-cli",
            "--no-tcp-relay", "--allow-loopback-peers",
            "--min-port=%d" % low, "--max-port=%d" % min(low + 20, 65535),
            "--log-file=stdout", "--simple-log",
            "--pidfile=" + lab.path("turnserver.pid"), "--db=" + lab.path("turndb")]
    if tls:
        argv += ["--tls-listening-port=%d" % tls_port, "--cert=" + tls[0], "--pkey=" + tls[1]]
    else:
        argv += ["--no-tls"]
    proc = lab.start("coturn", argv, capture_stdout=True)
    log = []

    def drain():
        for raw in proc.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            log.append(line)
            sys.stderr.write("[coturn] %s\n" % line)

    threading.Thread(target=drain, daemon=True).start()
    deadline = time.monotonic() + 20
    while not stun_answers(port):
        check(proc.proc.poll() is None, "turnserver exited: %s" % proc.text())
        check(time.monotonic() < deadline, "turnserver does not answer STUN on %d" % port)
        time.sleep(0.2)
    return port, tls_port, log


COTURN_SIZE = 64 * MIB


def relay_coturn(lab):
    """The tunnel through coturn's turnserver over UDP, with the same TURN REST secret."""
    secret, secret_file = lab.turn_secret()
    port, _, log = start_coturn(lab, secret)
    server, client = relay_transfer(lab, "turn:127.0.0.1:%d" % port, "udp", secret_file,
                                    COTURN_SIZE)
    # Agents that stop give their allocations back (a Refresh with lifetime 0)
    # rather than leave them to expire.
    client.stop()
    server.stop()
    check(client.proc.returncode == 0 and server.proc.returncode == 0,
          "agents exited with %s and %s" % (client.proc.returncode, server.proc.returncode))
    deadline = time.monotonic() + 10
    while sum("lifetime=0" in line for line in log) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    check(sum("lifetime=0" in line for line in log) == 2,
          "coturn saw %d of 2 allocations given back" % sum("lifetime=0" in l for l in log))


def relay_coturn_tcp(lab):
    """The tunnel through coturn's turnserver, TURN over TCP."""
    secret, secret_file = lab.turn_secret()
    port, _, _ = start_coturn(lab, secret)
    relay_transfer(lab, "turn:127.0.0.1:%d?transport=tcp" % port, "tcp", secret_file,
                   COTURN_SIZE)


def relay_coturn_tls(lab):
    """The tunnel through coturn's turnserver, TURN over TLS with a pinned
    self-signed certificate (the agent's own TLS; libnice's is plain TCP)."""
    secret, secret_file = lab.turn_secret()
    cert, key, pin = tls_certificate(lab, "coturn")
    _, tls_port, _ = start_coturn(lab, secret, tls=(cert, key))
    relay_transfer(lab, "turns:127.0.0.1:%d" % tls_port, "tls", secret_file, COTURN_SIZE,
                   pin=pin)


def relay_tls_refused(lab, pinned):
    """A TLS relay whose certificate matches neither the pin handed out nor
    (without a pin) the system's CAs is not used: the agent says why, and
    --relay-only then finds no path."""
    secret, secret_file = lab.turn_secret()
    cert, key, _ = tls_certificate(lab, "coturn")
    _, tls_port, _ = start_coturn(lab, secret, tls=(cert, key))
    sig_extra = ("--relay", "turns:127.0.0.1:%d" % tls_port, "--turn-secret-file", secret_file)
    if pinned:
        sig_extra += ("--relay-pin", tls_certificate(lab, "other")[2])
        why = "the relay's certificate does not match its pin; not using it"
    else:
        why = "certificate rejected: self.signed certificate"
    server, client, _ = setup_pair(lab, {"echo": lab.service("echo").port},
                                   {free_port(): "echo"}, sig_extra=sig_extra,
                                   serve_extra=("--relay-only",), pair_extra=("--relay-only",))
    client.wait_line(r"relay turns:127\.0\.0\.1:%d: %s" % (tls_port, why), timeout=20)
    client.wait_line(r"error: ICE failed: no working path to the peer", timeout=30)
    check(client.wait_exit(10) == 1, "pair should exit 1")
    check("tunnel up" not in client.text(), "no tunnel may come up")


def relay_only_without_relay(lab):
    """--relay-only with no relay handed out: one clear line, exit 1."""
    sig, url, pin = lab.signal_server()
    sdir, sid = lab.agent_dir("server")
    cdir, cid = lab.agent_dir("client")
    client = lab.agent("client", cdir, ["pair", sid, "--relay-only", "-L",
                                        "%d:echo" % free_port()], url, pin)
    client.wait_line(r"error: --relay-only, but the signaling server hands out no usable relay",
                     timeout=20)
    check(client.wait_exit(10) == 1, "pair should exit 1")


CASES = {
    "relay-p2ptun": relay_p2ptun,
    "relay-p2ptun-tcp": relay_p2ptun_tcp,
    "relay-p2ptun-tls": relay_p2ptun_tls,
    "relay-credentials-renewed": relay_credentials_renewed,
    "relay-credentials-move": lambda lab: relay_credentials_move(lab, False, "server"),
    "relay-credentials-move-coturn": lambda lab: relay_credentials_move(lab, True, "client"),
    "relay-coturn": relay_coturn,
    "relay-coturn-tcp": relay_coturn_tcp,
    "relay-coturn-tls": relay_coturn_tls,
    "relay-tls-wrong-pin": lambda lab: relay_tls_refused(lab, pinned=True),
    "relay-tls-unverified": lambda lab: relay_tls_refused(lab, pinned=False),
    "relay-only-without-relay": relay_only_without_relay,
    "ice-failed": ice_failed,
    "peer-mismatch": peer_mismatch,
    "other-generation": other_generation,
    "transfer": transfer,
    # Loopback's route carries 65536-byte packets: records of 16 KiB, GSO.
    "transfer-gso": lambda lab: transfer_datapath(lab, "gso", None, "gso", 16448),
    "transfer-sendmmsg": lambda lab: transfer_datapath(lab, "sendmmsg", 1472, "sendmmsg", 1472),
    # The fallback: every record through libnice, as before batching.
    "transfer-unbatched": lambda lab: transfer_datapath(lab, "off", 1472, "sent by libnice",
                                                        1472),
    "streams50": streams50,
    "stdio": stdio,
    "untrusted": untrusted,
    "not-exposed": not_exposed,
    "offline": offline,
    "mutual": mutual,
    "sigterm": sigterm,
    "peer-sigterm": peer_sigterm,
    "give-up": give_up,
    "pair-killed": pair_killed,
    "signal-killed": signal_killed,
    "signal-errors": signal_errors,
}

if __name__ == "__main__":
    sys.exit(run_cases(CASES, sys.argv))
