#!/usr/bin/env python3
"""The lab's link element (linkem) works: a public host h2 is plugged into
the lab's internet through an emulated link, and from inside the namespaces

  1. with 20 ms one-way delay, up to 10 ms of jitter and a 10 Mbit/s rate,
     the round trip of UDP probes to the internet namespace is at least
     40 ms (and not absurd) and varies (the jitter works),
     2 MiB over TCP arrive intact (checksum offload is handled), and the
     goodput stays below the rate (the rate limit works);
  2. with 100 % loss no probe comes back, and linkem counted the losses.

usage: test_linkem.py LINKEM
       test_linkem.py echo ADDR PORT | probe ADDR PORT COUNT |
                      source ADDR PORT SIZE | fetch ADDR PORT SIZE
                      (the end points, run inside the namespaces)"""

import hashlib
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time

import natlab
from natlab import SERVERS_IP, TestFailure, TestSkip, check

PORT = 9000
SIZE = 2 * 1024 * 1024
JITTER_MS = 10
DELAY_MS = 20
RATE = 10_000_000


def pattern(n):
    block = hashlib.sha256(b"linkem").digest() * 2048
    return (block * (n // len(block) + 1))[:n]


# ---- end points (inside the namespaces) ----

def echo(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.stderr.write("echo ready\n")
    sys.stderr.flush()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        r, _, _ = select.select([s], [], [], 1.0)
        if r:
            data, peer = s.recvfrom(2048)
            s.sendto(data, peer)


def probe(addr, port, count):
    """count probes, one at a time, each waiting 0.5 s at most; prints the
    round trips in ms of those that came back, as JSON."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtts = []
    for i in range(count):
        t0 = time.monotonic()
        s.sendto(b"probe %d" % i, (addr, port))
        deadline = t0 + 0.5
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([s], [], [], left)
            if r and s.recv(2048) == b"probe %d" % i:
                rtts.append((time.monotonic() - t0) * 1000)
                break
    print(json.dumps({"rtts": rtts}))


def source(addr, port, size):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(1)
    sys.stderr.write("source ready\n")
    sys.stderr.flush()
    ls.settimeout(60)
    c, _ = ls.accept()
    c.sendall(pattern(size))
    c.close()


def fetch(addr, port, size):
    h = hashlib.sha256()
    n, first = 0, None
    with socket.create_connection((addr, port), timeout=60) as s:
        while True:
            data = s.recv(1 << 16)
            if not data:
                break
            if first is None:
                first = time.monotonic()
            h.update(data)
            n += len(data)
    print(json.dumps({"bytes": n, "sha256": h.hexdigest(),
                      "seconds": time.monotonic() - first if first else 0}))


# ---- the test ----

def run_json(net, ns, argv, timeout):
    out = subprocess.run(net.exec_argv(ns, [sys.executable, os.path.abspath(__file__)] + argv),
                         capture_output=True, timeout=timeout)
    check(out.returncode == 0, "%s failed: %s" % (argv[0], out.stderr.decode(errors="replace")))
    return json.loads(out.stdout.decode().strip().splitlines()[-1])


def counters(proc):
    """linkem's counters per direction, from the lines it prints on exit."""
    found = {}
    for line in proc.text().splitlines():
        m = re.match(r"linkem: (a->b|b->a): (.*)", line)
        if m:
            words = m.group(2).split()
            found[m.group(1)] = {k: int(v) for k, v in zip(words[0::2], words[1::2])
                                 if v.isdigit()}
    return found


def stop_linkem(net):
    proc = [p for p in net.procs if p.name.startswith("linkem-")][0]
    proc.signal(signal.SIGTERM)
    code = proc.wait_exit(10)
    check(code == 0, "linkem exited %d on SIGTERM" % code)
    c = counters(proc)
    check("a->b" in c and "b->a" in c, "linkem printed no counters: %s" % proc.text())
    return c


def me(*argv):
    return [sys.executable, os.path.abspath(__file__)] + [str(a) for a in argv]


def delay_and_rate(linkem):
    with natlab.Net() as net:
        net.internet()
        h2 = net.site(2, "none", link=natlab.Link(linkem, delay_ms=DELAY_MS, rate=RATE,
                                                       jitter_ms=JITTER_MS))[0][0]
        net.start("echo", net.inet, me("echo", SERVERS_IP, PORT)).wait_line("echo ready")
        rtts = run_json(net, h2, ["probe", SERVERS_IP, str(PORT), "10"], 30)["rtts"]
        sys.stderr.write("round trips (ms): %s\n" % " ".join("%.1f" % r for r in rtts))
        check(len(rtts) >= 8, "only %d of 10 probes came back" % len(rtts))
        check(min(rtts) >= 2 * DELAY_MS,
              "round trip %.1f ms through a %d ms link" % (min(rtts), DELAY_MS))
        check(min(rtts) < 2 * DELAY_MS + 40, "round trip %.1f ms: far too slow" % min(rtts))
        # Up to 2 x 10 ms of jitter on each probe: round trips that lie within
        # 2 ms of each other would mean there is none (the first one waits
        # for ARP too, so it does not count).
        spread = max(rtts[1:]) - min(rtts[1:])
        check(spread >= 2, "round trips within %.1f ms of each other through a link with "
              "%d ms of jitter" % (spread, JITTER_MS))

        net.start("source", net.inet, me("source", SERVERS_IP, PORT, SIZE)).wait_line(
            "source ready")
        t = run_json(net, h2, ["fetch", SERVERS_IP, str(PORT), str(SIZE)], 60)
        mbit = t["bytes"] * 8 / t["seconds"] / 1e6 if t["seconds"] else 0
        sys.stderr.write("TCP: %d bytes in %.2f s, %.2f Mbit/s\n" % (t["bytes"], t["seconds"], mbit))
        check(t["bytes"] == SIZE and t["sha256"] == hashlib.sha256(pattern(SIZE)).hexdigest(),
              "TCP transfer differs: %d of %d bytes" % (t["bytes"], SIZE))
        # The link's rate counts Ethernet framing; TCP/IP headers take ~5 % more.
        check(mbit <= RATE / 1e6, "%.2f Mbit/s through a %d Mbit/s link" % (mbit, RATE / 1e6))
        check(mbit >= RATE / 1e6 / 4, "only %.2f Mbit/s through a %d Mbit/s link"
              % (mbit, RATE / 1e6))
        c = stop_linkem(net)
        sys.stderr.write("linkem counters: %s\n" % c)
        check(c["b->a"]["passed"] > SIZE // 1514 and c["a->b"]["lost"] == 0,
              "linkem counters: %s" % c)


def total_loss(linkem):
    with natlab.Net() as net:
        net.internet()
        h2 = net.site(2, "none", link=natlab.Link(linkem, delay_ms=DELAY_MS, loss=100))[0][0]
        net.start("echo", net.inet, me("echo", SERVERS_IP, PORT)).wait_line("echo ready")
        rtts = run_json(net, h2, ["probe", SERVERS_IP, str(PORT), "4"], 30)["rtts"]
        check(not rtts, "%d probes came back through a link with 100 %% loss" % len(rtts))
        c = stop_linkem(net)
        sys.stderr.write("linkem counters: %s\n" % c)
        # h2's ARP requests (and nothing else) reached linkem and were lost.
        check(c["a->b"]["lost"] >= 1 and c["a->b"]["passed"] == 0 and c["b->a"]["passed"] == 0,
              "linkem counters with 100 %% loss: %s" % c)


def main(argv):
    cmds = {"echo": (echo, 2), "probe": (probe, 3), "source": (source, 3), "fetch": (fetch, 3)}
    if len(argv) >= 2 and argv[1] in cmds and len(argv) == 2 + cmds[argv[1]][1]:
        fn = cmds[argv[1]][0]
        fn(argv[2], *[int(a) for a in argv[3:]])
        return 0
    if len(argv) != 2 or argv[1] in cmds:
        sys.stderr.write(__doc__)
        return 2

    def interrupted(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    try:
        natlab.preflight()
        if shutil.which("ethtool") is None:
            raise TestSkip("the link element needs ethtool (package ethtool)")
        natlab.sweep_stale()
        delay_and_rate(argv[1])
        total_loss(argv[1])
    except TestSkip as e:
        print("SKIP: %s" % e)
        return 77
    except TestFailure as e:
        sys.stderr.write("FAIL: %s\n" % e)
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
