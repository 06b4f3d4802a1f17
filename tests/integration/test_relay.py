#!/usr/bin/env python3
"""Interop test of p2ptun-relay with coturn's own clients on loopback.

Usage: test_relay.py PATH-TO-p2ptun-relay

Starts p2ptun-relay on 127.0.0.1 (port 0, reads its `listen` line) with a
shared-secret file and `--allow-peer 127.0.0.1/32`, starts coturn's
`turnutils_peer` as the UDP echo peer, and runs `turnutils_uclient` with TURN
REST credentials from the same secret: with channels (and RTCP allocations,
which use EVEN-PORT and RESERVATION-TOKEN), and with Send/Data indications
only. Every message must come back. Also: Binding is answered for anyone
with the right XOR-MAPPED-ADDRESS; garbage, truncated and oversized
datagrams do not stop the relay; a wrong secret gets 401, a relay
without --allow-peer refuses the loopback peer with 403, and the relay exits
cleanly on SIGTERM. Prints TAP; every wait is bounded; processes are killed
and the temporary directory removed also on failure.
"""

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


def start_relay(procs, relay, tmp, name, extra):
    secret_file = os.path.join(tmp, "secret")
    err = open(os.path.join(tmp, name + ".stderr"), "wb")
    p = procs.start([relay, "--listen", "127.0.0.1:0", "--secret-file", secret_file,
                     "--realm", REALM] + extra,
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
        if m and b"ready\n" in buf:
            port = int(m.group(1))
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


def assert_all_back(out, what):
    lost = re.findall(r"Total lost packets (\d+)", out)
    sent = re.findall(r"tot_send_msgs=(\d+), tot_recv_msgs=(\d+)", out)
    check(lost and sent, "%s: no totals in uclient output:\n%s" % (what, out[-2000:]))
    s, r = (int(x) for x in sent[-1])
    check(s == 60 and r == s and int(lost[-1]) == 0,
          "%s: sent %d, received %d, lost %s:\n%s" % (what, s, r, lost[-1], out[-2000:]))


def main():
    relay = os.path.abspath(sys.argv[1])
    if not ensure_coturn():
        print("1..0 # SKIP coturn's turnutils are not installed")
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
        relay_p, port = start_relay(procs, relay, tmp, "relay", ["--allow-peer", "127.0.0.1/32"])
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

        def sighup_then_term():
            relay_p.send_signal(signal.SIGHUP)
            time.sleep(0.3)
            assert_all_back(uclient(port, peer_port, SECRET, ["-s", "-c"]), "after SIGHUP")
            relay_p.send_signal(signal.SIGTERM)
            rc = relay_p.wait(timeout=10)
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
