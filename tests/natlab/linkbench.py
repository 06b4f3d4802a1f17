#!/usr/bin/env python3
"""The lab benchmark of issue 5: goodput of the p2ptun tunnel side by side
with kernel TCP on the same emulated link (not a meson test; run as root).

Two public hosts on the lab's internet (natlab.py): h1 (203.0.113.11) and
h2 (203.0.113.12), h2 plugged in through linkem (RATE, one-way delay RTT/2
and random loss each direction, drop-tail queue of one BDP). For each loss
rate, a bulk download h1 -> h2 of SECONDS from its first byte through

  tunnel   p2ptun-agent serve --expose on h1, pair -L on h2
  ssh -L   sshd on h1 (throwaway keys), ssh -L on h2; kernel TCP with the
           namespace default congestion control (BBR on these machines)
  cubic    iperf3 -C cubic from h1 to a server on h2 (CUBIC per socket)

and prints a table in Mbit/s with the ratios tunnel/ssh and tunnel/cubic.

usage: linkbench.py BUILD_DIR [--seconds S] [--loss 0,1,3] [--rate 100M] [--rtt 50]
                              [--only tunnel,ssh,cubic]
Exits 77 when this machine cannot host the lab (not root, no namespaces,
a program missing), 1 when a measurement failed (the table shows "-"),
2 on bad arguments or an unbuilt BUILD_DIR.

(internal: linkbench.py source ADDR PORT | sink PORT SECONDS)"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import natlab
import test_nat
from natlab import TestFailure, TestSkip, check

H1, H2 = "203.0.113.11", "203.0.113.12"
SRC_PORT, FWD_PORT, SSH_FWD_PORT, SSH_PORT, IPERF_PORT = 7001, 7002, 7003, 2222, 5201
MAX_SECONDS = 120


# ---- end points, run inside the namespaces ----

def source(addr, port):
    """Sends an endless stream of incompressible bytes to each client until
    it goes away; ends after MAX_SECONDS * 10 at most."""
    block = os.urandom(1 << 20)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(8)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    sys.stderr.write("source ready\n")
    sys.stderr.flush()

    def serve(c):
        try:
            while True:
                c.sendall(block)
        except OSError:
            pass
        c.close()

    ls.settimeout(MAX_SECONDS * 10)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


def sink(port, seconds):
    """Connects to 127.0.0.1:PORT (retrying while a forward is not yet
    there), reads for SECONDS from the first byte; prints JSON."""
    deadline = time.monotonic() + 60
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    n, first, end = 0, None, None
    s.settimeout(30)
    while True:
        data = s.recv(1 << 16)
        if not data:
            break
        now = time.monotonic()
        if first is None:
            first, end = now, now + seconds
        n += len(data)
        if now >= end:
            break
    s.close()
    print(json.dumps({"bytes": n, "seconds": (time.monotonic() - first) if first else 0}))


# ---- the benchmark ----

def me(*argv):
    return [sys.executable, os.path.abspath(__file__)] + [str(a) for a in argv]


def run_sink(net, ns, port, seconds):
    out = subprocess.run(net.exec_argv(ns, me("sink", port, seconds)), capture_output=True,
                         timeout=seconds + 90)
    check(out.returncode == 0, "sink: %s" % out.stderr.decode(errors="replace").strip()[-400:])
    r = json.loads(out.stdout.decode().strip().splitlines()[-1])
    check(r["bytes"] > 0 and r["seconds"] > 0, "nothing arrived")
    return r["bytes"] * 8 / r["seconds"] / 1e6


def bench_tunnel(net, runner, h1, h2, tmp, seconds):
    env, (dir_a, id_a), (dir_b, id_b) = runner.start_services(net, tmp, h1, h2)
    server = net.start("serve", h1, [runner.agent_bin, "serve", "--config", dir_a,
                                     "--expose", "down=127.0.0.1:%d" % SRC_PORT,
                                     "--trust", id_b], env=env)
    server.wait_line("serving as " + id_a, timeout=30)
    client = net.start("pair", h2, [runner.agent_bin, "pair", id_a, "--config", dir_b,
                                    "-L", "%d:down" % FWD_PORT], env=env)
    m = client.wait_line(r"tunnel up: .*|^p2ptun-agent: error: .*", timeout=60)
    check(m.group(0).startswith("tunnel up: "), "pair failed: %s" % m.group(0))
    client.wait_line("forwarding 127.0.0.1:%d -> down" % FWD_PORT, timeout=30)
    mbit = run_sink(net, h2, FWD_PORT, seconds)
    for p in (client, server):
        p.stop()
    return mbit


def bench_ssh(net, h1, h2, tmp, seconds):
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    d = os.path.join(tmp, "ssh")
    os.makedirs(d, mode=0o700)
    for name in ("hostkey", "userkey"):
        out = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "linkbench",
                              "-f", os.path.join(d, name)], capture_output=True, timeout=30)
        check(out.returncode == 0, "ssh-keygen: %s" % out.stderr.decode(errors="replace"))
    shutil.copy(os.path.join(d, "userkey.pub"), os.path.join(d, "authorized_keys"))
    conf = os.path.join(d, "sshd_config")
    with open(conf, "w") as f:
        f.write("Port %d\nListenAddress %s\nHostKey %s\nAuthorizedKeysFile %s\n"
                "PidFile none\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n"
                "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                "LogLevel ERROR\n" % (SSH_PORT, H1, os.path.join(d, "hostkey"),
                                      os.path.join(d, "authorized_keys")))
    out = subprocess.run([sshd, "-t", "-f", conf], capture_output=True, timeout=30)
    check(out.returncode == 0, "sshd -t: %s" % out.stderr.decode(errors="replace").strip())
    sshd_p = net.start("sshd", h1, [sshd, "-D", "-e", "-f", conf])
    user = os.environ.get("USER") or "root"
    ssh_p = net.start("ssh", h2, ["ssh", "-F", "/dev/null", "-N", "-p", str(SSH_PORT),
                                  "-i", os.path.join(d, "userkey"), "-o", "IdentitiesOnly=yes",
                                  "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                                  "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                                  "-o", "ExitOnForwardFailure=yes",
                                  "-L", "127.0.0.1:%d:127.0.0.1:%d" % (SSH_FWD_PORT, SRC_PORT),
                                  "%s@%s" % (user, H1)])
    try:
        return run_sink(net, h2, SSH_FWD_PORT, seconds)
    except TestFailure as e:
        raise TestFailure("%s (ssh: %s; sshd: %s)" % (e, ssh_p.text()[-300:],
                                                     sshd_p.text()[-300:]))
    finally:
        ssh_p.stop()
        sshd_p.stop()


def bench_cubic(net, h1, h2, seconds):
    srv = net.start("iperf3-s", h2, ["iperf3", "-s", "-1", "-B", H2, "-p", str(IPERF_PORT)])
    try:
        out = None
        for _ in range(50):  # the server needs a moment to listen
            out = subprocess.run(net.exec_argv(h1, ["iperf3", "-c", H2, "-p", str(IPERF_PORT),
                                                    "-C", "cubic", "-t", str(seconds), "-J"]),
                                 capture_output=True, timeout=seconds + 60)
            if out.returncode == 0 or b"onnection refused" not in out.stdout + out.stderr:
                break
            time.sleep(0.2)
        check(out.returncode == 0, "iperf3: %s" % (out.stdout + out.stderr).decode(
            errors="replace")[-400:])
        r = json.loads(out.stdout.decode())
        cc = r["end"].get("sender_tcp_congestion", "cubic")
        check(cc == "cubic", "iperf3 used %s, not cubic" % cc)
        return r["end"]["sum_received"]["bits_per_second"] / 1e6
    finally:
        srv.stop()


def one_loss(args, loss, linkem, tmp):
    results = {}
    runner = test_nat.Runner(args.build, os.path.join(tmp, "results"),
                             test_nat.Case("none-none"))
    for what in args.only:
        with natlab.Net() as net:
            net.internet()
            h1 = net.site(1, "none")[0][0]
            link = natlab.Link(linkem, delay_ms=args.rtt / 2, loss=loss, rate=args.rate)
            h2 = net.site(2, "none", link=link)[0][0]
            net.start("source", h1, me("source", "0.0.0.0", SRC_PORT)).wait_line("source ready")
            t0 = time.monotonic()
            sub = os.path.join(tmp, "%s-%g" % (what, loss))
            os.makedirs(sub)
            try:
                if what == "tunnel":
                    mbit = bench_tunnel(net, runner, h1, h2, sub, args.seconds)
                elif what == "ssh":
                    mbit = bench_ssh(net, h1, h2, sub, args.seconds)
                else:
                    mbit = bench_cubic(net, h1, h2, args.seconds)
            except (TestFailure, subprocess.TimeoutExpired) as e:
                sys.stderr.write("linkbench: %s at %g %% loss failed: %s\n" % (what, loss, e))
                mbit = None
            sys.stderr.write("linkbench: %s at %g %% loss: %s Mbit/s (%.0f s)\n"
                             % (what, loss, "%.1f" % mbit if mbit is not None else "-",
                                time.monotonic() - t0))
            results[what] = mbit
    return results


def fmt(v, spec="%.1f"):
    return spec % v if v is not None else "-"


def ratio(a, b):
    return "%.2fx" % (a / b) if a is not None and b else "-"


def main(argv):
    if len(argv) == 4 and argv[1] == "source":
        source(argv[2], int(argv[3]))
        return 0
    if len(argv) == 4 and argv[1] == "sink":
        sink(int(argv[2]), float(argv[3]))
        return 0
    ap = argparse.ArgumentParser(description="tunnel vs kernel TCP on an emulated link",
                                 usage=__doc__.split("usage: ")[1].split("\n")[0])
    ap.add_argument("build")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--loss", default="0,1,3")
    ap.add_argument("--rate", default="100M")
    ap.add_argument("--rtt", type=float, default=50)
    ap.add_argument("--only", default="tunnel,ssh,cubic")
    args = ap.parse_args(argv[1:])
    args.build = os.path.abspath(args.build)
    args.only = [w for w in args.only.split(",") if w]
    if not args.only or set(args.only) - {"tunnel", "ssh", "cubic"}:
        ap.error("--only takes tunnel, ssh, cubic")
    if not 1 <= args.seconds <= MAX_SECONDS:
        ap.error("--seconds must be 1..%d" % MAX_SECONDS)
    try:
        losses = [float(x) for x in args.loss.split(",")]
        mult = {"k": 1e3, "M": 1e6, "G": 1e9}.get(args.rate[-1:], 1)
        args.rate = float(args.rate.rstrip("kMG")) * mult
    except ValueError:
        ap.error("--loss takes percentages like 0,1,3; --rate bit/s like 100M")
    if any(not 0 <= x <= 100 for x in losses) or not 1e3 <= args.rate <= 1e10:
        ap.error("loss must be 0..100 %, rate 1k..10G")
    if not 0 <= args.rtt <= 2000:
        ap.error("--rtt must be 0..2000 ms")
    linkem = os.path.join(args.build, "tests", "natlab", "linkem")
    agent = os.path.join(args.build, "agent", "p2ptun-agent")
    for path in (linkem, agent):
        if not os.access(path, os.X_OK):
            ap.error("%s is not built (meson setup and ninja -C %s)" % (path, args.build))

    def interrupted(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    tmp = None
    rows = []
    try:
        natlab.preflight()
        need = {"ethtool": "ethtool", "sshd": "openssh-server", "ssh": "openssh-client",
                "ssh-keygen": "openssh-client", "iperf3": "iperf3"}
        for tool, pkg in need.items():
            if shutil.which(tool) is None and not (tool == "sshd"
                                                   and os.access("/usr/sbin/sshd", os.X_OK)):
                raise TestSkip("linkbench needs %s (package %s)" % (tool, pkg))
        natlab.sweep_stale()
        tmp = natlab.make_tmp()
        for loss in losses:
            rows.append((loss, one_loss(args, loss, linkem, tmp)))
    except TestSkip as e:
        print("SKIP: %s" % e)
        return 77
    except TestFailure as e:
        sys.stderr.write("linkbench: %s\n" % e)
        return 1
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    print("link: %g Mbit/s, RTT %g ms, random loss each direction, queue 1 BDP; %g s "
          "from the first byte, h1 -> h2" % (args.rate / 1e6, args.rtt, args.seconds))
    print("%-6s %10s %12s %14s %12s %13s" % ("loss", "tunnel", "ssh -L (BBR)",
                                            "iperf3 cubic", "tunnel/ssh", "tunnel/cubic"))
    for loss, r in rows:
        t, s, c = r.get("tunnel"), r.get("ssh"), r.get("cubic")
        print("%-6s %10s %12s %14s %12s %13s" % ("%g %%" % loss, fmt(t), fmt(s), fmt(c),
                                                ratio(t, s), ratio(t, c)))
    print("(Mbit/s of goodput)")
    return 1 if any(v is None for _, r in rows for v in r.values()) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
