#!/usr/bin/env python3
"""p2ptun benchmark, everything on loopback (127.0.0.1), Python 3 standard library only.

In one run it measures and prints:

 1. single-stream throughput of one SIZE transfer (default 256 MiB), in each
    direction (download: service -> client, upload: client -> service), through
      (a) p2ptun: a `p2ptun-agent pair -L` forwarded port to a `serve --expose`d service,
      (b) OpenSSH: `ssh -L` with `-c aes128-gcm@openssh.com` to a private sshd,
      (c) raw TCP on loopback, straight to the service;
    and the ratios p2ptun/ssh and p2ptun/raw.  Every byte is checked against the
    pattern the other side sent.
 2. time to first byte: from starting `p2ptun-agent pair` (Popen) to the first byte
    received through its forwarded port, from a service that sends one byte on
    connect.  RUNS runs (default 10), a fresh pair process each run; the serving
    agent and the signaling server stay up.  Median, min and max; also the time to
    the agent's "tunnel up" line.
 3. each agent's peak memory: VmHWM from /proc/PID/status, read just before the
    agent is stopped, and the largest VmRSS sampled every 10 ms, for fresh agents
    that carry a MEM-SIZE transfer each way (default 64 MiB), and for comparison
    for the agents that carried the SIZE transfers each way.
 4. relayed throughput (--only relay): p2ptun-relay against coturn, UDP and TCP.
 5. UDP forwarding (--only udp): -U to an echo service exposed /udp; round trip
    of 172-byte datagrams (an RTP packet) in lockstep, through the tunnel and
    straight to the echo; and the share of paced 1200-byte datagrams that come
    back at 10, 100 and 300 Mbit/s offered.
 6. the relay on its own (--only relay-load, scripts/bench_relay_load.py):
    p2ptun-relay and coturn (default threads and --relay-threads 1) under the
    build's TURN load generator relay/bench/turnload: packets/s at <= 0.1 %
    loss and relay CPU-s per million packets, for 1, 100 and 1000 allocations.

Targets printed next to the figures (not asserted): median time to first byte
<= 100 ms, peak agent memory <= 32 MiB.  Exit status is 0 unless the benchmark
itself could not run; failed transfers are reported in the table and under
"problems" (with how much arrived).
"""

import argparse
import json
import os
import pwd
import random
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

import bench_idle
import bench_profile
import bench_relay_load

MiB = 1 << 20
PARTS = ("raw", "ssh", "memory", "tunnel", "ttfb", "relay", "udp", "idle", "relay-load")
CHUNK = MiB
SEED = 0x9E3779B9
TTFB_TARGET_MS = 100.0
MEM_TARGET_MIB = 32.0
RULE = 84  # width of the report
REALM = "p2ptun.test"
TURNSERVER = "/usr/bin/turnserver"


def pattern():
    """The 1 MiB block both ends send and check (same seed on both sides)."""
    return random.Random(SEED).randbytes(CHUNK)


def now():
    return time.perf_counter()


# --------------------------------------------------------------------------
# The service (runs as a separate process: `bench.py _service`)
#
# data port: the client sends 9 bytes, mode + uint64 N (network order):
#   'D'  the service sends N bytes of the pattern, then shuts down its side
#   'U'  the service reads N bytes and checks them, then replies with
#        uint64 received + 1 byte (1 = all bytes matched the pattern)
#   'P'  the service replies b'p' (readiness probe)
# one port: the service sends one byte on connect.
# In every case it then reads until EOF (so closing never resets) and closes.
# --------------------------------------------------------------------------

def svc_log(msg):
    sys.stderr.write("service: %s\n" % msg)
    sys.stderr.flush()


def recv_exact(conn, n):
    buf = b""
    while len(buf) < n:
        b = conn.recv(n - len(buf))
        if not b:
            return buf
        buf += b
    return buf


def drain(conn, timeout):
    try:
        conn.settimeout(timeout)
        while conn.recv(65536):
            pass
    except OSError:
        pass


def svc_data(conn, pat):
    mode = "?"
    done = 0
    n = 0
    try:
        conn.settimeout(60)
        hdr = recv_exact(conn, 9)
        if len(hdr) < 9:
            if hdr:
                svc_log("short header (%d bytes)" % len(hdr))
            return
        mode = hdr[:1].decode("ascii", "replace")
        n = struct.unpack("!Q", hdr[1:])[0]
        if mode == "P":
            conn.sendall(b"p")
        elif mode == "D":
            mv = memoryview(pat)
            while done < n:
                k = min(n - done, CHUNK)
                conn.sendall(mv[:k])
                done += k
            conn.shutdown(socket.SHUT_WR)
            svc_log("D: sent %d of %d bytes" % (done, n))
        elif mode == "U":
            buf = bytearray(CHUNK)
            mv = memoryview(buf)
            pos = 0
            ok = True
            while done < n:
                k = conn.recv_into(mv[pos:], min(CHUNK - pos, n - done))
                if not k:
                    break
                pos += k
                done += k
                if pos == CHUNK:
                    ok = ok and buf == pat
                    pos = 0
            if pos:
                ok = ok and bytes(mv[:pos]) == pat[:pos]
            svc_log("U: received %d of %d bytes, %s" % (done, n, "intact" if ok else "CORRUPT"))
            conn.sendall(struct.pack("!QB", done, 1 if ok else 0))
            conn.shutdown(socket.SHUT_WR)
        else:
            svc_log("bad mode %r" % mode)
            return
        drain(conn, 30)
    except OSError as e:
        svc_log("%s: error after %d of %d bytes: %s" % (mode, done, n, e))
    finally:
        conn.close()


def svc_one(conn):
    try:
        conn.settimeout(15)
        conn.sendall(b"\x01")
        drain(conn, 15)
    except OSError:
        pass
    finally:
        conn.close()


def accept_loop(lsock, handler):
    while True:
        conn, _ = lsock.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=handler, args=(conn,), daemon=True).start()


def run_service():
    pat = pattern()
    socks = []
    for _ in range(2):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        socks.append(s)
    threading.Thread(target=accept_loop, args=(socks[0], lambda c: svc_data(c, pat)),
                     daemon=True).start()
    threading.Thread(target=accept_loop, args=(socks[1], svc_one), daemon=True).start()
    print("ports %d %d" % (socks[0].getsockname()[1], socks[1].getsockname()[1]), flush=True)
    # Exit when the parent goes away (stdin closes) or on SIGTERM.
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    try:
        sys.stdin.read()
    except KeyboardInterrupt:
        pass
    os._exit(0)


# --------------------------------------------------------------------------
# Client side
# --------------------------------------------------------------------------

class TransferError(Exception):
    pass


def connect(port, timeout):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def probe(port, timeout):
    """True once a 'P' request through port is answered."""
    deadline = now() + timeout
    last = "no attempt"
    while now() < deadline:
        try:
            with connect(port, 2) as s:
                s.sendall(b"P" + struct.pack("!Q", 0))
                if s.recv(1) == b"p":
                    return True, ""
                last = "connection closed without an answer"
        except OSError as e:
            last = str(e)
        time.sleep(0.05)
    return False, last


def result(direction, n, t, done, ok=True, error=None, note=None):
    r = {"direction": direction, "bytes": n, "transferred": done, "ok": ok}
    if t:
        r["seconds"] = round(t, 4)
        r["MiB_s"] = round(done / MiB / t, 1)
        r["Mbit_s"] = round(done * 8 / 1e6 / t, 0)
    if error:
        r["error"] = error
    if note:
        r["note"] = note
    return r


def download(port, n, idle, cap):
    """Receive n bytes from the service; time from connect to the last byte."""
    pat = pattern()
    buf = bytearray(CHUNK)
    mv = memoryview(buf)
    done = pos = 0
    intact = True
    t0 = now()
    deadline = t0 + cap
    try:
        s = connect(port, idle)
    except OSError as e:
        return result("download", n, None, 0, False, "connect failed: %s" % e)
    try:
        s.sendall(b"D" + struct.pack("!Q", n))
        while done < n:
            if now() > deadline:
                raise TransferError("gave up after %d s" % cap)
            try:
                k = s.recv_into(mv[pos:], min(CHUNK - pos, n - done))
            except socket.timeout:
                raise TransferError("stalled: nothing for %d s" % idle)
            if not k:
                raise TransferError("connection closed early")
            pos += k
            done += k
            if pos == CHUNK:
                intact = intact and buf == pat
                pos = 0
        t = now() - t0
        if pos:
            intact = intact and bytes(mv[:pos]) == pat[:pos]
        note = None
        # The service shut its side down after the last byte: EOF must follow.
        try:
            s.settimeout(5)
            extra = s.recv(65536)
            if extra:
                note = "more bytes than asked for"
                intact = False
        except socket.timeout:
            note = "no EOF within 5 s after the last byte"
        except OSError as e:
            note = "error waiting for EOF: %s" % e
        if not intact:
            return result("download", n, t, done, False, "data CORRUPT", note)
        return result("download", n, t, done, True, None, note)
    except (TransferError, OSError) as e:
        t = now() - t0
        return result("download", n, None, done, False,
                      "%s after %d of %d bytes (%.1f MiB) arrived in %.1f s (%.2f MiB/s)"
                      % (e, done, n, done / MiB, t, done / MiB / t))
    finally:
        s.close()


def upload(port, n, idle, cap):
    """Send n bytes to the service; time from connect to its reply (after the last byte)."""
    pat = pattern()
    mv = memoryview(pat)
    sent = 0
    t0 = now()
    deadline = t0 + cap
    try:
        s = connect(port, idle)
    except OSError as e:
        return result("upload", n, None, 0, False, "connect failed: %s" % e)
    try:
        s.sendall(b"U" + struct.pack("!Q", n))
        while sent < n:
            if now() > deadline:
                raise TransferError("gave up after %d s" % cap)
            k = min(n - sent, CHUNK)
            try:
                s.sendall(mv[:k])
            except socket.timeout:
                raise TransferError("send stalled for %d s" % idle)
            sent += k
        try:
            reply = recv_exact(s, 9)
        except socket.timeout:
            raise TransferError("all sent, no reply from the service within %d s" % idle)
        t = now() - t0
        if len(reply) < 9:
            raise TransferError("all sent, connection closed without a reply")
        got, ok = struct.unpack("!QB", reply)
        note = None
        try:
            s.shutdown(socket.SHUT_WR)
            s.settimeout(5)
            if s.recv(1):
                note = "unexpected bytes after the reply"
        except socket.timeout:
            note = "no EOF within 5 s after the reply"
        except OSError as e:
            note = "error waiting for EOF: %s" % e
        if got != n or not ok:
            return result("upload", n, t, got, False,
                          "service received %d of %d bytes, %s"
                          % (got, n, "intact" if ok else "CORRUPT"), note)
        return result("upload", n, t, got, True, None, note)
    except (TransferError, OSError) as e:
        t = now() - t0
        return result("upload", n, None, sent, False,
                      "%s: %d of %d bytes (%.1f MiB) sent in %.1f s (%.2f MiB/s)"
                      % (e, sent, n, sent / MiB, t, sent / MiB / t))
    finally:
        s.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


UDP_RTT_SIZE = 172       # an RTP packet of 20 ms of G.711 audio
UDP_RTT_COUNT = 1000
RTT_ADDED_TARGET_US = 60
UDP_PACED_SIZE = 1200
UDP_PACED_S = 3
UDP_RATES_MBIT = (10, 100, 300)


UDP_COUNT_QUERY = b"p2ptun-bench: how many?"


def run_udp_echo():
    """A UDP echo service on loopback, in its own process (bench.py _udpecho):
    sharing the bench's interpreter, it lost a third of the datagrams at
    300 Mbit/s by itself (its thread waited for the others' turns while its
    receive buffer overflowed). It answers UDP_COUNT_QUERY, from anyone, with
    how many datagrams it has echoed."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    s.bind(("127.0.0.1", 0))
    print("port %d" % s.getsockname()[1], flush=True)
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    # Exit when the parent goes away (stdin closes).
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    buf = bytearray(65535)
    view = memoryview(buf)
    echoed = 0
    while True:
        n, addr = s.recvfrom_into(buf)
        if n == len(UDP_COUNT_QUERY) and buf[:n] == UDP_COUNT_QUERY:
            s.sendto(b"%d" % echoed, addr)
            continue
        s.sendto(view[:n], addr)
        echoed += 1


def udp_echo_count(port):
    """How many datagrams the echo service at port has echoed."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1.0)
        for _ in range(5):
            s.sendto(UDP_COUNT_QUERY, ("127.0.0.1", port))
            try:
                return int(s.recv(64))
            except socket.timeout:
                continue
    raise RuntimeError("the UDP echo service does not answer")


def udp_rtts(port, count):
    """count datagrams of UDP_RTT_SIZE bytes to port, one at a time (a lost
    one is sent again after 1 s); median and 99th percentile in us."""
    rtts = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1.0)
        for i in range(count):
            payload = struct.pack(">I", i) + b"r" * (UDP_RTT_SIZE - 4)
            for _ in range(5):
                t0 = now()
                s.sendto(payload, ("127.0.0.1", port))
                try:
                    while s.recv(65535) != payload:
                        pass
                    rtts.append((now() - t0) * 1e6)
                    break
                except socket.timeout:
                    continue
            else:
                raise RuntimeError("no echo through 127.0.0.1:%d after 5 tries" % port)
    rtts.sort()
    return {"median": statistics.median(rtts), "p99": rtts[int(len(rtts) * 0.99) - 1]}


def udp_paced(port, mbit, seconds, echo_port):
    """UDP_PACED_SIZE-byte datagrams at mbit Mbit/s for seconds; how many came
    back (within 1 s after the last was sent), and how many reached the echo
    service at echo_port (the rest were lost on the way there)."""
    interval = UDP_PACED_SIZE * 8 / (mbit * 1e6)
    got = [0]
    stop = b"p2ptun-bench: stop"
    before = udp_echo_count(echo_port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.bind(("127.0.0.1", 0))

        def receive():
            # Blocking, without a timeout: one system call per datagram (a
            # timeout adds a poll to each); the stop datagram ends it.
            while s.recv(65535) != stop:
                got[0] += 1
        t = threading.Thread(target=receive, daemon=True)
        t.start()
        payload = b"p" * UDP_PACED_SIZE
        sent = 0
        t0 = now()
        while now() - t0 < seconds:
            due = int((now() - t0) / interval) + 1
            while sent < due:
                s.sendto(payload, ("127.0.0.1", port))
                sent += 1
            time.sleep(min(0.001, interval))
        time.sleep(1.0)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as w:
            w.sendto(stop, s.getsockname())
        t.join(5)
        if t.is_alive():
            raise RuntimeError("the paced receiver did not stop")
    reached = udp_echo_count(echo_port) - before
    return {"offered_mbit": mbit, "sent": sent, "echoed": got[0],
            "echoed_percent": 100.0 * got[0] / sent if sent else 0.0,
            "reached_echo": reached,
            "reached_echo_percent": 100.0 * reached / sent if sent else 0.0,
            "echoed_mbit": got[0] * UDP_PACED_SIZE * 8 / seconds / 1e6}


def stun_answers(port, timeout=0.5):
    """True when a STUN Binding request to 127.0.0.1:port (UDP) gets a success answer."""
    txid = os.urandom(12)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(b"\x00\x01\x00\x00\x21\x12\xa4\x42" + txid, ("127.0.0.1", port))
            data, _ = s.recvfrom(2048)
        except OSError:
            return False
    return len(data) >= 20 and data[0:2] == b"\x01\x01" and data[8:20] == txid


def proc_cpu_s(pid):
    """User plus system CPU seconds a process has used, or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status(pid):
    """VmRSS and VmHWM in KiB, or None if the process is gone."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line.split(":")[0]] = int(line.split()[1])
    except OSError:
        return None
    return out


class Sampler:
    """Samples VmRSS of some PIDs every 10 ms; max per labelled interval."""

    def __init__(self, pids):
        self.pids = pids
        self.maxima = {}  # label -> {pid: KiB}
        self.label = None
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def set_label(self, label):
        with self.lock:
            self.label = label
        self.sample()

    def sample(self):
        with self.lock:
            if self.label is None:
                return
            m = self.maxima.setdefault(self.label, {})
            for pid in self.pids:
                st = proc_status(pid)
                if st and "VmRSS" in st:
                    m[pid] = max(m.get(pid, 0), st["VmRSS"])

    def run(self):
        while not self.stop_ev.wait(0.01):
            self.sample()

    def stop(self):
        self.sample()
        self.stop_ev.set()
        self.thread.join(2)


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------

class Proc:
    """A child process whose stdout/stderr lines are timestamped and logged."""

    def __init__(self, bench, name, argv, stdin=subprocess.DEVNULL):
        self.bench = bench
        self.name = name
        self.lines = []  # (time, stream, text)
        self.cond = threading.Condition()
        self.log = open(os.path.join(bench.work, name + ".log"), "a")
        self.t_start = now()
        self.p = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, bufsize=1)
        self.pid = self.p.pid
        bench.procs.append(self)
        self.readers = [threading.Thread(target=self.reader, args=(st, tag), daemon=True)
                        for st, tag in ((self.p.stdout, "out"), (self.p.stderr, "err"))]
        for r in self.readers:
            r.start()

    def reader(self, stream, tag):
        for line in stream:
            t = now()
            line = line.rstrip("\n")
            with self.cond:
                self.lines.append((t, tag, line))
                if not self.log.closed:
                    self.log.write("%.3f %s %s\n" % (t - self.t_start, tag, line))
                    self.log.flush()
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_for(self, regex, timeout, stream=None):
        """(time, match) of the first line matching regex; raises on timeout or exit."""
        rx = re.compile(regex)
        deadline = now() + timeout
        i = 0
        with self.cond:
            while True:
                while i < len(self.lines):
                    t, tag, line = self.lines[i]
                    i += 1
                    if (stream is None or tag == stream):
                        m = rx.search(line)
                        if m:
                            return t, m
                left = deadline - now()
                if left <= 0:
                    raise RuntimeError("%s: no line matching %r within %.0f s; output:\n%s"
                                       % (self.name, regex, timeout, self.tail()))
                if self.p.poll() is not None and not any(r.is_alive() for r in self.readers):
                    raise RuntimeError("%s exited (status %s) before printing %r; output:\n%s"
                                       % (self.name, self.p.returncode, regex, self.tail()))
                self.cond.wait(min(left, 0.05))

    def tail(self, n=15):
        with self.cond:
            return "\n".join("    %s" % l for _, _, l in self.lines[-n:]) or "    (nothing)"

    def stop(self, grace=5.0):
        """SIGTERM, then SIGKILL after grace seconds. Returns a problem string or None."""
        problem = None
        if self.p.poll() is None:
            try:
                self.p.send_signal(signal.SIGTERM)
                self.p.wait(grace)
            except subprocess.TimeoutExpired:
                problem = "%s (pid %d) did not exit within %.0f s of SIGTERM; killed" % (
                    self.name, self.pid, grace)
                self.p.kill()
                self.p.wait(5)
            except ProcessLookupError:
                pass
        for r in self.readers:
            r.join(2)
        if self in self.bench.procs:
            self.bench.procs.remove(self)
        self.log.close()
        return problem


class Bench:
    def __init__(self, args):
        self.args = args
        self.root = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
        b = args.build
        self.build = b if os.path.isabs(b) else os.path.join(self.root, b)
        self.agent = os.path.join(self.build, "agent", "p2ptun-agent")
        self.signal_bin = os.path.join(self.build, "signaling", "p2ptun-signal")
        self.relay_bin = os.path.join(self.build, "relay", "p2ptun-relay")
        self.turnload_bin = os.path.join(self.build, "relay", "bench", "turnload")
        self.udphop_bin = os.path.join(self.build, "agent", "bench", "udphop")
        self.libsonly_bin = os.path.join(self.build, "agent", "bench", "libsonly")
        self.turnserver = TURNSERVER
        self.work = tempfile.mkdtemp(prefix="p2ptun-bench.")
        self.procs = []
        self.problems = []
        self.res = {
            "loopback": "127.0.0.1",
            "size_bytes": args.size * MiB,
            "mem_size_bytes": args.mem_size * MiB,
            "relay_size_bytes": args.relay_size * MiB,
            "throughput": {},
            "ttfb": None,
            "memory": {},
            "targets": {"ttfb_median_ms": TTFB_TARGET_MS, "peak_memory_MiB": MEM_TARGET_MIB},
            "problems": self.problems,
        }

    # For bench_relay_load: its processes are cleaned up with the others.
    def spawn(self, name, argv, stdin=subprocess.DEVNULL):
        return Proc(self, name, argv, stdin)

    cpu_s = staticmethod(proc_cpu_s)
    clock = staticmethod(now)

    def say(self, msg):
        print(msg, flush=True)

    def problem(self, msg):
        self.problems.append(msg)
        print("  PROBLEM: " + msg.replace("\n", "\n  "), flush=True)

    def cleanup(self):
        for p in list(reversed(self.procs)):
            try:
                p.stop(3)
            except Exception:
                try:
                    p.p.kill()
                except Exception:
                    pass
        if self.args.keep:
            print("kept work directory %s" % self.work)
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    # ---------------------------------------------------------------- build
    def ensure_build(self):
        if not os.path.exists(os.path.join(self.build, "build.ninja")):
            self.say("== building p2ptun in %s (meson setup, release)" % self.build)
            r = subprocess.run(["meson", "setup", self.build, "--buildtype=release"],
                               cwd=self.root, capture_output=True, text=True, timeout=300)
            if r.returncode:
                sys.exit("bench: meson setup failed:\n%s%s" % (r.stdout[-3000:], r.stderr[-3000:]))
        if not self.args.no_build:
            r = subprocess.run(["nice", "ninja", "-C", self.build, "-j1"],
                               cwd=self.root, capture_output=True, text=True, timeout=1200)
            if r.returncode:
                msg = "ninja -C %s failed:\n%s" % (self.build, (r.stdout + r.stderr)[-3000:])
                if os.path.exists(self.agent) and os.path.exists(self.signal_bin):
                    self.problem(msg + "\n(using the binaries already built)")
                else:
                    sys.exit("bench: " + msg)
        for b in (self.agent, self.signal_bin):
            if not os.access(b, os.X_OK):
                sys.exit("bench: %s is missing" % b)

    # ---------------------------------------------------------------- service
    def start_service(self):
        self.service = Proc(self, "service", [sys.executable, os.path.abspath(__file__), "_service"],
                            stdin=subprocess.PIPE)
        _, m = self.service.wait_for(r"^ports (\d+) (\d+)$", 10, "out")
        self.data_port, self.one_port = int(m.group(1)), int(m.group(2))

    def transfer_pair(self, label, port, n):
        """Download then upload n bytes through port; returns (down, up) results."""
        a = self.args
        cap = max(60, a.timeout)
        mark = len(self.service.lines)
        down = download(port, n, a.idle_timeout, cap)
        self.report_transfer(label, down, mark)
        mark = len(self.service.lines)
        up = upload(port, n, a.idle_timeout, cap)
        self.report_transfer(label, up, mark)
        return down, up

    def report_transfer(self, label, r, mark=0):
        if r.get("seconds"):
            line = "  %-22s %-8s %8.1f MiB/s %8.0f Mbit/s  (%.2f s)" % (
                label, r["direction"], r["MiB_s"], r["Mbit_s"], r["seconds"])
        else:
            line = "  %-22s %-8s failed" % (label, r["direction"])
        print(line, flush=True)
        if not r["ok"] or r.get("note"):
            what = r.get("error") or ""
            if r.get("note"):
                what = (what + "; " if what else "") + r["note"]
            # What the service saw of this transfer: it logs when its side ends
            # (the client has closed its socket by now), so give that a moment.
            start = mark
            deadline = now() + 2
            while now() < deadline and not [1 for _, t, l in self.service.lines[start:]
                                            if t == "err"]:
                time.sleep(0.05)
            svc = "\n".join(l for _, t, l in self.service.lines[start:] if t == "err")
            self.problem("%s %s of %d MiB: %s%s" % (
                label, r["direction"], r["bytes"] // MiB, what,
                ("\n  service log:\n  " + svc.replace("\n", "\n  ")) if svc else ""))

    # ---------------------------------------------------------------- raw TCP
    def bench_raw(self):
        self.say("== raw TCP on loopback, %d MiB each way" % self.args.size)
        d, u = self.transfer_pair("raw TCP", self.data_port, self.args.size * MiB)
        self.res["throughput"]["raw"] = {"download": d, "upload": u}

    # ---------------------------------------------------------------- ssh
    def ensure_ssh(self):
        pk = ["openssh-server", "openssh-client"]
        missing = []
        for p in pk:
            r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", p],
                               capture_output=True, text=True)
            if "ok installed" not in r.stdout:
                missing.append(p)
        if missing:
            if os.getuid() != 0:
                return "%s not installed (and not root to apt-get it)" % " ".join(missing)
            self.say("  installing %s" % " ".join(missing))
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            for cmd in (["apt-get", "update", "-q"],
                        ["apt-get", "install", "-y", "-q", "--no-install-recommends"] + missing):
                r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
                if r.returncode:
                    return "%s failed: %s" % (" ".join(cmd[:2]), r.stderr.strip()[-300:])
        for b in ("/usr/sbin/sshd", "ssh", "ssh-keygen"):
            if not shutil.which(b):
                return "%s not found" % b
        return None

    def bench_ssh(self):
        a = self.args
        self.say("== ssh -L (OpenSSH, aes128-gcm@openssh.com), %d MiB each way" % a.size)
        why = self.ensure_ssh()
        if why:
            return self.ssh_skip(why)
        d = os.path.join(self.work, "ssh")
        os.makedirs(d)
        try:
            os.makedirs("/run/sshd", exist_ok=True)
        except OSError as e:
            return self.ssh_skip("cannot create /run/sshd: %s" % e)
        for k in ("host", "client"):
            r = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "p2ptun-bench",
                                "-f", os.path.join(d, k)], capture_output=True, text=True)
            if r.returncode:
                return self.ssh_skip("ssh-keygen failed: %s" % r.stderr.strip())
        shutil.copy(os.path.join(d, "client.pub"), os.path.join(d, "authorized_keys"))
        user = pwd.getpwuid(os.getuid()).pw_name
        port = free_port()
        cfg = os.path.join(d, "sshd_config")
        with open(cfg, "w") as f:
            f.write("\n".join([
                "ListenAddress 127.0.0.1",
                "HostKey %s/host" % d,
                "PidFile %s/sshd.pid" % d,
                "AuthorizedKeysFile %s/authorized_keys" % d,
                "PermitRootLogin yes",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "AllowTcpForwarding yes",
                "AllowUsers %s" % user,
                "LogLevel ERROR",
                ""]))
        sshd_bin = "/usr/sbin/sshd"
        r = subprocess.run([sshd_bin, "-t", "-f", cfg, "-p", str(port)],
                           capture_output=True, text=True)
        if r.returncode:
            return self.ssh_skip("sshd -t: %s" % r.stderr.strip())
        sshd = Proc(self, "sshd", [sshd_bin, "-D", "-e", "-f", cfg, "-p", str(port)])
        deadline = now() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                if sshd.p.poll() is not None or now() > deadline:
                    sshd.stop()
                    return self.ssh_skip("sshd did not start:\n%s" % sshd.tail())
                time.sleep(0.05)
        lport = free_port()
        ssh = Proc(self, "ssh", [
            "ssh", "-N", "-F", "/dev/null", "-L", "%d:127.0.0.1:%d" % (lport, self.data_port),
            "-p", str(port), "-i", os.path.join(d, "client"),
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes", "-o", "LogLevel=ERROR",
            "-c", "aes128-gcm@openssh.com", "%s@127.0.0.1" % user])
        ok, why = probe(lport, 10)
        if not ok:
            tail = ssh.tail() + "\n  sshd:\n" + sshd.tail()
            ssh.stop()
            sshd.stop()
            return self.ssh_skip("ssh -L not working (%s):\n%s" % (why, tail))
        try:
            dn, up = self.transfer_pair("ssh -L aes128-gcm", lport, a.size * MiB)
            self.res["throughput"]["ssh"] = {"download": dn, "upload": up}
        finally:
            ssh.stop()
            sshd.stop()

    def ssh_skip(self, why):
        self.say("  ssh skipped: %s" % why)
        self.res["throughput"]["ssh"] = {"skipped": why}

    # ---------------------------------------------------------------- p2ptun
    def start_signal(self, name="signal", extra=()):
        """A signaling server on loopback, with the two agents (setup_agents)
        enrolled; returns (proc, url, pin)."""
        state = os.path.join(self.work, name)
        sig = Proc(self, name, [self.signal_bin, "--listen", "127.0.0.1:0",
                                "--state-dir", state] + list(extra))
        sig.wait_for(r"^ready$", 10, "out")
        out = {l.split(" ", 1)[0]: l.split(" ", 1)[1] for _, t, l in sig.lines
               if t == "out" and " " in l}
        for peer_id in (self.sid, self.cid):
            r = subprocess.run([self.signal_bin, "enroll", "--state-dir", state, "--peer", peer_id],
                               capture_output=True, text=True, timeout=10)
            if r.returncode:
                raise RuntimeError("p2ptun-signal enroll failed: %s" % r.stderr.strip())
        return sig, out["url"], out["pin"]

    def setup_agents(self):
        """The two agents' config dirs and peer-ids, shared by every phase."""
        self.sdir = os.path.join(self.work, "serve-agent")
        self.cdir = os.path.join(self.work, "pair-agent")
        self.sid = self.agent_id(self.sdir)
        self.cid = self.agent_id(self.cdir)

    def agent_id(self, d):
        r = subprocess.run([self.agent, "id", "--config", d], capture_output=True, text=True,
                           timeout=10)
        if r.returncode or not r.stdout.strip():
            raise RuntimeError("p2ptun-agent id failed: %s" % r.stderr.strip())
        return r.stdout.strip().splitlines()[-1]

    def start_serve(self, name, sig=None, extra=()):
        url, pin = sig or (self.url, self.pin)
        p = Proc(self, name, [
            self.agent, "serve", "--config", self.sdir, "--signal", url,
            "--signal-pin", pin, "--local-address", "127.0.0.1",
            "--expose", "data=127.0.0.1:%d" % self.data_port,
            "--expose", "one=127.0.0.1:%d" % self.one_port,
            "--trust", self.cid] + list(extra))
        p.wait_for(r"serving as", 10)
        return p

    def pair_argv(self, lport, service, sig=None, extra=()):
        url, pin = sig or (self.url, self.pin)
        return [self.agent, "pair", self.sid, "--config", self.cdir, "--signal", url,
                "--signal-pin", pin, "--local-address", "127.0.0.1",
                "-L", "%d:%s" % (lport, service)] + list(extra)

    def stop_agent(self, p):
        st = proc_status(p.pid)
        prob = p.stop()
        if prob:
            self.problem(prob)
        return st

    def agent_tunnel(self, key, label, n, sig=None, extra=(), up_re=r"tunnel up: .*",
                     want="up"):
        """Fresh serve + pair agents (both with the extra arguments) through the
        signaling server sig (url, pin; default the main one); n bytes down then
        up through pair's -L.  The pair agent's "tunnel up" line must match up_re
        (want says in words what it means).
        Returns (down, up, mem, path): the transfer results, both agents' memory
        and the "tunnel up" line.  Raises RuntimeError when no tunnel comes up."""
        serve = pair = sampler = None
        mem = {"transfer_bytes_each_way": n}
        try:
            serve = self.start_serve("serve-%s" % key, sig, extra)
            lport = free_port()
            pair = Proc(self, "pair-%s" % key, self.pair_argv(lport, "data", sig, extra))
            _, m = pair.wait_for(r"tunnel up: .*", 20)
            path = m.group(0)
            self.say("  %s" % path)
            if not re.search(up_re, path):
                raise RuntimeError("the tunnel is not %s: %s (no match for %r)"
                                   % (want, path[path.find("path "):], up_re))
            pair.wait_for(r"forwarding ", 10)
            ok, why = probe(lport, 10)
            if not ok:
                raise RuntimeError("forwarded port %d does not answer (%s)" % (lport, why))
            sampler = Sampler([serve.pid, pair.pid])
            sampler.set_label("idle")
            time.sleep(0.05)
            sampler.set_label("download")
            mark = len(self.service.lines)
            down = download(lport, n, self.args.idle_timeout, max(60, self.args.timeout))
            sampler.set_label("download-end")
            self.report_transfer(label, down, mark)
            sampler.set_label("upload")
            mark = len(self.service.lines)
            up = upload(lport, n, self.args.idle_timeout, max(60, self.args.timeout))
            sampler.set_label("upload-end")
            self.report_transfer(label, up, mark)
            sampler.set_label("after")
            time.sleep(0.05)
            sampler.stop()
            # Read both agents' status before stopping either: stopping one ends the
            # tunnel, and then the other exits on its own.
            status = {}
            cpu = {}
            for role, p in (("serve", serve), ("pair", pair)):
                status[role] = proc_status(p.pid) if p.p.poll() is None else None
                cpu[role] = proc_cpu_s(p.pid) if p.p.poll() is None else None
                if status[role] is None:
                    self.problem("%s agent exited (status %s) during the transfers:\n%s"
                                 % (role, p.p.returncode, p.tail()))
            if self.args.profile and key == "large" and None not in status.values():
                self.profile_tunnel(lport, serve.pid, pair.pid, n)
            for p in (pair, serve):
                prob = p.stop()
                if prob:
                    self.problem(prob)
            for role, p in (("serve", serve), ("pair", pair)):
                st = status[role]
                mx = lambda lab: round(sampler.maxima.get(lab, {}).get(p.pid, 0) / 1024, 1)
                mem[role] = {
                    "VmHWM_MiB": round(st["VmHWM"] / 1024, 1) if st and "VmHWM" in st else None,
                    "VmRSS_end_MiB": round(st["VmRSS"] / 1024, 1) if st and "VmRSS" in st else None,
                    "VmRSS_idle_MiB": mx("idle"),
                    "VmRSS_max_download_MiB": mx("download"),
                    "VmRSS_max_upload_MiB": mx("upload"),
                    "VmRSS_max_MiB": max(mx(lab) for lab in list(sampler.maxima)),
                }
            serve = pair = None
            mem["download_ok"], mem["upload_ok"] = down["ok"], up["ok"]
            # Both agents' CPU over their whole life (start, handshake, both
            # transfers), per GiB carried.
            if None not in cpu.values():
                mem["cpu_s_per_gib"] = round(sum(cpu.values()) / (2 * n / 2**30), 2)
                self.say("  CPU: serve %.2f s, pair %.2f s: %.2f CPU-seconds per GiB"
                         % (cpu["serve"], cpu["pair"], mem["cpu_s_per_gib"]))
            return down, up, mem, path
        finally:
            if sampler:
                sampler.stop()
            for p in (pair, serve):
                if p:
                    self.stop_agent(p)

    def profile_tunnel(self, lport, serve_pid, pair_pid, n):
        self.say("== profile: three more %d MiB downloads (perf record, perf trace, "
                 "CPU time)" % (n // MiB))
        try:
            prof = bench_profile.run(self, download, lport,
                                     {"sender": serve_pid, "receiver": pair_pid}, n)
        except (RuntimeError, OSError, subprocess.SubprocessError) as e:
            self.say("  profile skipped: %s" % e)
            self.res["profile"] = {"skipped": str(e)}
            return
        self.res["profile"] = prof

    def bench_idle(self):
        self.say("== idle tunnel and memory after load (fresh agents; %d s idle, %d streams, "
                 "%d s after)" % (bench_idle.IDLE_S, bench_idle.STREAMS, bench_idle.SETTLE_S))
        serve = pair = None
        try:
            serve = self.start_serve("serve-idle")
            lport = free_port()
            pair = Proc(self, "pair-idle", self.pair_argv(lport, "data"))
            pair.wait_for(r"tunnel up: .*", 20)
            pair.wait_for(r"forwarding ", 10)
            self.res["idle"] = bench_idle.run(self, lport, {"serve": serve.pid, "pair": pair.pid})
        except RuntimeError as e:
            self.problem("idle: %s" % e)
        finally:
            for p in (pair, serve):
                if p:
                    self.stop_agent(p)

    def tunnel_phase(self, key, n, throughput):
        """Fresh serve + pair agents; n bytes down then up; memory of both agents."""
        try:
            down, up, mem, _ = self.agent_tunnel(key, "p2ptun -L", n)
            if throughput:
                self.res["throughput"]["p2ptun"] = {"download": down, "upload": up}
        except RuntimeError as e:
            self.problem("p2ptun %s: %s" % (key, e))
            mem = {"transfer_bytes_each_way": n, "error": str(e)}
            if throughput:
                self.res["throughput"]["p2ptun"] = {"error": str(e)}
        self.res["memory"][key] = mem

    # ---------------------------------------------------------------- relayed
    def write_turn_secret(self):
        """A fresh TURN REST secret in a file of mode 0600 in the work dir."""
        secret = os.urandom(16).hex()
        path = os.path.join(self.work, "turn-secret")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
        return secret, path

    def start_p2ptun_relay(self, secret_file, extra=()):
        """p2ptun-relay on loopback as the integration tests start it, with
        extra options.  Returns (port, tcp) where tcp says whether its --help
        shows a TCP listener, or raises RuntimeError."""
        if not os.access(self.relay_bin, os.X_OK):
            raise RuntimeError("%s is missing" % self.relay_bin)
        r = subprocess.run([self.relay_bin, "--help"], capture_output=True, text=True, timeout=10)
        listen = [l for l in r.stdout.splitlines() if l.strip().startswith("--listen=")]
        tcp = bool(listen) and "TCP" in listen[0]
        p = Proc(self, "p2ptun-relay", [self.relay_bin, "--listen", "127.0.0.1:0",
                                        "--secret-file", secret_file, "--realm", REALM,
                                        "--allow-peer", "127.0.0.1/32"] + list(extra))
        p.wait_for(r"^ready$", 10, "out")
        ports = [int(l.rsplit(":", 1)[1]) for _, t, l in p.lines
                 if t == "out" and l.startswith("listen 127.0.0.1:")]
        if not ports:
            raise RuntimeError("p2ptun-relay printed no listen line:\n%s" % p.tail())
        return ports[0], tcp

    def start_coturn(self, secret, name="coturn", span=20, extra=()):
        """coturn's turnserver on loopback with the same TURN REST secret, UDP and
        TCP on one port, as the integration tests start it, span relayed ports and
        extra options; returns the port or raises RuntimeError.  The secret goes
        in a 0600 config file rather than on the command line, where any user
        could read it."""
        d = os.path.join(self.work, name)
        os.makedirs(d)
        conf = os.path.join(d, "turnserver.conf")
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("static-auth-secret=%s\n" % secret)
        port = free_port()
        low = min(free_port(), 65535 - span)
        if span > 100:
            # Many relayed ports: below the kernel's ephemeral range, where
            # the clients' own sockets (a load generator's thousand) are not.
            try:
                with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
                    eph = int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                eph = 32768
            if eph - span - 1 > 10000:
                low = eph - span - 1
        p = Proc(self, name, [
            TURNSERVER, "-c", conf, "--listening-ip=127.0.0.1", "--listening-port=%d" % port,
            "--relay-ip=127.0.0.1", "--use-auth-secret", "--realm=" + REALM, "--no-dtls",
            "--no-cli", "--no-tcp-relay", "--allow-loopback-peers",
            "--min-port=%d" % low, "--max-port=%d" % (low + span),
            "--log-file=stdout", "--simple-log", "--no-tls",
            "--pidfile=" + os.path.join(d, "turnserver.pid"),
            "--db=" + os.path.join(d, "turndb")] + list(extra))
        deadline = now() + 20
        while not stun_answers(port):
            if p.p.poll() is not None:
                raise RuntimeError("turnserver exited (status %s):\n%s"
                                   % (p.p.returncode, p.tail()))
            if now() > deadline:
                raise RuntimeError("turnserver does not answer STUN on %d:\n%s" % (port, p.tail()))
            time.sleep(0.1)
        return port

    def bench_relay(self):
        """The tunnel forced through a TURN relay (--relay-only on both agents):
        p2ptun-relay and coturn, both on loopback with the same secret, over UDP
        and over TCP; relay_size bytes down then up, like the direct tunnel."""
        a = self.args
        n = a.relay_size * MiB
        self.say("== p2ptun -L relayed (--relay-only) by p2ptun-relay and by coturn, "
                 "%d MiB each way" % a.relay_size)
        rel = self.res["relayed"] = {"size_bytes": n}
        secret, secret_file = self.write_turn_secret()
        ports, why_not = {}, {}
        try:
            port, tcp = self.start_p2ptun_relay(secret_file)
            ports["p2ptun-relay"] = port
            if not tcp:
                why_not[("p2ptun-relay", "tcp")] = "p2ptun-relay has no TCP listener in this build"
        except RuntimeError as e:
            self.problem("p2ptun-relay: %s" % e)
            why_not["p2ptun-relay"] = "p2ptun-relay did not start: %s" % str(e).splitlines()[0]
        if not os.access(TURNSERVER, os.X_OK):
            why_not["coturn"] = "coturn's %s is not installed (apt-get install coturn)" % TURNSERVER
        else:
            try:
                ports["coturn"] = self.start_coturn(secret)
            except RuntimeError as e:
                self.problem("coturn: %s" % e)
                why_not["coturn"] = "coturn did not start: %s" % str(e).splitlines()[0]
        for transport in ("udp", "tcp"):
            for relay in ("p2ptun-relay", "coturn"):
                key = "%s %s" % (relay, transport)
                why = why_not.get(relay) or why_not.get((relay, transport))
                if why:
                    self.say("  relayed %s: skipped: %s" % (key, why))
                    rel[key] = {"skipped": why}
                    continue
                uri = "turn:127.0.0.1:%d" % ports[relay]
                if transport == "tcp":
                    uri += "?transport=tcp"
                rel[key] = self.relay_case(key, uri, transport, secret_file, n)
        for relay in ("p2ptun-relay", "coturn"):
            for p in list(self.procs):
                if p.name == relay:
                    if p.p.poll() is not None:
                        self.problem("%s exited (status %s) during the run:\n%s"
                                     % (relay, p.p.returncode, p.tail()))
                    prob = p.stop()
                    if prob:
                        self.problem(prob)
        ratios = self.res.setdefault("ratios", {})
        for transport in ("udp", "tcp"):
            for d in ("download", "upload"):
                x = rel.get("p2ptun-relay %s" % transport, {}).get(d)
                y = rel.get("coturn %s" % transport, {}).get(d)
                if x and y and x.get("seconds") and y.get("seconds") and x["ok"] and y["ok"]:
                    ratios["p2ptun-relay/coturn %s %s" % (transport, d)] = round(
                        x["MiB_s"] / y["MiB_s"], 3)

    def relay_case(self, key, uri, transport, secret_file, n):
        """One relayed transfer: a signaling server handing out uri, both agents
        --relay-only; the tunnel must say it is relayed over transport."""
        name = key.replace(" ", "-")
        sig = None
        try:
            sig, url, pin = self.start_signal("signal-" + name,
                                              ("--relay", uri, "--turn-secret-file", secret_file))
            up_re = (r"path relayed \(relay 127\.0\.0\.1:\d+ -> relay 127\.0\.0\.1:\d+, %s\)"
                     % transport)
            down, up, mem, path = self.agent_tunnel(name, "relayed " + key, n, (url, pin),
                                                    ("--relay-only",), up_re,
                                                    "relayed over " + transport)
            return {"relay": uri, "path": path, "download": down, "upload": up, "memory": mem}
        except RuntimeError as e:
            self.problem("relayed %s: %s" % (key, e))
            return {"relay": uri, "error": str(e)}
        finally:
            if sig:
                prob = sig.stop()
                if prob:
                    self.problem(prob)

    def bench_ttfb(self):
        a = self.args
        self.say("== time to first byte: Popen(pair) -> first byte through -L, %d runs" % a.runs)
        runs = []
        serve = None
        try:
            serve = self.start_serve("serve-ttfb")
            for i in range(a.runs):
                lport = free_port()
                t0 = now()
                pair = Proc(self, "pair-ttfb-%d" % (i + 1), self.pair_argv(lport, "one"))
                deadline = t0 + 10
                first = connected = None
                attempts = empty = 0
                err = None
                while now() < deadline:
                    attempts += 1
                    try:
                        s = socket.create_connection(("127.0.0.1", lport), timeout=1)
                    except OSError:
                        if pair.p.poll() is not None:
                            err = "pair exited (status %s)" % pair.p.returncode
                            break
                        time.sleep(0.002)
                        continue
                    if connected is None:
                        connected = now() - t0
                    try:
                        s.settimeout(max(0.01, deadline - now()))
                        b = s.recv(1)
                        if b:
                            first = now() - t0
                            break
                        empty += 1
                    except socket.timeout:
                        err = "connected, but no byte before the 10 s limit"
                    except OSError as e:
                        err = "connection error: %s" % e
                        empty += 1
                    finally:
                        s.close()
                    if err and first is None and "limit" in err:
                        break
                up_t = None
                for t, _, l in pair.lines:
                    if "tunnel up" in l:
                        up_t = t - t0
                        break
                run = {"run": i + 1, "ttfb_ms": round(first * 1000, 1) if first else None,
                       "tunnel_up_ms": round(up_t * 1000, 1) if up_t else None,
                       "first_connect_ms": round(connected * 1000, 1) if connected else None,
                       "connect_attempts": attempts, "closed_without_data": empty}
                if first is None:
                    run["error"] = err or "no byte within 10 s"
                    last = pair.lines[-1][2] if pair.lines else "(no output)"
                    self.problem("ttfb run %d: %s: %s\n  pair output:\n%s" % (
                        i + 1, run["error"], last, pair.tail()))
                else:
                    self.say("  run %2d: first byte %7.1f ms   ('tunnel up' line %s ms, "
                             "first accepted connect %.1f ms)" % (
                                 i + 1, first * 1000, "%.1f" % (up_t * 1000) if up_t else "?",
                                 connected * 1000))
                runs.append(run)
                prob = pair.stop()
                if prob:
                    self.problem(prob)
                time.sleep(a.pause)
            if serve.p.poll() is not None:
                self.problem("serving agent exited during the ttfb runs:\n%s" % serve.tail())
        except RuntimeError as e:
            self.problem("ttfb: %s" % e)
        finally:
            if serve:
                self.stop_agent(serve)
        ok = [r["ttfb_ms"] for r in runs if r["ttfb_ms"] is not None]
        up = [r["tunnel_up_ms"] for r in runs if r["tunnel_up_ms"] is not None]
        cn = [r["first_connect_ms"] for r in runs if r["first_connect_ms"] is not None]
        self.res["ttfb"] = {
            "runs": runs,
            "ok_runs": len(ok),
            "median_ms": round(statistics.median(ok), 1) if ok else None,
            "min_ms": min(ok) if ok else None,
            "max_ms": max(ok) if ok else None,
            "tunnel_up_median_ms": round(statistics.median(up), 1) if up else None,
            "first_connect_median_ms": round(statistics.median(cn), 1) if cn else None,
        }

    # ---------------------------------------------------------------- udp
    def spawn_anchor(self, name, argv):
        """An anchor program of agent/bench, which runs until its stdin closes."""
        return Proc(self, name, argv, stdin=subprocess.PIPE)

    def udp_rtts_two_hops(self, echo_port):
        """The lockstep round trip through two bare UDP relays in a row
        (agent/bench/udphop: poll, recv, send): the floor of any design
        with two processes in the path, as the tunnel has."""
        hops = []
        try:
            target = echo_port
            for i in (2, 1):
                hop = self.spawn_anchor("udphop-%d" % i, [self.udphop_bin, str(target)])
                hops.append(hop)
                _, m = hop.wait_for(r"^port (\d+)$", 10, "out")
                target = int(m.group(1))
            return udp_rtts(target, UDP_RTT_COUNT)
        finally:
            for hop in hops:
                hop.stop()

    def bench_udp(self):
        """UDP forwarding (-U to a service exposed /udp): round-trip time of
        small datagrams in lockstep through the tunnel and straight to the
        echo service, and how many paced 1200-byte datagrams come back."""
        self.say("== UDP forward (-U), echo service on loopback")
        echo = serve = pair = None
        res = self.res["udp"] = {}
        try:
            echo = Proc(self, "udp-echo", [sys.executable, os.path.abspath(__file__), "_udpecho"],
                        stdin=subprocess.PIPE)
            _, m = echo.wait_for(r"^port (\d+)$", 10, "out")
            echo.port = int(m.group(1))
            serve = self.start_serve("serve-udp", extra=(
                "--expose", "echo=127.0.0.1:%d/udp" % echo.port))
            uport = free_port()
            pair = Proc(self, "pair-udp", self.pair_argv(free_port(), "data", extra=(
                "-U", "%d:echo" % uport)))
            pair.wait_for(r"forwarding udp 127\.0\.0\.1:%d -> echo" % uport, 20)
            res["rtt_tunnel_us"] = udp_rtts(uport, UDP_RTT_COUNT)
            res["rtt_direct_us"] = udp_rtts(echo.port, UDP_RTT_COUNT)
            res["rtt_two_hops_us"] = self.udp_rtts_two_hops(echo.port)
            for k in ("rtt_tunnel_us", "rtt_direct_us", "rtt_two_hops_us"):
                self.say("  %s: median %.0f us, p99 %.0f us" % (k, res[k]["median"], res[k]["p99"]))
            res["rtt_added_us"] = round(res["rtt_tunnel_us"]["median"]
                                        - res["rtt_direct_us"]["median"], 1)
            res["rtt_two_hops_added_us"] = round(res["rtt_two_hops_us"]["median"]
                                                 - res["rtt_direct_us"]["median"], 1)
            res["paced"] = []
            for mbit in UDP_RATES_MBIT:
                r = udp_paced(uport, mbit, UDP_PACED_S, echo.port)
                res["paced"].append(r)
                self.say("  %d Mbit/s offered: %.1f %% echoed (%.1f %% reached the echo)"
                         % (mbit, r["echoed_percent"], r["reached_echo_percent"]))
        except (RuntimeError, OSError) as e:
            self.problem("udp: %s" % e)
            res["error"] = str(e)
        finally:
            for p in (pair, serve):
                if p:
                    self.stop_agent(p)
            if echo:
                echo.stop()

    # ---------------------------------------------------------------- all
    def run(self):
        a = self.args
        self.ensure_build()
        self.res["build"] = self.build
        self.say("p2ptun bench: loopback 127.0.0.1, build %s, work dir %s" % (self.build, self.work))
        only = set(a.only.split(",")) if a.only else set(PARTS)
        self.only = only
        # relay-load needs neither the service nor the agents.
        if only - {"relay-load"}:
            self.start_service()
        if "raw" in only:
            self.bench_raw()
        if "ssh" in only:
            self.bench_ssh()
        if only - {"relay-load"}:
            self.setup_agents()
        if only & {"memory", "tunnel", "ttfb", "udp", "idle"}:
            self.sig, self.url, self.pin = self.start_signal()
        if "memory" in only:
            self.say("== p2ptun -L, %d MiB each way (memory, fresh agents)" % a.mem_size)
            self.tunnel_phase("small", a.mem_size * MiB, throughput=False)
        if "tunnel" in only:
            self.say("== p2ptun -L, %d MiB each way (throughput and memory, fresh agents)"
                     % a.size)
            self.tunnel_phase("large", a.size * MiB, throughput=True)
        if "ttfb" in only:
            self.bench_ttfb()
        if "relay" in only:
            self.bench_relay()
        if "udp" in only:
            self.bench_udp()
        if "idle" in only:
            self.bench_idle()
        if "relay-load" in only:
            bench_relay_load.run(self)
        self.report()

    def report(self):
        a = self.args
        r = self.res
        only = self.only
        tp = r["throughput"]
        ratios = r.setdefault("ratios", {})
        lines = ["", "=" * RULE]

        def cell(x):
            if not x:
                return "-"
            if x.get("seconds") and x["ok"]:
                return "%7.1f MiB/s %6.0f Mbit/s" % (x["MiB_s"], x["Mbit_s"])
            if x.get("seconds"):
                return "%.1f MiB/s (BAD DATA)" % x["MiB_s"]
            return "FAILED (%.1f MiB moved)" % (x["transferred"] / MiB)

        def row(name, x):
            if "skipped" in x:
                return "%-30s skipped: %s" % (name, x["skipped"].splitlines()[0])
            if "error" in x:
                return "%-30s error: %s" % (name, x["error"].splitlines()[0][:44])
            return "%-30s %-26s %-26s" % (name, cell(x.get("download")), cell(x.get("upload")))

        def ratio_row(name, key):
            c = ["%.3f" % ratios[key % d] if key % d in ratios else "-"
                 for d in ("download", "upload")]
            return "%-30s %-26s %-26s" % (name, c[0], c[1])

        header = "%-30s %-26s %-26s" % ("throughput", "download (service->client)",
                                        "upload (client->service)")
        if only & {"raw", "ssh", "tunnel"}:
            lines += ["p2ptun benchmark, loopback 127.0.0.1, single stream, %d MiB each way"
                      % a.size, "-" * RULE, header]
            for key, name in (("p2ptun", "p2ptun -L"), ("ssh", "ssh -L aes128-gcm"),
                              ("raw", "raw TCP")):
                lines.append(row(name, tp.get(key, {})))
            for other in ("ssh", "raw"):
                for d in ("download", "upload"):
                    p = tp.get("p2ptun", {}).get(d)
                    o = tp.get(other, {}).get(d)
                    if p and o and p.get("seconds") and o.get("seconds") and p["ok"] and o["ok"]:
                        ratios["p2ptun/%s %s" % (other, d)] = round(p["MiB_s"] / o["MiB_s"], 3)
            for other in ("ssh", "raw"):
                lines.append(ratio_row("ratio p2ptun/" + other, "p2ptun/" + other + " %s"))
            lines.append("-" * RULE)

        if "relay" in only:
            rel = r.get("relayed", {})
            lines += ["p2ptun -L relayed (--relay-only, TURN on loopback), single stream, "
                      "%d MiB each way" % a.relay_size, "-" * RULE, header]
            for transport in ("udp", "tcp"):
                for relay in ("p2ptun-relay", "coturn"):
                    key = "%s %s" % (relay, transport)
                    lines.append(row("relayed " + key, rel.get(key, {})))
                lines.append(ratio_row("ratio p2ptun-relay/coturn " + transport,
                                       "p2ptun-relay/coturn " + transport + " %s"))
            lines.append("-" * RULE)

        if "udp" in only:
            u = r.get("udp", {})
            if "paced" in u:
                lines.append("UDP forward (-U), loopback: round trip of %d-byte datagrams, %d in "
                             "lockstep:" % (UDP_RTT_SIZE, UDP_RTT_COUNT))
                for k, name in (("rtt_tunnel_us", "through the tunnel"),
                                ("rtt_direct_us", "straight to the echo"),
                                ("rtt_two_hops_us", "two bare UDP relays")):
                    lines.append("  %-22s median %6.0f us   p99 %6.0f us"
                                 % (name, u[k]["median"], u[k]["p99"]))
                lines.append("  added by the tunnel %.0f us (target <= %d us); by two bare relays "
                             "(agent/bench/udphop) %.0f us"
                             % (u["rtt_added_us"], RTT_ADDED_TARGET_US, u["rtt_two_hops_added_us"]))
                lines.append("  paced %d-byte datagrams for %d s, echoed back through the tunnel:"
                             % (UDP_PACED_SIZE, UDP_PACED_S))
                for x in u["paced"]:
                    lines.append("  %4d Mbit/s offered: %6.1f %% back (%.1f Mbit/s); "
                                 "%.1f %% reached the echo"
                                 % (x["offered_mbit"], x["echoed_percent"], x["echoed_mbit"],
                                    x["reached_echo_percent"]))
            else:
                lines.append("UDP forward: error: %s" % u.get("error", "not run")[:60])
            lines.append("-" * RULE)

        if "relay-load" in only:
            lines += bench_relay_load.report_lines(r.get("relay_load"), RULE)

        if "ttfb" in only:
            t = r["ttfb"] or {}
            if t.get("median_ms") is not None:
                met = "met" if t["median_ms"] <= TTFB_TARGET_MS else "NOT met"
                lines.append("time to first byte (Popen pair -> first byte), %d/%d runs ok:"
                             % (t["ok_runs"], len(t["runs"])))
                lines.append("  median %.1f ms  (min %.1f, max %.1f)   target median <= %.0f ms: %s"
                             % (t["median_ms"], t["min_ms"], t["max_ms"], TTFB_TARGET_MS, met))
                if t.get("tunnel_up_median_ms") is not None:
                    lines.append("  (median: 'tunnel up' line at %.1f ms, first accepted connect "
                                 "at %s ms)" % (t["tunnel_up_median_ms"],
                                                t.get("first_connect_median_ms")))
            else:
                lines.append("time to first byte: no successful run (see problems)")
            lines.append("-" * RULE)

        if only & {"memory", "tunnel"}:
            lines.append("%-30s %-22s %-22s" % ("agent memory (MiB)", "serve agent", "pair agent"))
            peaks = []
            for key, sz, part in (("small", a.mem_size, "memory"), ("large", a.size, "tunnel")):
                if part not in only:
                    continue
                m = r["memory"].get(key, {})
                if "error" in m or "serve" not in m:
                    lines.append("%-30s error: %s" % ("%d MiB each way" % sz,
                                                      m.get("error", "not run").splitlines()[0][:40]))
                    continue
                s, p = m["serve"], m["pair"]
                f = lambda v: "-" if v is None else "%.1f" % v
                rss = lambda x: x["VmRSS_max_MiB"]
                lines.append("%-30s %-22s %-22s" % ("%d MiB each way: VmHWM" % sz,
                                                    f(s["VmHWM_MiB"]), f(p["VmHWM_MiB"])))
                lines.append("%-30s %-22s %-22s" % ("  max sampled VmRSS (idle)",
                                                    "%s (%s)" % (f(rss(s)), f(s["VmRSS_idle_MiB"])),
                                                    "%s (%s)" % (f(rss(p)), f(p["VmRSS_idle_MiB"]))))
                if not (m.get("download_ok") and m.get("upload_ok")):
                    lines.append("  (a transfer failed in this phase: see problems)")
                # The kernel's RSS counters are updated lazily (per-thread caches), so a
                # sampled VmRSS can exceed the VmHWM read later: the peak is the larger.
                peaks += [v for v in (s["VmHWM_MiB"], p["VmHWM_MiB"], rss(s), rss(p)) if v]
            if peaks:
                met = "met" if max(peaks) <= MEM_TARGET_MIB else "NOT met"
                lines.append("  peak %.1f MiB (largest VmHWM or sampled VmRSS)   target <= %.0f MiB: %s"
                             % (max(peaks), MEM_TARGET_MIB, met))
                r["peak_memory_MiB"] = max(peaks)
            lines.append("-" * RULE)
        if r.get("idle"):
            bench_idle.report(r["idle"], lines.append)
            lines.append("-" * RULE)
        prof = r.get("profile")
        if prof and "skipped" not in prof:
            bench_profile.report(prof, lines.append)
            lines.append("-" * RULE)
        elif prof:
            lines.append("profile skipped: %s" % prof["skipped"])
            lines.append("-" * RULE)
        if self.problems:
            lines.append("problems: %d (details above and in the JSON)" % len(self.problems))
            for pr in self.problems:
                lines.append("  - " + pr.splitlines()[0][:150])
        else:
            lines.append("problems: none")
        lines.append("=" * RULE)
        print("\n".join(l.rstrip() for l in lines), flush=True)
        if a.json:
            with open(a.json, "w") as f:
                json.dump(r, f, indent=2)
                f.write("\n")
            print("JSON written to %s" % a.json)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "_service":
        return run_service()
    if len(sys.argv) > 1 and sys.argv[1] == "_udpecho":
        return run_udp_echo()
    ap = argparse.ArgumentParser(
        prog="scripts/bench", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=256, metavar="MIB",
                    help="throughput transfer size in MiB, each way (default 256)")
    ap.add_argument("--mem-size", type=int, default=64, metavar="MIB",
                    help="transfer size for the memory measurement, each way (default 64)")
    ap.add_argument("--runs", type=int, default=10, help="time-to-first-byte runs (default 10)")
    ap.add_argument("--build", default="build-bench",
                    help="meson build directory, relative to the repository (default build-bench); "
                         "set up and built with meson/ninja if missing")
    ap.add_argument("--no-build", action="store_true", help="do not run ninja before measuring")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    ap.add_argument("--idle-timeout", type=int, default=10, metavar="S",
                    help="a transfer fails after S seconds without progress (default 10)")
    ap.add_argument("--timeout", type=int, default=120, metavar="S",
                    help="a transfer fails after S seconds in all (default 120)")
    ap.add_argument("--pause", type=float, default=0.2, metavar="S",
                    help="pause between time-to-first-byte runs, not counted (default 0.2)")
    ap.add_argument("--relay-size", type=int, default=64, metavar="MIB",
                    help="transfer size through the relays, each way (default 64)")
    ap.add_argument("--only", metavar="LIST",
                    help="run only these parts, comma-separated: %s (default: all)"
                         % ",".join(PARTS))
    ap.add_argument("--profile", action="store_true",
                    help="with the tunnel part: profile both agents during three more "
                         "downloads (perf record and perf trace; needs perf): CPU by library, "
                         "top symbols, system calls per MiB, mean datagram size, CPU-seconds "
                         "per GiB for each agent")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    bench_relay_load.add_arguments(ap)
    args = ap.parse_args()
    if args.size < 1 or args.mem_size < 1 or args.relay_size < 1 or args.runs < 1:
        ap.error("sizes and runs must be positive")
    if args.only:
        bad = set(args.only.split(",")) - set(PARTS)
        if bad:
            ap.error("--only: unknown part(s) %s (choose from %s)"
                     % (",".join(sorted(bad)), ",".join(PARTS)))
    bench_relay_load.check_arguments(ap, args)

    def on_signal(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    b = Bench(args)
    try:
        b.run()
    except KeyboardInterrupt:
        print("\nbench: interrupted", file=sys.stderr)
        return 130
    except RuntimeError as e:
        print("bench: %s" % e, file=sys.stderr)
        return 1
    finally:
        b.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
