#!/usr/bin/env python3
"""The benchmark's TURN load generator (relay/bench/turnload) against a real
p2ptun-relay, at a low rate (scripts/bench --only relay-load drives it hard).

Usage: test_relay_load.py PATH-TO-p2ptun-relay PATH-TO-turnload

Starts p2ptun-relay on 127.0.0.1 port 0 with a shared-secret file and
`--allow-peer 127.0.0.1/32`, then turnload with 3 allocations: every one is
allocated and bound, two runs at 2000 and 500 packets/s arrive whole at the
generator's peer socket (each allocation relays, nothing is lost, doubled or
foreign), and `quit` releases them (exit 0).  Also: a wrong secret ends with
the server's 401 named; a server that is not there ends with the refusal
named, not a hang; a malformed command is refused.  The rates are far below
what even the sanitizer build relays, and the socket buffers hold seconds of
them, so a slow machine delays the counts but does not change them.  Prints
TAP; every wait is bounded; the relay is killed and the temporary directory
removed also on failure.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import tap

STARTUP_TIMEOUT = 20.0
RUN_TIMEOUT = 120.0
REALM = "p2ptun.test"


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def start_relay(relay, tmp, secret_file):
    err = open(os.path.join(tmp, "relay.stderr"), "wb")
    p = subprocess.Popen([relay, "--listen", "127.0.0.1:0", "--secret-file", secret_file,
                          "--realm", REALM, "--allow-peer", "127.0.0.1/32"],
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


def turnload(turnload_bin, port, secret_file, n, commands):
    """Runs turnload with commands on stdin; (status, stdout, stderr)."""
    r = subprocess.run([turnload_bin, "--server", "127.0.0.1:%d" % port, "--secret-file",
                        secret_file, "--allocations", str(n), "--name", "test"],
                       input=commands, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    return r.returncode, r.stdout, r.stderr


def results(out):
    return [{k: int(v) for k, v in re.findall(r"(\w+)=(-?\d+)", l)}
            for l in out.splitlines() if l.startswith("result ")]


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    relay = os.path.abspath(sys.argv[1])
    gen = os.path.abspath(sys.argv[2])
    tmp = tempfile.mkdtemp(prefix="p2ptun-relay-load-test-")
    relay_p = None
    outcomes = []
    try:
        secret_file = os.path.join(tmp, "secret")
        with open(secret_file, "w") as f:
            f.write(os.urandom(16).hex() + "\n")
        wrong_file = os.path.join(tmp, "wrong")
        with open(wrong_file, "w") as f:
            f.write("not-the-secret\n")
        relay_p, port = start_relay(relay, tmp, secret_file)

        def case(name, fn):
            try:
                fn()
                outcomes.append((True, name, ""))
            except (Failure, subprocess.TimeoutExpired, OSError) as e:
                outcomes.append((False, name, str(e)))

        def relays_everything():
            status, out, err = turnload(gen, port, secret_file, 3,
                                        "run 2000 1000\nrun 500 400\nquit\n")
            check(status == 0, "turnload exited %d: %s" % (status, err.strip()))
            check(re.search(r"^ready allocations=3 ", out, re.M), "no ready line: %r" % out)
            rs = results(out)
            check(len(rs) == 2, "expected 2 result lines: %r" % out)
            for r, run in zip(rs, (1, 2)):
                check(r["run"] == run and r["sent"] > 0, "nothing sent: %r" % r)
                # Each allocation relays, nothing is lost, doubled or foreign.
                check(r["received"] == r["sent"] and r["lost"] == 0,
                      "%d sent, %d received" % (r["sent"], r["received"]))
                check(r["min_alloc_received"] >= 1, "an allocation relayed nothing: %r" % r)
                check(r["dup"] == 0 and r["bogus"] == 0, "doubled or foreign: %r" % r)
            check("not released" not in err, "allocations not released: %s" % err.strip())

        def wrong_secret():
            status, out, err = turnload(gen, port, wrong_file, 2, "quit\n")
            check(status == 1, "exit status %d, stderr %r" % (status, err))
            check("Allocate: 401 Unauthorized" in err, "stderr %r" % err)
            check("ready" not in out, "stdout %r" % out)

        def no_server():
            status, out, err = turnload(gen, free_udp_port(), secret_file, 1, "quit\n")
            check(status == 1, "exit status %d, stderr %r" % (status, err))
            check("refused" in err or "no answer" in err, "stderr %r" % err)

        def bad_command():
            status, out, err = turnload(gen, port, secret_file, 1, "run fast\n")
            check(status == 1, "exit status %d" % status)
            check('expected "run RATE MILLISECONDS"' in err, "stderr %r" % err)

        case("3 allocations relay 2000 and 500 packets/s whole, then are released",
             relays_everything)
        case("a wrong secret ends with the 401 named", wrong_secret)
        case("no server: the refusal is named", no_server)
        case("a malformed command is refused", bad_command)
        case("the relay is still running", lambda: check(relay_p.poll() is None,
                                                         "relay exited %s" % relay_p.returncode))
    except Failure as e:
        outcomes.append((False, "setup", str(e)))
    finally:
        if relay_p is not None and relay_p.poll() is None:
            relay_p.send_signal(signal.SIGTERM)
            try:
                relay_p.wait(10)
            except subprocess.TimeoutExpired:
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
