"""Shared pieces of the integration tests: real p2ptun programs as processes on
loopback, each test in its own temporary directory, everything stopped and
removed at the end, also on failure. Python standard library only."""

import hashlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time


class TestFailure(Exception):
    pass


class TestSkip(Exception):
    """The test cannot run here; meson counts exit code 77 as skipped."""


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def _port_range():
    """Ports outside the kernel's ephemeral range (which bind(0) draws
    from, also in the programs under test that listen on port 0): a port
    chosen there and released could be handed to one of them before the
    program it was chosen for binds it, as happened once."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    if low - 10000 >= 2000:
        return 10000, low
    return high + 1, 65536


_ports_given = set()


def free_port(count=1):
    """A TCP and UDP port that nothing on loopback uses right now, outside
    the ephemeral range, and not handed out before by this process; with
    count, the first of that many such ports in a row (RTP's port and
    RTCP's, the next one)."""
    lo, hi = _port_range()
    for _ in range(200):
        port = random.randrange(lo, hi - count + 1)
        ports = range(port, port + count)
        if _ports_given.intersection(ports):
            continue
        socks = []
        try:
            for p in ports:
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    socks.append(socket.socket(socket.AF_INET, kind))
                    socks[-1].bind(("127.0.0.1", p))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        _ports_given.update(ports)
        return port
    raise TestFailure("no free port")


class Process:
    """A running program whose stderr (or stdout) lines are collected."""

    def __init__(self, name, argv, env=None, stdin=subprocess.DEVNULL, capture_stdout=False):
        self.name = name
        self.argv = argv
        self.lines = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(
            argv, stdin=stdin, env=env,
            stdout=subprocess.PIPE if capture_stdout else subprocess.DEVNULL,
            stderr=subprocess.PIPE, start_new_session=True)
        self.reader = threading.Thread(target=self._read, args=(self.proc.stderr,), daemon=True)
        self.reader.start()

    def _read(self, stream):
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            sys.stderr.write("[%s] %s\n" % (self.name, line))
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_line(self, pattern, timeout=30.0):
        """The first line matching pattern (a regex); fails after timeout."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self.cond:
            while True:
                for line in self.lines[seen:]:
                    m = rx.search(line)
                    if m:
                        return m
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TestFailure("%s: no line matching %r within %.0f s" % (self.name, pattern, timeout))
                if self.proc.poll() is not None and not self.reader.is_alive():
                    raise TestFailure("%s exited (%s) without a line matching %r"
                                      % (self.name, self.proc.returncode, pattern))
                self.cond.wait(min(left, 0.5))

    def text(self):
        with self.cond:
            return "\n".join(self.lines)

    def wait_exit(self, timeout=30.0):
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TestFailure("%s did not exit within %.0f s" % (self.name, timeout))
        self.reader.join(5)
        return code

    def signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


class Lab:
    """One test's world: a temp directory and the processes it started."""

    def __init__(self, build_dir):
        self.build = os.path.abspath(build_dir)
        self.agent_bin = os.path.join(self.build, "agent", "p2ptun-agent")
        self.signal_bin = os.path.join(self.build, "signaling", "p2ptun-signal")
        self.relay_bin = os.path.join(self.build, "relay", "p2ptun-relay")
        self.dir = tempfile.mkdtemp(prefix="p2ptun-test-")
        self.procs = []
        self.services = []
        self.signal_states = {}  # url -> the server's --state-dir
        self.signal_pins = {}    # url -> the server's certificate pin
        self.agent_ids = {}      # config dir -> peer-id
        self.enrolled = set()    # (state dir, peer-id)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for s in self.services:
            s.close()
        for p in reversed(self.procs):
            p.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        return False

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def start(self, name, argv, **kw):
        p = Process(name, argv, **kw)
        self.procs.append(p)
        return p

    def signal_server(self, *extra, state=None):
        """Starts p2ptun-signal; returns (process, url, pin). Agents that
        lab.agent() starts against it are enrolled first (enroll=False
        leaves one a stranger). state reuses a state directory."""
        state = state or self.path("signal-%d" % len(self.procs))
        argv = [self.signal_bin, "--listen", "127.0.0.1:0", "--state-dir", state] + list(extra)
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        wrapper = Process.__new__(Process)
        wrapper.name, wrapper.argv, wrapper.lines = "signal", argv, []
        wrapper.cond = threading.Condition()
        wrapper.proc = proc
        wrapper.reader = threading.Thread(target=wrapper._read, args=(proc.stderr,), daemon=True)
        wrapper.reader.start()
        self.procs.append(wrapper)
        url = pin = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = proc.stdout.readline().decode().strip()
            if not line:
                if proc.poll() is not None:
                    raise TestFailure("p2ptun-signal exited early: %s" % wrapper.text())
                continue
            if line.startswith("url "):
                url = line[4:]
            elif line.startswith("pin "):
                pin = line[4:]
            elif line == "ready":
                break
        check(url and pin, "p2ptun-signal did not print url and pin")
        self.signal_states[url] = state
        self.signal_pins[url] = pin
        wrapper.state = state
        return wrapper, url, pin

    def enroll(self, state, peer_id):
        """Enrolls peer_id on the signaling server of state (running or not)."""
        if (state, peer_id) in self.enrolled:
            return
        out = subprocess.run([self.signal_bin, "enroll", "--state-dir", state, "--peer", peer_id],
                             capture_output=True, timeout=30)
        check(out.returncode == 0, "p2ptun-signal enroll --peer failed: %s" % out.stderr.decode())
        self.enrolled.add((state, peer_id))

    def turn_secret(self):
        """A fresh random TURN REST secret in a file of its own; returns (secret, path)."""
        secret = os.urandom(16).hex()
        path = self.path("turn-secret-%d" % len(self.procs))
        with open(path, "w") as f:
            f.write(secret + "\n")
        os.chmod(path, 0o600)
        return secret, path

    def relay_server(self, secret_file, realm="p2ptun.test", timeout=20.0, tls=None, extra=()):
        """Starts p2ptun-relay on a free loopback port (UDP and TCP), relaying
        to loopback peers, and with tls=(cert, key) a TLS listener too, with
        the options extra besides; returns (process, port), the TLS port in
        process.tls_port."""
        argv = [self.relay_bin, "--listen", "127.0.0.1:0", "--secret-file", secret_file,
                "--realm", realm, "--allow-peer", "127.0.0.1/32"] + list(extra)
        if tls:
            argv += ["--tls-listen", "127.0.0.1:0", "--tls-cert", tls[0], "--tls-key", tls[1]]
        proc = self.start("relay", argv, capture_stdout=True)
        lines = []
        done = threading.Event()

        def read_stdout():
            for raw in proc.proc.stdout:
                lines.append(raw.decode("utf-8", "replace").strip())
                if lines[-1] == "ready":
                    done.set()
            done.set()

        threading.Thread(target=read_stdout, daemon=True).start()
        check(done.wait(timeout), "p2ptun-relay printed no ready line in %.0f s" % timeout)
        ports = [int(l.rsplit(":", 1)[1]) for l in lines if l.startswith("listen 127.0.0.1:")]
        check(ports and "ready" in lines,
              "p2ptun-relay did not start: %r %s" % (lines, proc.text()))
        tls_ports = [int(l.rsplit(":", 1)[1]) for l in lines
                     if l.startswith("tls-listen 127.0.0.1:")]
        check(bool(tls_ports) == bool(tls), "p2ptun-relay's TLS listener: %r" % lines)
        proc.tls_port = tls_ports[0] if tls_ports else None
        pins = [l.split(" ", 1)[1] for l in lines if l.startswith("tls-pin ")]
        proc.tls_pin = pins[0] if pins else None
        return proc, ports[0]

    def peer_id_of(self, config):
        """The peer-id of the agent directory config (made on first use)."""
        if config not in self.agent_ids:
            out = subprocess.run([self.agent_bin, "id", "--config", config], capture_output=True,
                                 timeout=30)
            check(out.returncode == 0, "p2ptun-agent id failed: %s" % out.stderr.decode())
            peer_id = out.stdout.decode().strip()
            check(re.fullmatch(r"[a-z2-7]{52}", peer_id), "bad peer-id %r" % peer_id)
            self.agent_ids[config] = peer_id
        return self.agent_ids[config]

    def agent_dir(self, name):
        d = self.path("agent-" + name)
        return d, self.peer_id_of(d)

    def agent(self, name, config, args, url=None, pin=None, stdin=subprocess.DEVNULL,
              capture_stdout=False, local="127.0.0.1", enroll=True):
        """Starts p2ptun-agent ARGS (["pair", PEER, ...] or ["serve", ...]) with its
        host candidates on loopback only (local), enrolled on the signaling
        server of url when lab.signal_server() started it."""
        if enroll and url in self.signal_states:
            self.enroll(self.signal_states[url], self.peer_id_of(config))
        argv = [self.agent_bin] + list(args) + ["--config", config, "--local-address", local]
        if url:
            argv += ["--signal", url]
        if pin:
            argv += ["--signal-pin", pin]
        return self.start(name, argv, stdin=stdin, capture_stdout=capture_stdout)

    def service(self, kind, **kw):
        s = Service(kind, **kw)
        self.services.append(s)
        return s


def pattern_bytes(seed, n):
    """n deterministic pseudo-random bytes."""
    out = bytearray()
    block = hashlib.sha256(b"p2ptun-%d" % seed).digest()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(block + counter.to_bytes(8, "big")).digest() * 64
        counter += 1
    return bytes(out[:n])


class Service:
    """A TCP service on loopback, run in threads:
    echo:   sends back what it receives, then closes after the client's EOF;
    source: sends `size` pattern bytes and closes;
    sink:   reads until EOF, then answers the SHA-256 hex of what it read.
    endings lists how each connection ended from the service's side, in
    order: "eof" (the other side closed in order) or "reset"."""

    def __init__(self, kind, size=0, seed=1):
        self.kind, self.size, self.seed = kind, size, seed
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        self.connections = 0
        self.endings = []
        self.cond = threading.Condition()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        conn.settimeout(120)
        ending = "eof"
        try:
            if self.kind == "echo":
                while True:
                    data = conn.recv(65536)
                    if not data:
                        break
                    conn.sendall(data)
                conn.shutdown(socket.SHUT_WR)
            elif self.kind == "source":
                data = pattern_bytes(self.seed, self.size)
                view = memoryview(data)
                for off in range(0, len(data), 1 << 16):
                    conn.sendall(view[off:off + (1 << 16)])
                conn.shutdown(socket.SHUT_WR)
                while conn.recv(65536):
                    pass
            elif self.kind == "sink":
                h = hashlib.sha256()
                while True:
                    data = conn.recv(1 << 16)
                    if not data:
                        break
                    h.update(data)
                conn.sendall(h.hexdigest().encode())
                conn.shutdown(socket.SHUT_WR)
        except (ConnectionResetError, BrokenPipeError):
            ending = "reset"
        except OSError as e:
            ending = "error: %s" % e
        finally:
            conn.close()
            with self.cond:
                self.endings.append(ending)
                self.cond.notify_all()

    def wait_endings(self, n, timeout=10.0):
        """The endings once n connections have ended; fails after timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.endings) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TestFailure("%d of %d connections to the %s service ended within "
                                      "%.0f s" % (len(self.endings), n, self.kind, timeout))
                self.cond.wait(left)
            return list(self.endings)

    def close(self):
        self.closed = True
        self.sock.close()


def read_until_end(sock, limit):
    """Reads until the connection ends; returns (bytes read, how it ended:
    "eof" or "reset"). Fails if more than limit bytes arrive."""
    n = 0
    while True:
        try:
            data = sock.recv(1 << 16)
        except ConnectionResetError:
            return n, "reset"
        if not data:
            return n, "eof"
        n += len(data)
        check(n <= limit, "more than %d bytes arrived" % limit)


def connect_retry(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=120)
        except OSError:
            if time.monotonic() > deadline:
                raise TestFailure("cannot connect to forwarded port %d" % port)
            time.sleep(0.05)


def roundtrip(port, data):
    """Sends data through the forwarded port, half-closes, returns all that
    comes back before the end of the stream."""
    with connect_retry(port) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got = bytearray()
        while True:
            chunk = s.recv(1 << 16)
            if not chunk:
                return bytes(got)
            got += chunk


def stun_answers(port, timeout=0.5):
    """True when a STUN Binding request to 127.0.0.1:port (UDP) gets a success answer."""
    txid = os.urandom(12)
    request = b"\x00\x01\x00\x00\x21\x12\xa4\x42" + txid
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(request, ("127.0.0.1", port))
            data, _ = s.recvfrom(2048)
        except OSError:
            return False
    return len(data) >= 20 and data[0:2] == b"\x01\x01" and data[8:20] == txid


def run_cases(cases, argv):
    """main(): argv = [script, build_dir, case]; exit code for meson."""
    if len(argv) != 3 or argv[2] not in cases:
        sys.stderr.write("usage: %s BUILD_DIR CASE (%s)\n" % (argv[0], ", ".join(sorted(cases))))
        return 2
    # meson stops a test that runs too long with SIGTERM: turn it into an
    # exception so that the Lab still stops its processes and removes its files.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        with Lab(argv[1]) as lab:
            cases[argv[2]](lab)
    except TestFailure as e:
        sys.stderr.write("FAIL: %s\n" % e)
        return 1
    except TestSkip as e:
        sys.stdout.write("SKIP: %s\n" % e)
        return 77
    sys.stderr.write("PASS: %s\n" % argv[2])
    return 0
