"""The NAT matrix's "staying connected" cases (issue 15): a tunnel that
carries a long paced stream each way (peer.py paced: CHUNK bytes every
INTERVAL_MS, noting when data arrives) goes through a fault: B's link cut,
only the direct path cut, B's NAT forgetting its mappings, B moving to
another network, the relay in use killed, the signaling server or the
serving agent killed and started again. Each case first checks that the
fault really happened (nft counters, conntrack, ip addr, ss, the killed
process), then what the agents did: the stream arrives intact (SHA-256 of
the whole of it each way; no loss, no duplication) or, where the fault is
longer than the agents hold streams, is reset (never a clean short end);
and the time to recovery: from the fault ending (or the move) to the
first byte delivered again, in the slower direction.

One function per case (CASES); test_nat.py runs them with its Runner (the
servers, the identities) and its RE_ constants (the agents' lines), given
as the module t. Each prints what it measured to stderr and stores it in
the case's result (matrix.py shows it); the bounds are generous, at least
five times the target (in the comments)."""

import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time

import natlab
from natlab import SERVERS_IP, TestFailure, check

DIRECT = ("direct", "udp")
RELAY_UDP = ("relayed", "udp")
HOST_A_IP = "203.0.113.11"
HOST_B_IP = "203.0.113.12"
SECOND_RELAY_IP = "203.0.113.2"

# The paced stream: 8 KiB every 20 ms, 400 KiB/s each way.
CHUNK = 8192
INTERVAL_MS = 20
# The stream flows this long before a fault and goes on this long after it.
PRE_S = 2
POST_S = 8
# A pause in arrivals shorter than this is pacing, not a stall.
STALL_S = 0.1

CUT_SHORT_S = 5
CUT_LONG_S = 60
# Figures only (figures.py; not in meson's suite): a 3-minute cut, and one
# past the default --hold of 600 s.
CUT_FIGURE_S = 180
HOLD_DEFAULT_S = 600
HOLD_DEFAULT_CUT_S = 620
RECOVERY_BOUND_S = 5           # target 1 s (cuts, NAT rebinding)
HOLD_S = 20
HOLD_CUT_S = 30
RECONNECT_BOUND_S = 30
DIRECT_CUT_S = 40
TO_RELAY_BOUND_S = 10          # target 2 s
BACK_TO_DIRECT_BOUND_S = 30
REBIND_PORTS = "20000-20999"   # below the ephemeral range: never a kept port
ROAM_BOUND_S = 10              # target 2 s
RELAY_FAILOVER_BOUND_S = 25    # target 5 s
SIGNAL_BACK_BOUND_S = 30
SERVE_RESTART_BOUND_S = 30

# The forwards: pair's, and the third identity's in signal-restart.
FWD_DOWN, FWD_UP = 10001, 10002
FWD_C_DOWN, FWD_C_UP = 10011, 10012

# case -> (NAT of site A, NAT of site B, path expected at the end, what it is)
CASES = {
    "cut-5s": ("none", "none", DIRECT,
               "two public hosts, B's whole link cut for %d s during a paced transfer"
               % CUT_SHORT_S),
    "cut-60s": ("none", "none", DIRECT,
                "two public hosts, B's whole link cut for %d s during a paced transfer"
                % CUT_LONG_S),
    "cut-180s": ("none", "none", DIRECT,
                 "two public hosts, B's whole link cut for %d s during a paced transfer "
                 "(figures only)" % CUT_FIGURE_S),
    "hold-default": ("none", "none", DIRECT,
                     "the default --hold (%d s), B's link cut for %d s: the stream is reset, "
                     "pair reconnects (figures only)" % (HOLD_DEFAULT_S, HOLD_DEFAULT_CUT_S)),
    "hold-exceeded": ("none", "none", DIRECT,
                      "--hold %d, B's link cut for %d s: the stream is reset, pair "
                      "reconnects, a new connection works" % (HOLD_S, HOLD_CUT_S)),
    "direct-cut": ("none", "none", DIRECT,
                   "two public hosts, only the direct UDP between them cut for %d s: "
                   "to the relay and back" % DIRECT_CUT_S),
    "nat-rebind": ("portrestricted", "portrestricted", DIRECT,
                   "two port-restricted NATs, B's router forgets its mappings "
                   "mid-transfer (new outside ports)"),
    "roam": ("portrestricted", "portrestricted", DIRECT,
             "B moves mid-transfer from site 2's LAN to site 3's (another NAT, "
             "another outside address)"),
    "relay-failover": ("none", "none", RELAY_UDP,
                       "--relay-only with two relays, the one in use killed (SIGKILL) "
                       "mid-transfer"),
    "signal-restart": ("portrestricted", "portrestricted", DIRECT,
                       "the signaling server killed (SIGKILL) during a transfer and "
                       "started again; then a third agent pairs"),
    "serve-restart": ("portrestricted", "portrestricted", DIRECT,
                      "the serving agent killed (SIGKILL) mid-transfer and started "
                      "again: pair reconnects by itself"),
}


def arrival_lists(res):
    """The arrival times of both directions of a paced stream's result."""
    up = (res["up"].get("answer") or {}).get("arrivals") or []
    return {"down": res["down"].get("arrivals") or [], "up": up}


def largest_gap(times):
    return max((b - a for a, b in zip(times, times[1:])), default=0.0)


def recovery_after(times, t, window):
    """Seconds from t to the first arrival after the stall that the fault
    caused: the longest pause in arrivals that ends after t and starts
    before t + window. 0 when there was no stall (no pause longer than
    STALL_S), None when nothing arrived after t."""
    if not any(x >= t for x in times):
        return None
    best = None
    for a, b in zip(times, times[1:]):
        if b > t and a <= t + window and (best is None or b - a > best[1] - best[0]):
            best = (a, b)
    if best is None or best[1] - best[0] < STALL_S:
        return 0.0
    return max(0.0, best[1] - t)


def describe(res):
    d, u = res["down"], res["up"]
    ans = u.get("answer") or {}
    return ("down: %d of %d bytes, %s; up: %s, the sink got %s bytes"
            % (d["bytes"], res["size"], d["ending"], u["ending"], ans.get("bytes", "no")))


class Stream:
    """peer.py paced on a host through its forwards, for about seconds."""

    def __init__(self, fault, host, down, up, seconds, timeout, name="stream"):
        self.name = name
        self.size = CHUNK * int(math.ceil(seconds * 1000.0 / INTERVAL_MS))
        argv = [sys.executable, fault.peer_py, "paced", str(down), str(up), str(self.size),
                str(CHUNK), str(INTERVAL_MS), str(int(timeout)), "7", "9"]
        self.proc = subprocess.Popen(fault.net.exec_argv(host, argv), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True)
        fault.streams.append(self)
        self.lines, self.flowing = [], threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace").strip())
            if self.lines[-1] == "flowing":
                self.flowing.set()

    def wait_flowing(self, timeout=30):
        check(self.flowing.wait(timeout), "%s: no data came through the tunnel within %d s"
              % (self.name, timeout))

    def result(self, timeout):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise TestFailure("%s still running after %d s" % (self.name, timeout))
        err = self.proc.stderr.read().decode(errors="replace")
        if err:
            sys.stderr.write(err)
        deadline = time.monotonic() + 5
        while (not self.lines or not self.lines[-1].startswith("{")) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            return json.loads(self.lines[-1])
        except (ValueError, IndexError):
            raise TestFailure("%s printed no result: %r %s" % (self.name, self.lines[-3:],
                                                                err[-400:]))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class Fault:
    """One fault case: the Runner r, its Net, the test_nat module t."""

    def __init__(self, runner, net, tmp, t):
        self.r, self.net, self.tmp, self.t = runner, net, tmp, t
        self.result = runner.result
        self.peer_py = os.path.join(natlab.HERE, "peer.py")
        self.streams = []
        self.killed = []     # processes killed on purpose: no SIGTERM check for them
        self.agents_run = []

    def rx(self, pattern, peer):
        return pattern.format(peer=re.escape(peer))

    def note(self, key, value, text):
        self.result[key] = value
        sys.stderr.write("%s: %s\n" % (self.r.case.name, text))

    # ---- the world ----

    def two_sites(self, nat_a, nat_b):
        self.net.internet()
        host_a = self.net.site(1, nat_a)[0][0]
        host_b = self.net.site(2, nat_b)[0][0]
        return host_a, host_b

    def agents(self, host_a, host_b, serve_args=(), pair_args=(), relay_ips=None,
               third=False):
        """The servers, the paced services on A, `serve` on A and `pair` on
        B with its forwards; with third, an identity C that serve trusts too."""
        self.host_a, self.host_b = host_a, host_b
        self.env, (self.dir_a, self.id_a), (self.dir_b, self.id_b) = self.r.start_services(
            self.net, self.tmp, host_a, host_b, relay_ips)
        trust = ["--trust", self.id_b]
        if third:
            self.dir_c = os.path.join(self.tmp, "agent-c")
            self.id_c = self.r.agent_id(self.net, host_b, self.dir_c)
            trust += ["--trust", self.id_c]
        services = self.net.start("services", host_a,
                                  [sys.executable, self.peer_py, "paced-services", "7"],
                                  capture_stdout=True)
        ports = services.proc.stdout.readline().decode().split()
        check(len(ports) == 3 and ports[0] == "ports", "services did not start: %r" % ports)
        self.serve_argv = [self.r.agent_bin, "serve", "--config", self.dir_a,
                           "--expose", "down=127.0.0.1:%s" % ports[1],
                           "--expose", "up=127.0.0.1:%s" % ports[2]] + trust + list(serve_args)
        self.serve = self.start_serve()
        self.pair = self.start_pair("pair", self.dir_b, FWD_DOWN, FWD_UP, pair_args)
        # The path before the fault, for the table if the case fails later.
        try:
            self.observe()
        except TestFailure:
            pass

    def start_serve(self, name="serve"):
        proc = self.net.start(name, self.host_a, self.serve_argv, env=self.env)
        self.agents_run.append(proc)
        proc.wait_line("serving as " + self.id_a, timeout=30)
        return proc

    def start_pair(self, name, config, down, up, extra=()):
        t0 = time.monotonic()
        proc = self.net.start(name, self.host_b,
                              [self.r.agent_bin, "pair", self.id_a, "--config", config,
                               "-L", "%d:down" % down, "-L", "%d:up" % up] + list(extra),
                              env=self.env)
        self.agents_run.append(proc)
        m = proc.wait_line(self.rx(self.t.RE_TUNNEL_UP, self.id_a) + "|" + self.t.RE_AGENT_ERROR,
                           timeout=60)
        check(m.group(0).startswith("tunnel up: "), "%s failed: %s" % (name, m.group(0)))
        self.result.setdefault("connect_ms", round((time.monotonic() - t0) * 1000))
        proc.wait_line("forwarding 127.0.0.1:%d -> up" % up, timeout=30)
        return proc

    def stream(self, seconds, timeout, down=FWD_DOWN, up=FWD_UP, name="stream"):
        return Stream(self, self.host_b, down, up, seconds, timeout, name)

    def lines_now(self, proc):
        with proc.cond:
            return len(proc.lines)

    def wait_new(self, proc, pattern, start, timeout, accept=None):
        """The first line of proc after its first start lines that matches
        pattern (and accept(match), if given); fails after timeout."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = start
        with proc.cond:
            while True:
                for line in proc.lines[seen:]:
                    m = rx.search(line)
                    if m and (accept is None or accept(m)):
                        return m
                seen = len(proc.lines)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TestFailure("%s: no line matching %r within %.0f s"
                                      % (proc.name, pattern, timeout))
                if proc.proc.poll() is not None and not proc.reader.is_alive():
                    raise TestFailure("%s exited (%s) without a line matching %r"
                                      % (proc.name, proc.proc.returncode, pattern))
                proc.cond.wait(min(left, 0.5))

    def check_running(self, *procs):
        for p in procs:
            check(p.proc.poll() is None, "%s exited (%s); it should keep running"
                  % (p.name, p.proc.returncode))

    def kill(self, proc):
        """SIGKILL, and wait until it is gone."""
        self.killed.append(proc)
        proc.proc.kill()
        proc.proc.wait(10)
        check(proc.proc.poll() is not None, "%s did not die" % proc.name)

    def listening(self, ns, addr, port, proto="u"):
        """Sockets in ns bound to addr:port (ss)."""
        out = natlab.run(self.net.exec_argv(ns, ["ss", "-Hln" + proto, "src",
                                                 "%s:%d" % (addr, port)]))
        return [l for l in out.splitlines() if l.strip()]

    def signal_clients(self):
        """Addresses with an established connection to the signaling server."""
        out = natlab.run(self.net.exec_argv(self.net.inet, [
            "ss", "-Htn", "state", "established", "( sport = :%d )" % self.t.SIGNAL_PORT]))
        return {l.split()[-1].rsplit(":", 1)[0] for l in out.splitlines() if l.strip()}

    # ---- faults ----

    def cut_b(self):
        """B's whole link: every packet from and to B's address, between
        the sites (forward) and to and from the servers (input, output)."""
        self.net.bridge_block(["ip saddr %s" % HOST_B_IP, "ip daddr %s" % HOST_B_IP],
                              hooks=("forward", "input", "output"))
        return time.monotonic()

    def end_block(self, key, sides):
        """Lifts the block after checking that each of its rules dropped
        something (sides: {name: a word in the rule}); returns the time."""
        counts = self.net.bridge_counters()
        self.net.bridge_unblock()
        t_end = time.monotonic()
        dropped = {side: sum(n for rule, n in counts.items() if word in rule)
                   for side, word in sides.items()}
        self.note(key, dropped, "the block dropped %s" % dropped)
        check(all(dropped.values()), "the block dropped nothing in some direction: %r"
              % counts)
        return t_end

    # ---- what the stream saw ----

    def check_intact(self, res, what="the stream"):
        d, u = res["down"], res["up"]
        ans = u.get("answer") or {}
        check(d["ending"] == "eof" and d["bytes"] == res["size"]
              and d["sha256"] == d["expected"]
              and u["ending"] == "answer" and ans.get("bytes") == res["size"]
              and ans.get("sha256") == u["expected"],
              "%s is not intact: %s%s" % (what, describe(res),
                                          "" if d["sha256"] == d["expected"]
                                          or d["bytes"] != res["size"]
                                          else " (download hash differs)"))

    def check_reset(self, res):
        """A stream cut by the fault must end with a reset or an error on the
        client's side, never with a clean end and bytes missing."""
        d, u = res["down"], res["up"]
        self.note("stream_ending", {"down": d["ending"], "up": u["ending"]},
                  "the cut stream ended: %s" % describe(res))
        for side, ending in (("download", d["ending"]), ("upload", u["ending"])):
            check(ending.startswith("reset") or ending.startswith("error"),
                  "the %s ended with %r, not a reset: %s" % (side, ending, describe(res)))

    def recovery(self, res, t, key, bound, window):
        """Records and bounds the time from t to data flowing again."""
        arr = arrival_lists(res)
        per = {side: recovery_after(times, t, window) for side, times in arr.items()}
        gaps = {side: round(largest_gap(times), 3) for side, times in arr.items()}
        self.result["largest_gap_s"] = gaps
        check(None not in per.values(), "no data arrived after the fault in some direction "
              "(%r): the stream ended too early" % per)
        worst = round(max(per.values()), 2)
        self.note(key, worst, "data again %.2f s after the fault (down %.2f s, up %.2f s); "
                  "largest gaps %r s" % (worst, per["down"], per["up"], gaps))
        check(worst <= bound, "data flowed again only %.1f s after the fault (bound %d s)"
              % (worst, bound))
        return worst

    def arrivals_between(self, res, t0, t1):
        return sum(1 for times in arrival_lists(res).values() for x in times if t0 <= x <= t1)

    # ---- the end ----

    def observe(self):
        """The path in use now, on both sides, into the result (like
        test_nat's plain cases), and whether it is the expected one."""
        t = self.t
        cpath = t.final_path(self.pair, self.id_a)
        spath = t.final_path(self.serve, self.id_b)
        check(cpath is not None and spath is not None, "no path printed (pair: %s, serve: %s)"
              % (cpath, spath))
        path, transport = t.observed_outcome(cpath, spath)
        self.result["observed"] = {"path": path, "transport": transport,
                                   "client": cpath["line"], "server": spath["line"]}
        self.result["path_changes"] = sum("path changed:" in l
                                          for l in self.pair.text().splitlines())
        return cpath, spath

    def finish(self, expected):
        # The two sides print their path changes a moment apart: give the
        # other side the time test_nat gives a plain case to settle.
        deadline = time.monotonic() + self.t.SETTLE_S
        while True:
            cpath, spath = self.observe()
            obs = (self.result["observed"]["path"], self.result["observed"]["transport"])
            if obs == expected or time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        check(obs == expected, "expected %s over %s at the end, got %s over %s (pair: %s)"
              % (expected[0], expected[1], obs[0], obs[1], cpath["line"]))
        # Each program still running ends cleanly on SIGTERM (exit 0: under
        # the sanitizers, no leak or error report either).
        # Pairs first (stopping serve first ends their tunnels: exit 1).
        procs = [p for p in self.agents_run[::-1] + [self.r.signal_proc]
                 + getattr(self.r, "relay_procs", [self.r.relay_proc])
                 if p not in self.killed]
        for proc in procs:
            proc.signal(signal.SIGTERM)
            code = proc.wait_exit(30)
            check(code == 0, "%s exited %d on SIGTERM" % (proc.name, code))


# ---- the cases ----

def cut(f, seconds):
    """cut-5s, cut-60s: B's whole link cut during a paced transfer; the
    stream survives it, intact, and flows again soon after the cut ends
    (target 1 s)."""
    f.agents(*f.two_sites("none", "none"))
    s = f.stream(PRE_S + seconds + POST_S, timeout=seconds + 60)
    s.wait_flowing()
    time.sleep(PRE_S)
    t_cut = f.cut_b()
    time.sleep(seconds)
    t_end = f.end_block("cut_dropped", {"from_b": "saddr", "to_b": "daddr"})
    res = s.result(seconds + POST_S + 180)
    during = f.arrivals_between(res, t_cut + 1, t_end)
    f.note("arrivals_during_cut", during, "%d arrivals during the cut" % during)
    check(during == 0, "data arrived during the cut: the cut did not cut")
    f.check_intact(res)
    f.recovery(res, t_end, "recovery_s", RECOVERY_BOUND_S, window=RECOVERY_BOUND_S)
    f.check_running(f.pair, f.serve)
    f.finish(DIRECT)


def hold_exceeded(f, hold=HOLD_S, cut_s=HOLD_CUT_S):
    """hold-exceeded: both agents hold streams for HOLD_S (hold-default:
    the default, not given); B's link is cut for longer. The stream is
    reset (not ended cleanly short), pair says the peer went away and keeps
    running, reconnects once the link is back, and a new connection
    through the same -L carries data intact."""
    out = natlab.run([f.r.agent_bin, "pair", "--help"], check_rc=False)
    check(f.t.HOLD_OPTION in out, "p2ptun-agent pair has no %s option (issue 15 not landed)"
          % f.t.HOLD_OPTION)
    hold = [] if hold == HOLD_DEFAULT_S else [f.t.HOLD_OPTION, str(hold)]
    f.agents(*f.two_sites("none", "none"), serve_args=hold, pair_args=hold)
    s = f.stream(PRE_S + cut_s + POST_S, timeout=cut_s + 60)
    s.wait_flowing()
    time.sleep(PRE_S)
    n0 = f.lines_now(f.pair)
    t_cut = f.cut_b()
    m = f.wait_new(f.pair, f.rx(f.t.RE_WENT_AWAY, f.id_a), n0, cut_s - 1)
    f.note("went_away_after_s", round(time.monotonic() - t_cut, 1),
           "pair gave the peer up %.1f s into the cut: %s" % (time.monotonic() - t_cut,
                                                               m.group(0)))
    time.sleep(max(0.0, t_cut + cut_s - time.monotonic()))
    t_end = f.end_block("cut_dropped", {"from_b": "saddr", "to_b": "daddr"})
    f.check_running(f.pair)
    res = s.result(120)
    f.check_reset(res)
    m = f.wait_new(f.pair, f.rx(f.t.RE_RECONNECTED, f.id_a), n0, RECONNECT_BOUND_S)
    f.note("reconnected_s", round(time.monotonic() - t_end, 1),
           "pair reconnected %.1f s after the link came back: %s"
           % (time.monotonic() - t_end, m.group(0)))
    again = f.stream(2, timeout=60, name="new stream").result(120)
    f.check_intact(again, "the new connection's stream")
    f.finish(DIRECT)


def direct_cut(f):
    """direct-cut: only the UDP between the two hosts is dropped for
    DIRECT_CUT_S; the servers stay reachable. The tunnel moves to the
    relay (target 2 s), and back to a direct pair after the cut; the
    stream across both moves is intact."""
    f.agents(*f.two_sites("none", "none"))
    s = f.stream(PRE_S + DIRECT_CUT_S + POST_S, timeout=DIRECT_CUT_S + 60)
    s.wait_flowing()
    time.sleep(PRE_S)
    n0 = f.lines_now(f.pair)
    f.net.bridge_block(["ip saddr %s ip daddr %s meta l4proto udp" % (HOST_A_IP, HOST_B_IP),
                        "ip saddr %s ip daddr %s meta l4proto udp" % (HOST_B_IP, HOST_A_IP)])
    t_cut = time.monotonic()
    relayed = f.rx(f.t.RE_PATH_CHANGED, f.id_a)
    try:
        m = f.wait_new(f.pair, relayed, n0, DIRECT_CUT_S - 1,
                       accept=lambda m: m.group(1) == "relayed")
    except TestFailure as e:
        # The block's counters first: a failure should say whether it cut.
        f.end_block("cut_dropped", {"a_to_b": "saddr %s" % HOST_A_IP,
                                    "b_to_a": "saddr %s" % HOST_B_IP})
        raise e
    to_relay = time.monotonic() - t_cut
    f.note("to_relay_s", round(to_relay, 1), "on the relay %.1f s after the cut: %s"
           % (to_relay, m.group(0)))
    time.sleep(max(0.0, t_cut + DIRECT_CUT_S - time.monotonic()))
    n1 = f.lines_now(f.pair)
    t_end = f.end_block("cut_dropped", {"a_to_b": "saddr %s" % HOST_A_IP,
                                        "b_to_a": "saddr %s" % HOST_B_IP})
    check(to_relay <= TO_RELAY_BOUND_S, "the tunnel moved to the relay only %.1f s after the "
          "cut (bound %d s)" % (to_relay, TO_RELAY_BOUND_S))
    m = f.wait_new(f.pair, relayed, n1, BACK_TO_DIRECT_BOUND_S + 15,
                   accept=lambda m: m.group(1) == "direct")
    back = time.monotonic() - t_end
    f.note("back_to_direct_s", round(back, 1), "direct again %.1f s after the cut ended: %s"
           % (back, m.group(0)))
    check(back <= BACK_TO_DIRECT_BOUND_S, "direct again only %.1f s after the cut (bound %d s)"
          % (back, BACK_TO_DIRECT_BOUND_S))
    res = s.result(180)
    f.check_intact(res)
    gaps = {side: round(largest_gap(t), 2) for side, t in arrival_lists(res).items()}
    f.note("largest_gap_s", gaps, "largest gaps in the stream: %r s" % gaps)
    f.finish(DIRECT)


def nat_rebind(f):
    """nat-rebind: B's NAT router loses its mappings mid-transfer (its
    outside ports change); the tunnel finds the peer again (target 1 s),
    the stream is intact."""
    if not natlab.has_conntrack():
        raise natlab.TestSkip("nat-rebind needs the conntrack tool (package conntrack)")
    f.agents(*f.two_sites("portrestricted", "portrestricted"))
    s = f.stream(PRE_S + POST_S, timeout=60)
    s.wait_flowing()
    time.sleep(PRE_S)
    before = f.net.nat_ports(2, "10.2.0.2")
    check(before, "no UDP mapping of B's in its router before the rebinding")
    f.net.rebind(2, REBIND_PORTS)
    t_end = time.monotonic()
    after = set()
    deadline = t_end + 5
    while not after and time.monotonic() < deadline:
        time.sleep(0.2)
        after = f.net.nat_ports(2, "10.2.0.2")
    f.note("nat_ports", {"before": sorted(before), "after": sorted(after)},
           "B's outside UDP ports: %s before, %s after" % (sorted(before), sorted(after)))
    check(after and not (before & after), "the rebinding did not give B new outside ports")
    res = s.result(120)
    f.check_intact(res)
    f.recovery(res, t_end, "recovery_s", RECOVERY_BOUND_S, window=RECOVERY_BOUND_S)
    f.finish(DIRECT)


def roam(f):
    """roam: B (two interfaces, the second on site 3's LAN, down) moves
    mid-transfer from site 2 to site 3; the tunnel follows (target 2 s),
    the stream is intact, and the path in use names B's new address."""
    host_a, host_b = f.two_sites("portrestricted", "portrestricted")
    f.net.site(3, "portrestricted", join=(host_b, "eth1"))
    r3 = f.net.routers[3][0]
    f.agents(host_a, host_b)
    s = f.stream(PRE_S + POST_S + ROAM_BOUND_S, timeout=40)
    s.wait_flowing()
    time.sleep(PRE_S)
    n0 = f.lines_now(f.pair)
    rx_before = f.net.link_rx_packets(r3, "lan")
    f.net.roam(host_b, "eth0", "eth1", "10.3.0.2/24", "10.3.0.1")
    t_move = time.monotonic()
    # The lab: B has the new address only, its default route through
    # site 3, and reaches the servers from there.
    addrs = natlab.run(["ip", "-n", host_b, "-4", "-o", "addr", "show"])
    route = natlab.run(["ip", "-n", host_b, "route", "show", "default"])
    check("10.3.0.2/24" in addrs and "10.2.0.2" not in addrs and "via 10.3.0.1" in route,
          "B did not move: %s %s" % (addrs, route))
    natlab.run(f.net.exec_argv(host_b, [sys.executable, "-c",
                                        "import socket; socket.create_connection(('%s', %d), 5)"
                                        % (SERVERS_IP, f.t.SIGNAL_PORT)]))
    res = s.result(120)
    rx = f.net.link_rx_packets(r3, "lan") - rx_before
    f.note("site3_rx_packets", rx, "site 3's router got %d packets from B after the move" % rx)
    f.check_intact(res)
    f.recovery(res, t_move, "recovery_s", ROAM_BOUND_S, window=ROAM_BOUND_S)
    cpath, spath = f.observe()
    new = ("10.3.0.2", "203.0.113.13")
    moved = (cpath["local"].rsplit(":", 1)[0] in new or spath["remote"].rsplit(":", 1)[0] in new)
    check(moved and f.lines_now(f.pair) > n0 and cpath["line"] in "\n".join(
        f.pair.lines[n0:]), "the path in use does not name B's new address (pair: %s; "
        "serve: %s)" % (cpath["line"], spath["line"]))
    f.finish(DIRECT)


def relay_failover(f):
    """relay-failover: both agents --relay-only, two relays handed out;
    the relay that pair's side of the path uses is killed mid-transfer;
    the tunnel moves to the other one (target 5 s), stream intact."""
    f.net.internet()
    natlab.run(["ip", "-n", f.net.inet, "addr", "add", SECOND_RELAY_IP + "/24", "dev", "br0"])
    host_a = f.net.site(1, "none")[0][0]
    host_b = f.net.site(2, "none")[0][0]
    f.agents(host_a, host_b, serve_args=["--relay-only"], pair_args=["--relay-only"],
             relay_ips=[SERVERS_IP, SECOND_RELAY_IP])
    relays = {SERVERS_IP: f.r.relay_proc,
              SECOND_RELAY_IP: [p for p in f.net.procs if p.name == "relay2"][0]}
    f.r.relay_procs = list(relays.values())
    s = f.stream(PRE_S + POST_S + RELAY_FAILOVER_BOUND_S, timeout=60)
    s.wait_flowing()
    time.sleep(PRE_S)
    # The path in use now (the agents may have moved between the relays
    # since the tunnel came up).
    n0 = f.lines_now(f.pair)
    cpath = f.t.final_path(f.pair, f.id_a)
    check(cpath and cpath["local_type"] == "relay", "pair's path is not through a relay: %s"
          % (cpath and cpath["line"]))
    ip = cpath["local"].rsplit(":", 1)[0]
    check(ip in relays, "pair's relay %s is none of ours" % ip)
    f.kill(relays[ip])
    t_kill = time.monotonic()
    check(not f.listening(f.net.inet, ip, f.t.RELAY_PORT),
          "something still listens on the killed relay's %s:%d" % (ip, f.t.RELAY_PORT))
    f.note("relay_killed", ip, "killed the relay on %s (%s)" % (ip, cpath["line"]))
    m = f.wait_new(f.pair, f.rx(f.t.RE_PATH_CHANGED, f.id_a) + "|"
                   + f.rx(f.t.RE_RECONNECTED, f.id_a), n0, RELAY_FAILOVER_BOUND_S + 15,
                   accept=lambda m: ip + ":" not in m.group(0))
    moved = time.monotonic() - t_kill
    f.note("relay_moved_s", round(moved, 1), "on the other relay %.1f s after the kill: %s"
           % (moved, m.group(0)))
    check(moved <= RELAY_FAILOVER_BOUND_S, "moved only %.1f s after the kill (bound %d s)"
          % (moved, RELAY_FAILOVER_BOUND_S))
    res = s.result(120)
    f.check_intact(res)
    f.recovery(res, t_kill, "recovery_s", RELAY_FAILOVER_BOUND_S, RELAY_FAILOVER_BOUND_S)
    cpath, spath = f.observe()
    check(ip + ":" not in cpath["line"] + spath["line"], "a path through the killed relay is "
          "still in use (pair: %s; serve: %s)" % (cpath["line"], spath["line"]))
    f.finish(RELAY_UDP)


def signal_restart(f):
    """signal-restart: the signaling server is killed (SIGKILL) during a
    transfer, which completes intact, then started again on the same
    address, port and state dir (same URL and pin); both agents come back
    to it by themselves, and a third agent C pairs with A through it
    without A restarting."""
    f.agents(*f.two_sites("portrestricted", "portrestricted"), third=True)
    s = f.stream(PRE_S + POST_S, timeout=60)
    s.wait_flowing()
    time.sleep(PRE_S)
    n_a, n_b = f.lines_now(f.serve), f.lines_now(f.pair)
    old = f.r.signal_proc
    f.kill(old)
    check(not f.listening(f.net.inet, SERVERS_IP, f.t.SIGNAL_PORT, "t"),
          "something still listens on the signaling server's port")
    mid = s.proc.poll() is None
    f.note("signal_killed_mid_transfer", mid, "p2ptun-signal killed (SIGKILL) %s the transfer"
           % ("during" if mid else "after"))
    res = s.result(120)
    f.check_intact(res)
    url, pin = f.r.start_signal(f.net, f.r.secret_file, os.path.join(f.tmp, "signal"))
    t_restart = time.monotonic()
    check((url, pin) == (f.r.signal_url, f.r.signal_pin), "the restarted signaling server "
          "has another URL or pin: %s %s (was %s %s)" % (url, pin, f.r.signal_url,
                                                          f.r.signal_pin))
    # Back: each site has a connection to the new server (the agent's
    # "reachable again" line comes only when its first long-poll ends).
    back = {}
    sides = {"serve": HOST_A_IP, "pair": HOST_B_IP}
    while len(back) < len(sides):
        clients = f.signal_clients()
        for side, ip in sides.items():
            if side not in back and ip in clients:
                back[side] = round(time.monotonic() - t_restart, 1)
        check(time.monotonic() - t_restart < SIGNAL_BACK_BOUND_S, "not every agent came "
              "back to the signaling server within %d s: %r" % (SIGNAL_BACK_BOUND_S, back))
        time.sleep(0.2)
    back = {side: back[side] for side in ("pair", "serve")}
    f.note("signal_back_s", back, "the agents were back on the signaling server after %r s"
           % back)
    serve_pid = f.serve.proc.pid
    f.start_pair("pair-c", f.dir_c, FWD_C_DOWN, FWD_C_UP)
    again = f.stream(2, timeout=60, down=FWD_C_DOWN, up=FWD_C_UP, name="C's stream").result(120)
    f.check_intact(again, "C's stream")
    check(f.serve.proc.pid == serve_pid, "serve was restarted")
    f.check_running(f.serve, f.pair)
    for proc, n in ((f.pair, n_b), (f.serve, n_a)):
        said = [l for l in proc.lines[n:]
                if "p2ptun-agent:" in l and re.search(f.t.RE_SIGNAL_BACK, l)]
        sys.stderr.write("%s: %s\n" % (proc.name, said[0] if said else "no line about the "
                                        "signaling server being back"))
    f.finish(DIRECT)


def serve_restart(f):
    """serve-restart: the serving agent is killed (SIGKILL) mid-transfer
    and started again with the same config; pair keeps running, says the
    peer went away, reconnects by itself, and a new connection through its
    -L carries data intact. The cut stream was reset, not ended short."""
    f.agents(*f.two_sites("portrestricted", "portrestricted"))
    s = f.stream(PRE_S + 20, timeout=60)
    s.wait_flowing()
    time.sleep(PRE_S)
    n0 = f.lines_now(f.pair)
    f.kill(f.serve)
    t_kill = time.monotonic()
    f.note("serve_killed_mid_transfer", s.proc.poll() is None, "serve killed (SIGKILL)")
    f.serve = f.start_serve("serve2")
    m = f.wait_new(f.pair, f.rx(f.t.RE_WENT_AWAY, f.id_a), n0, SERVE_RESTART_BOUND_S)
    f.note("went_away_after_s", round(time.monotonic() - t_kill, 1),
           "pair: %s" % m.group(0))
    m = f.wait_new(f.pair, f.rx(f.t.RE_RECONNECTED, f.id_a), n0, SERVE_RESTART_BOUND_S)
    took = time.monotonic() - t_kill
    f.note("reconnected_s", round(took, 1), "pair reconnected %.1f s after the kill: %s"
           % (took, m.group(0)))
    check(took <= SERVE_RESTART_BOUND_S, "reconnected only %.1f s after the kill (bound %d s)"
          % (took, SERVE_RESTART_BOUND_S))
    f.check_running(f.pair)
    res = s.result(120)
    f.check_reset(res)
    again = f.stream(2, timeout=60, name="new stream").result(120)
    f.check_intact(again, "the new connection's stream")
    f.finish(DIRECT)


RUN = {
    "cut-5s": lambda f: cut(f, CUT_SHORT_S),
    "cut-60s": lambda f: cut(f, CUT_LONG_S),
    "cut-180s": lambda f: cut(f, CUT_FIGURE_S),
    "hold-exceeded": hold_exceeded,
    "hold-default": lambda f: hold_exceeded(f, HOLD_DEFAULT_S, HOLD_DEFAULT_CUT_S),
    "direct-cut": direct_cut,
    "nat-rebind": nat_rebind,
    "roam": roam,
    "relay-failover": relay_failover,
    "signal-restart": signal_restart,
    "serve-restart": serve_restart,
}


def run(runner, net, tmp, t):
    """Runs fault case runner.case.name in net; streams still running at
    the end are killed (net.close() removes the rest)."""
    f = Fault(runner, net, tmp, t)
    try:
        RUN[runner.case.name](f)
    finally:
        for s in f.streams:
            s.kill()
