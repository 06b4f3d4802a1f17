"""The relay measured on its own (scripts/bench --only relay-load; issue 16).

p2ptun-relay and coturn (its default relay threads, and --relay-threads 1)
are driven by the same load generator, the build's relay/bench/turnload: N
allocations over UDP with TURN REST credentials from one secret, a channel on
each bound to the generator's own peer socket, then ChannelData at a fixed
rate for a fixed time, client -> relay -> peer, counted per allocation at the
peer.  For N = 1, 100 and 1000 allocations it finds the highest offered rate
with at most 0.1 % loss: doubling from RAMP_START until a step fails, then a
few bisection steps, every step bounded in time.  Around every step it reads
the relay's utime+stime from /proc/PID/stat (all its threads), which gives

  CPU-s per Mpkt   relay CPU seconds per million packets relayed, and
  pps per core     packets relayed per relay CPU second (1e6 / CPU-s per Mpkt)

at the highest lossless rate, and CPU-s per Mpkt again at one common fixed
rate (--relay-load-rate) for a like-for-like comparison.  The generator runs
on the same two cores as the relay (one thread: paced sendmmsg and the
peer's recvmmsg take turns), which is why CPU per packet is compared, and
coturn also with one relay thread.  The rate of a step is what the
generator achieved (packets received over the sending time): when it was not
scheduled in time it skips slots rather than burst.  When it reaches less
than 80 % of the offered rate the ramp stops there, and the highest rate is
marked ">=": the generator, not the relay, set that ceiling.

Target printed beside the figures (not asserted): p2ptun-relay's packets/s
per core >= 1.5 x coturn's, at <= 0.1 % loss.
"""

import os
import re
import subprocess

LOSS_MAX = 0.001            # 0.1 %
TARGET_PER_CORE = 1.5       # p2ptun-relay / coturn, packets per CPU second
RAMP_START = 25000          # packets/s
RAMP_MAX = 1600000
BISECT_STEPS = 3
BISECT_STOP = 1.08          # bad/good ratio at which bisection stops
GENERATOR_KEPT_UP = 0.97    # share of the slots sent for "kept up"
GENERATOR_SATURATED = 0.8   # share of the slots under which the ramp stops
SETUP_TIMEOUT = 120.0       # allocations, seconds
STEP_SLACK = 15.0           # seconds beyond the step's length for its result
PAYLOAD = 100               # ChannelData payload bytes
RELAYS = (
    ("p2ptun-relay", "p2ptun-relay"),
    ("coturn", "coturn (default threads)"),
    ("coturn-1", "coturn --relay-threads 1"),
)
RESULT_RE = r"^result run=\d+ "


def add_arguments(ap):
    ap.add_argument("--relay-load-allocations", default="1,100,1000", metavar="LIST",
                    help="relay-load: allocation counts, comma-separated (default 1,100,1000)")
    ap.add_argument("--relay-load-seconds", type=float, default=2.0, metavar="S",
                    help="relay-load: length of one fixed-rate step (default 2)")
    ap.add_argument("--relay-load-rate", type=int, default=50000, metavar="PPS",
                    help="relay-load: the common rate for CPU-s per Mpkt (default 50000)")


def check_arguments(ap, args):
    try:
        counts = [int(x) for x in args.relay_load_allocations.split(",")]
    except ValueError:
        ap.error("--relay-load-allocations: comma-separated numbers")
    if not counts or min(counts) < 1 or max(counts) > 10000:
        ap.error("--relay-load-allocations: 1 to 10000 each")
    if not 0.2 <= args.relay_load_seconds <= 30:
        ap.error("--relay-load-seconds: 0.2 to 30")
    if not 1000 <= args.relay_load_rate <= 5000000:
        ap.error("--relay-load-rate: 1000 to 5000000")
    args.relay_load_counts = counts


def wait_line(proc, regex, start, timeout):
    """(index, match) of the first line of proc's stdout from index start on
    that matches regex; RuntimeError on timeout or exit."""
    rx = re.compile(regex)
    deadline = proc.bench.clock() + timeout
    i = start
    with proc.cond:
        while True:
            while i < len(proc.lines):
                _, tag, line = proc.lines[i]
                i += 1
                if tag == "out":
                    m = rx.search(line)
                    if m:
                        return i, m
            left = deadline - proc.bench.clock()
            if left <= 0:
                raise RuntimeError("%s: no line matching %r within %.0f s; output:\n%s"
                                   % (proc.name, regex, timeout, proc.tail()))
            if proc.p.poll() is not None and not any(r.is_alive() for r in proc.readers):
                raise RuntimeError("%s exited (status %s); output:\n%s"
                                   % (proc.name, proc.p.returncode, proc.tail()))
            proc.cond.wait(min(left, 0.05))


def parse_result(line):
    return {k: int(v) for k, v in re.findall(r"(\w+)=(-?\d+)", line)}


class Generator:
    """One turnload process with its allocations on one relay."""

    def __init__(self, bench, relay_name, relay_pid, port, secret_file, n):
        self.bench = bench
        self.relay_pid = relay_pid
        self.proc = bench.spawn("turnload-%s-%d" % (relay_name, n), [
            bench.turnload_bin, "--server", "127.0.0.1:%d" % port, "--secret-file",
            secret_file, "--allocations", str(n), "--size", str(PAYLOAD),
            "--name", "load%d" % n], stdin=subprocess.PIPE)
        self.mark, m = wait_line(self.proc, r"^ready allocations=(\d+) setup_ms=(\d+)", 0,
                                 SETUP_TIMEOUT)
        self.setup_ms = int(m.group(2))

    def step(self, rate, seconds):
        """Offers rate packets/s for seconds; returns the result with the relay's
        and the generator's CPU seconds over the step."""
        ms = max(1, int(seconds * 1000))
        c0 = self.bench.cpu_s(self.relay_pid)
        g0 = self.bench.cpu_s(self.proc.pid)
        self.proc.p.stdin.write("run %d %d\n" % (rate, ms))
        self.proc.p.stdin.flush()
        self.mark, m = wait_line(self.proc, RESULT_RE + ".*", self.mark,
                                 seconds + STEP_SLACK)
        c1 = self.bench.cpu_s(self.relay_pid)
        g1 = self.bench.cpu_s(self.proc.pid)
        if c0 is None or c1 is None:
            raise RuntimeError("the relay (pid %d) is gone" % self.relay_pid)
        r = parse_result(m.group(0))
        r["relay_cpu_s"] = round(c1 - c0, 3)
        r["generator_cpu_s"] = round(g1 - g0, 3) if g0 is not None and g1 is not None else None
        r["loss"] = (r["lost"] / r["sent"]) if r["sent"] else 1.0
        r["generator_kept_up"] = r["sent"] >= GENERATOR_KEPT_UP * r["slots"]
        r["ok"] = r["sent"] > 0 and r["loss"] <= LOSS_MAX
        r["pps"] = round(r["received"] / (r["send_ns"] / 1e9)) if r["send_ns"] else 0
        r["cpu_s_per_mpkt"] = (round(r["relay_cpu_s"] / r["received"] * 1e6, 3)
                               if r["received"] else None)
        return r

    def close(self):
        """quit: the generator releases its allocations and exits."""
        try:
            self.proc.p.stdin.write("quit\n")
            self.proc.p.stdin.close()
        except (OSError, ValueError):
            pass
        try:
            self.proc.p.wait(20)
        except subprocess.TimeoutExpired:
            pass
        return self.proc.stop()


def describe(r):
    t = r["send_ns"] / 1e9 or 1.0
    gen = r["generator_cpu_s"]
    return ("%7d pps offered: %7d pps relayed, %8d lost (%.3f %%)%s; CPU: relay %.2f, "
            "generator %s core"
            % (r["rate"], r["pps"], r["lost"], 100.0 * r["loss"],
               "" if r["generator_kept_up"] else ", generator behind (%d slots skipped)"
               % r["skipped"], r["relay_cpu_s"] / t, "-" if gen is None else "%.2f" % (gen / t)))


def search(bench, gen, seconds, say):
    """The highest rate with <= 0.1 % loss: doubling, then bisection.  A step
    with loss is tried once more (the cores are shared with whatever else the
    machine runs; a stall of tens of ms overflows any socket buffer) and the
    second try counts.  Returns (best step or None, every step,
    limited_by_generator)."""
    steps = []

    def trial(rate):
        r = gen.step(rate, seconds)
        steps.append(r)
        say("    " + describe(r))
        if r["ok"]:
            return r
        r = gen.step(rate, seconds)
        steps.append(r)
        say("    " + describe(r) + " (again)")
        return r

    good, bad, best = None, None, None
    limited = False
    rate = RAMP_START
    while rate <= RAMP_MAX:
        r = trial(rate)
        if not r["ok"]:
            bad = r
            break
        good = r
        if best is None or r["pps"] > best["pps"]:
            best = r
        if r["sent"] < GENERATOR_SATURATED * r["slots"]:
            limited = True
            break
        rate *= 2
    for _ in range(BISECT_STEPS):
        if bad is None:
            break
        lo = good["rate"] if good else 0
        if lo and bad["rate"] / lo <= BISECT_STOP:
            break
        mid = int((lo + bad["rate"]) / 2)
        if mid < 1000:
            break
        r = trial(mid)
        if r["ok"]:
            good = r
            if best is None or r["pps"] > best["pps"]:
                best = r
        else:
            bad = r
    return best, steps, limited


def summary(good, common, limited):
    out = {"max_pps": None, "cpu_s_per_mpkt_at_max": None, "pps_per_core": None,
           "limited_by_generator": limited}
    if good:
        out["max_pps"] = good["pps"]
        out["offered_pps"] = good["rate"]
        out["cpu_s_per_mpkt_at_max"] = good["cpu_s_per_mpkt"]
        if good["relay_cpu_s"] > 0:
            out["pps_per_core"] = round(good["received"] / good["relay_cpu_s"])
    if common:
        out["common_rate"] = common["rate"]
        out["cpu_s_per_mpkt_at_common"] = common["cpu_s_per_mpkt"]
        out["common_loss_percent"] = round(100.0 * common["loss"], 4)
    return out


def start_relay(bench, key, secret, secret_file, max_alloc):
    """(pid, port) of a fresh relay of kind key."""
    if key == "p2ptun-relay":
        port, _ = bench.start_p2ptun_relay(secret_file, extra=(
            "--max-allocations", str(max_alloc),
            "--max-allocations-per-address", str(max_alloc)))
        return [p for p in bench.procs if p.name == "p2ptun-relay"][-1].pid, port
    extra = ("--relay-threads=1",) if key == "coturn-1" else ()
    port = bench.start_coturn(secret, name=key, span=max_alloc, extra=extra)
    return [p for p in bench.procs if p.name == key][-1].pid, port


def stop_relay(bench, key):
    for p in list(bench.procs):
        if p.name == key:
            if p.p.poll() is not None:
                bench.problem("%s exited (status %s) during the run:\n%s"
                              % (key, p.p.returncode, p.tail()))
            prob = p.stop()
            if prob:
                bench.problem(prob)


def run(bench):
    """Fills bench.res["relay_load"]."""
    a = bench.args
    counts = a.relay_load_counts
    seconds = a.relay_load_seconds
    say = bench.say
    say("== relay load: ChannelData of %d bytes, client -> relay -> peer, %g s steps, "
        "allocations %s" % (PAYLOAD, seconds, ",".join(map(str, counts))))
    res = bench.res["relay_load"] = {
        "payload_bytes": PAYLOAD, "step_seconds": seconds, "loss_max_percent": 100 * LOSS_MAX,
        "common_rate": a.relay_load_rate, "allocations": counts, "relays": {},
        "target_pps_per_core_ratio": TARGET_PER_CORE}
    if not os.access(bench.turnload_bin, os.X_OK):
        bench.problem("relay-load: %s is missing" % bench.turnload_bin)
        res["error"] = "turnload missing"
        return
    secret, secret_file = bench.write_turn_secret()
    for key, label in RELAYS:
        out = res["relays"][key] = {"label": label}
        if key != "p2ptun-relay" and not os.access(bench.turnserver, os.X_OK):
            out["skipped"] = "coturn's %s is not installed" % bench.turnserver
            say("  %s: skipped: %s" % (label, out["skipped"]))
            continue
        try:
            # Room for the allocations of a generator that could not release
            # its own (they expire) besides the next one's.
            pid, port = start_relay(bench, key, secret, secret_file, 4 * max(counts) + 100)
        except RuntimeError as e:
            bench.problem("relay-load %s: %s" % (label, e))
            out["error"] = str(e).splitlines()[0]
            continue
        try:
            for n in counts:
                gen = None
                say("  %s, %d allocation%s" % (label, n, "" if n == 1 else "s"))
                try:
                    gen = Generator(bench, key, pid, port, secret_file, n)
                    # Every allocation must relay: a few packets each, no loss.
                    w = gen.step(max(2000, 4 * n), 0.5)
                    if w["lost"] or w["min_alloc_received"] < 1:
                        bench.problem("relay-load %s, %d allocations: warm-up lost %d of %d "
                                      "(fewest at one allocation: %d)"
                                      % (label, n, w["lost"], w["sent"],
                                         w["min_alloc_received"]))
                    good, steps, limited = search(bench, gen, seconds, say)
                    common = gen.step(a.relay_load_rate, seconds)
                    say("    common rate: " + describe(common))
                    s = summary(good, common, limited)
                    s["setup_ms"] = gen.setup_ms
                    s["steps"] = steps
                    out[str(n)] = s
                except RuntimeError as e:
                    bench.problem("relay-load %s, %d allocations: %s" % (label, n, e))
                    out[str(n)] = {"error": str(e).splitlines()[0]}
                finally:
                    if gen:
                        prob = gen.close()
                        if prob:
                            bench.problem(prob)
        finally:
            stop_relay(bench, key)
    ratios = res["ratios"] = {}
    for n in counts:
        p = res["relays"]["p2ptun-relay"].get(str(n), {})
        for key in ("coturn", "coturn-1"):
            c = res["relays"].get(key, {}).get(str(n), {})
            if p.get("pps_per_core") and c.get("pps_per_core"):
                ratios["%d %s" % (n, key)] = round(p["pps_per_core"] / c["pps_per_core"], 2)


def report_lines(res, rule):
    """The table for Bench.report()."""
    if not res or "error" in res:
        return ["relay load: error: %s" % (res or {}).get("error", "not run"), "-" * rule]

    def num(x, fmt):
        return "-" if x is None else fmt % x

    lines = ["relay load: ChannelData %d B, client -> relay -> peer on loopback, %g s steps; "
             "max = highest" % (res["payload_bytes"], res["step_seconds"]),
             "rate with <= %.1f %% loss; CPU = relay utime+stime; pps/core = packets per "
             "relay CPU-second" % res["loss_max_percent"],
             "%-26s %6s %10s %13s %10s %16s" % ("relay", "allocs", "max pps", "CPU-s/Mpkt",
                                               "pps/core", "CPU-s/Mpkt @%dk"
                                               % (res["common_rate"] // 1000))]
    for key, label in RELAYS:
        r = res["relays"].get(key, {})
        if "skipped" in r or "error" in r:
            lines.append("%-26s %s" % (label, r.get("skipped") or "error: " + r["error"][:50]))
            continue
        for n in res["allocations"]:
            s = r.get(str(n), {})
            if "error" in s:
                lines.append("%-26s %6d error: %s" % (label, n, s["error"][:44]))
                continue
            mx = num(s.get("max_pps"), "%d")
            if s.get("limited_by_generator") and s.get("max_pps"):
                mx = ">=" + mx
            common = num(s.get("cpu_s_per_mpkt_at_common"), "%.2f")
            if s.get("common_loss_percent", 0) > res["loss_max_percent"]:
                common += " (%.1f %% lost)" % s["common_loss_percent"]
            lines.append("%-26s %6d %10s %13s %10s %16s" % (
                label, n, mx, num(s.get("cpu_s_per_mpkt_at_max"), "%.2f"),
                num(s.get("pps_per_core"), "%d"), common))
    ratios = res.get("ratios", {})
    for n in res["allocations"]:
        cells = []
        met = []
        for key, name in (("coturn", "default"), ("coturn-1", "1 thread")):
            x = ratios.get("%d %s" % (n, key))
            cells.append("%s vs coturn %s" % ("-" if x is None else "%.2fx" % x, name))
            if x is not None:
                met.append(x >= res["target_pps_per_core_ratio"])
        verdict = ("met" if met and all(met) else "NOT met") if met else "-"
        lines.append("  %4d allocs: p2ptun-relay pps/core %s; target >= %.1fx: %s"
                     % (n, ", ".join(cells), res["target_pps_per_core_ratio"], verdict))
    lines.append("-" * rule)
    return lines
