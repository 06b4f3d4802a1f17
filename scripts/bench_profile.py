"""`scripts/bench --profile`: where the agents spend a single-stream transfer.

Three more downloads through a tunnel that is already up, one per view, so
that no view distorts another:

 1. perf record (cpu-clock) on both agents: the share of CPU by library
    (p2ptun, libcrypto, libnice, GLib, libc, kernel) and the top symbols;
 2. perf trace -s on both agents: system calls per MiB by name, and the mean
    datagram size the receiving agent read (payload bytes per successful
    recvmsg: libnice reads one datagram per call); with it, malloc() calls
    per MiB (a uprobe on libc's malloc, removed afterwards);
 3. no tool attached: CPU-seconds per GiB for each agent.

perf must be installed (Debian: linux-perf); the profile is skipped with the
reason otherwise.  Loopback only, like the rest of the bench.
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

GiB = 1 << 30
MiB = 1 << 20

# How a DSO's file name maps to the groups the report shows.
GROUPS = (
    ("kernel", re.compile(r"^\[kernel|^\[vdso\]")),
    ("p2ptun", re.compile(r"p2ptun")),
    ("libcrypto", re.compile(r"libcrypto|libssl")),
    ("libnice", re.compile(r"libnice")),
    ("GLib", re.compile(r"libglib|libgio|libgobject|libgmodule")),
    ("libc", re.compile(r"^libc[.-]|^ld-linux")),
)
GROUP_NAMES = [g for g, _ in GROUPS] + ["other"]
# The system calls the report names; the rest are summed as "other".
SYSCALLS = ("sendmsg", "sendmmsg", "sendto", "recvmsg", "recvmmsg", "recvfrom", "read",
            "write", "writev", "readv", "poll", "ppoll", "epoll_wait", "futex")


def dso_group(dso):
    base = os.path.basename(dso)
    for name, rx in GROUPS:
        if rx.search(base) or rx.search(dso):
            return name
    return "other"


class Attached:
    """A perf process attached to one PID until stop()."""

    def __init__(self, argv, out):
        self.out = out
        self.log = open(out + ".log", "w")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        time.sleep(0.5)  # perf attaches before the transfer starts
        if self.p.poll() is not None:
            self.log.close()
            with open(out + ".log") as f:
                raise RuntimeError("%s failed: %s" % (argv[0], f.read()[-500:]))

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
            try:
                self.p.wait(60)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        self.log.close()


def perf_shares(data):
    """{group: percent} and [(percent, dso, symbol)] of a perf.data file."""
    r = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children",
                        "--sort", "dso,sym", "--percent-limit", "0"],
                       capture_output=True, text=True, timeout=300)
    groups = dict.fromkeys(GROUP_NAMES, 0.0)
    top = []
    for line in r.stdout.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*)$", line)
        if not m:
            continue
        pct, dso, sym = float(m.group(1)), m.group(2), m.group(3).strip()
        groups[dso_group(dso)] += pct
        top.append((pct, dso, sym))
    top.sort(reverse=True)
    return groups, top


def trace_counts(log):
    """{syscall: (calls, errors)} from a `perf trace -s` summary."""
    counts = {}
    with open(log) as f:
        for line in f:
            m = re.match(r"\s+(\w+)\s+(\d+)\s+(\d+)\s+[\d.]+", line)
            if m:
                c, e = counts.get(m.group(1), (0, 0))
                counts[m.group(1)] = (c + int(m.group(2)), e + int(m.group(3)))
    return counts


def libc_of(pid):
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            path = line.split()[-1]
            if os.path.basename(path).startswith("libc.so"):
                return path
    return None


class MallocProbe:
    """A uprobe on libc's malloc while it lives (perf probe; root)."""

    EVENT = "probe_libc:malloc"

    def __init__(self, pid):
        libc = libc_of(pid)
        if libc is None:
            raise RuntimeError("no libc mapped in PID %d" % pid)
        subprocess.run(["perf", "probe", "-q", "-d", self.EVENT], capture_output=True, timeout=30)
        r = subprocess.run(["perf", "probe", "-q", "-x", libc, "malloc"], capture_output=True,
                           text=True, timeout=60)
        if r.returncode:
            raise RuntimeError("perf probe on malloc: %s" % r.stderr.strip()[-300:])

    def close(self):
        subprocess.run(["perf", "probe", "-q", "-d", self.EVENT], capture_output=True, timeout=30)


def malloc_count(log):
    with open(log) as f:
        for line in f:
            m = re.match(r"\s*([\d,]+)\s+probe_libc:malloc", line)
            if m:
                return int(m.group(1).replace(",", ""))
    return None


def run(bench, download, lport, agents, n):
    """agents: {"sender": pid, "receiver": pid} for a download (the serving
    agent sends).  Returns the profile as a dict; raises RuntimeError."""
    if not shutil.which("perf"):
        raise RuntimeError("perf is not installed (apt-get install linux-perf)")
    work = tempfile.mkdtemp(prefix="profile.", dir=bench.work)
    a = bench.args
    out = {"bytes": n, "agents": {}}

    def transfer(what):
        r = download(lport, n, a.idle_timeout, max(60, a.timeout))
        if not r["ok"]:
            raise RuntimeError("download for the %s failed: %s" % (what, r.get("error")))
        return r

    # 1. CPU by library.
    recs = {role: Attached(["perf", "record", "-e", "cpu-clock", "-F", "1999", "-p", str(pid),
                            "-o", os.path.join(work, role + ".data")],
                           os.path.join(work, role + ".record"))
            for role, pid in agents.items()}
    try:
        transfer("perf record")
    finally:
        for x in recs.values():
            x.stop()
    for role in agents:
        groups, top = perf_shares(os.path.join(work, role + ".data"))
        out["agents"][role] = {"cpu_share_pct": {g: round(v, 1) for g, v in groups.items()},
                               "top": [{"pct": p, "dso": os.path.basename(d), "symbol": s}
                                       for p, d, s in top[:8]]}
    # 2. System calls, and malloc() calls.
    probe = None
    try:
        probe = MallocProbe(next(iter(agents.values())))
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        out["malloc_skipped"] = str(e)
    traces = {role: Attached(["perf", "trace", "-s", "-p", str(pid),
                              "-o", os.path.join(work, role + ".trace")],
                             os.path.join(work, role + ".tracer"))
              for role, pid in agents.items()}
    if probe:
        traces.update({role + "-malloc": Attached(
            ["perf", "stat", "-e", MallocProbe.EVENT, "-p", str(pid),
             "-o", os.path.join(work, role + ".malloc")], os.path.join(work, role + ".mstat"))
            for role, pid in agents.items()})
    try:
        transfer("perf trace")
    finally:
        for x in traces.values():
            x.stop()
        if probe:
            probe.close()
    if probe:
        for role in agents:
            c = malloc_count(os.path.join(work, role + ".malloc"))
            out["agents"][role]["malloc_per_mib"] = (round(c / (n / MiB), 1)
                                                      if c is not None else None)
    for role in agents:
        counts = trace_counts(os.path.join(work, role + ".trace"))
        per_mib = {}
        other = 0
        for name, (calls, _) in counts.items():
            if name in SYSCALLS:
                per_mib[name] = round(calls / (n / MiB), 1)
            else:
                other += calls
        per_mib["other"] = round(other / (n / MiB), 1)
        out["agents"][role]["syscalls_per_mib"] = per_mib
        if role == "receiver":
            calls, errors = counts.get("recvmsg", (0, 0))
            reads = calls - errors
            out["mean_datagram_bytes"] = round(n / reads) if reads > 0 else None
    # 3. CPU time, nothing attached.
    before = {role: bench.cpu_s(pid) for role, pid in agents.items()}
    transfer("CPU time")
    for role, pid in agents.items():
        after = bench.cpu_s(pid)
        if before[role] is not None and after is not None:
            out["agents"][role]["cpu_s_per_gib"] = round((after - before[role]) / (n / GiB), 2)
    return out


def report(prof, say):
    """Print the profile as tables."""
    ag = prof["agents"]
    roles = ("sender", "receiver")
    say("profile of a %d MiB download (serve agent sends, pair agent receives):"
        % (prof["bytes"] // MiB))
    say("  %-34s %12s %12s" % ("share of CPU", "sender", "receiver"))
    for g in GROUP_NAMES:
        say("  %-34s %11.1f%% %11.1f%%" % (g, ag["sender"]["cpu_share_pct"][g],
                                          ag["receiver"]["cpu_share_pct"][g]))
    say("  %-34s %12s %12s" % ("CPU-seconds per GiB", ag["sender"].get("cpu_s_per_gib", "-"),
                               ag["receiver"].get("cpu_s_per_gib", "-")))
    names = [s for s in SYSCALLS + ("other",)
             if any(ag[r]["syscalls_per_mib"].get(s) for r in roles)]
    say("  system calls per MiB")
    for s in names:
        say("    %-32s %12s %12s" % (s, ag["sender"]["syscalls_per_mib"].get(s, 0),
                                     ag["receiver"]["syscalls_per_mib"].get(s, 0)))
    say("  %-34s %12s %12s" % ("malloc() calls per MiB", ag["sender"].get("malloc_per_mib", "-"),
                               ag["receiver"].get("malloc_per_mib", "-")))
    if prof.get("malloc_skipped"):
        say("  (malloc not counted: %s)" % prof["malloc_skipped"])
    say("  mean datagram read by the receiver: %s bytes" % prof.get("mean_datagram_bytes"))
    for r in roles:
        say("  top symbols, %s:" % r)
        for t in ag[r]["top"]:
            say("    %5.1f%%  %-22s %s" % (t["pct"], t["dso"][:22], t["symbol"][:60]))
