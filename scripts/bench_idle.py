"""`scripts/bench --only idle`: what an idle tunnel costs, and whether memory
comes back after load.

With fresh serve and pair agents and the tunnel up:
 1. idle: over IDLE_S seconds with keepalives only, each agent's wake-ups per
    second (the times its threads were scheduled in: /proc/PID/task/*/schedstat),
    CPU %, and at the end VmRSS and anonymous memory (/proc/PID/smaps_rollup);
 2. load: STREAMS streams at once through the forwarded port, each a
    STREAM_BYTES download; VmRSS and anonymous memory at the peak;
 3. after: SETTLE_S seconds after the last stream closed, the same again.
Targets (printed, not asserted): <= 5 wake-ups/s and VmRSS <= 12 MiB idle;
after load, within idle + 25 %.  Loopback only.
"""

import os
import socket
import struct
import threading
import time

IDLE_S = 20
# After the tunnel came up: libnice checks the remaining candidate pairs
# for about 5 s (a timer every Ta, 10 ms: agent/path/path.c); idle starts
# after that.
SETTLE_UP_S = 8
STREAMS = 200
STREAM_BYTES = 1 << 20
SETTLE_S = 10
WAKEUPS_TARGET = 5.0
RSS_TARGET_MIB = 12.0
AFTER_LOAD_MARGIN = 1.25


def wakeups(pid):
    """Times the process's threads were scheduled in, in all."""
    total = 0
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                    total += int(f.read().split()[2])
            except (OSError, IndexError, ValueError):
                pass
    except OSError:
        return None
    return total


def memory(pid):
    """{"rss_MiB", "pss_MiB", "anon_MiB"} from smaps_rollup, or None.  Pss
    shares each shared page among the processes that map it."""
    out = {}
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Rss:"):
                    out["rss_MiB"] = round(int(line.split()[1]) / 1024, 1)
                elif line.startswith("Pss:"):
                    out["pss_MiB"] = round(int(line.split()[1]) / 1024, 1)
                elif line.startswith("Anonymous:"):
                    out["anon_MiB"] = round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return out


def idle_window(cpu_s, pids, seconds):
    """{role: {"wakeups_per_s", "cpu_pct"}} over seconds of doing nothing;
    cpu_s(pid) reads a process's CPU time."""
    w0 = {r: wakeups(p) for r, p in pids.items()}
    c0 = {r: cpu_s(p) for r, p in pids.items()}
    t0 = time.monotonic()
    time.sleep(seconds)
    dt = time.monotonic() - t0
    out = {}
    for r, p in pids.items():
        w1, c1 = wakeups(p), cpu_s(p)
        if None in (w0[r], w1, c0[r], c1):
            out[r] = None
            continue
        out[r] = {"wakeups_per_s": round((w1 - w0[r]) / dt, 2),
                  "cpu_pct": round(100 * (c1 - c0[r]) / dt, 3)}
    return out


def one_download(port, n, errors, lock):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
            s.sendall(b"D" + struct.pack("!Q", n))
            got = 0
            while got < n:
                k = len(s.recv(65536))
                if k == 0:
                    break
                got += k
            if got != n:
                with lock:
                    errors.append("a stream got %d of %d bytes" % (got, n))
    except OSError as e:
        with lock:
            errors.append("a stream failed: %s" % e)


def load(port, pids):
    """STREAMS downloads at once; the peak memory seen while they run."""
    errors, lock = [], threading.Lock()
    threads = [threading.Thread(target=one_download, args=(port, STREAM_BYTES, errors, lock),
                                daemon=True) for _ in range(STREAMS)]
    peak = {r: {"rss_MiB": 0, "pss_MiB": 0, "anon_MiB": 0} for r in pids}
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120
    while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
        for r, p in pids.items():
            m = memory(p)
            if m:
                for k in peak[r]:
                    peak[r][k] = max(peak[r][k], m.get(k, 0))
        time.sleep(0.05)
    for t in threads:
        t.join(1)
    if any(t.is_alive() for t in threads):
        errors.append("streams still open after 120 s")
    return peak, errors


def libs_only_memory(bench):
    """memory() of agent/bench/libsonly, which loads the agent's libraries and
    does nothing: the part of VmRSS no code of ours decides."""
    proc = None
    try:
        proc = bench.spawn_anchor("libsonly", [bench.libsonly_bin])
        proc.wait_for(r"^ready$", 10, "out")
        return memory(proc.pid)
    except RuntimeError as e:
        bench.problem("idle part: libsonly: %s" % e)
        return None
    finally:
        if proc:
            proc.stop()


def run(bench, port, pids):
    """pids: {"serve": pid, "pair": pid} of agents with a tunnel up and port
    forwarded to the bench's data service."""
    time.sleep(SETTLE_UP_S)  # ICE finishes its checks (about 50 wake-ups/s until then)
    res = {"idle_s": IDLE_S, "streams": STREAMS, "stream_bytes": STREAM_BYTES,
           "settle_s": SETTLE_S}
    res["idle"] = idle_window(bench.cpu_s, pids, IDLE_S)
    res["idle_memory"] = {r: memory(p) for r, p in pids.items()}
    res["libs_only_memory"] = libs_only_memory(bench)
    res["load_memory"], errors = load(port, pids)
    time.sleep(SETTLE_S)
    res["after_memory"] = {r: memory(p) for r, p in pids.items()}
    res["errors"] = errors
    for e in errors[:5]:
        bench.problem("idle part: %s" % e)
    return res


def report(res, say):
    say("idle tunnel (%d s, keepalives only), then %d streams of %d KiB at once, then %d s:"
        % (res["idle_s"], res["streams"], res["stream_bytes"] // 1024, res["settle_s"]))
    say("  %-34s %14s %14s" % ("", "serve agent", "pair agent"))

    def cell(d, k):
        return "-" if not d or d.get(k) is None else d[k]

    for label, key in (("wake-ups per second", "wakeups_per_s"), ("CPU %", "cpu_pct")):
        say("  %-34s %14s %14s" % (label, cell(res["idle"].get("serve"), key),
                                   cell(res["idle"].get("pair"), key)))
    for label, part in (("idle", "idle_memory"), ("peak under load", "load_memory"),
                        ("%d s after the load" % res["settle_s"], "after_memory")):
        for k, name in (("rss_MiB", "VmRSS MiB"), ("pss_MiB", "Pss MiB"),
                        ("anon_MiB", "anonymous MiB")):
            say("  %-34s %14s %14s" % ("%s, %s" % (label, name), cell(res[part].get("serve"), k),
                                       cell(res[part].get("pair"), k)))
    verdicts = []
    for r in ("serve", "pair"):
        idle, mem, after = res["idle"].get(r), res["idle_memory"].get(r), res["after_memory"].get(r)
        if not (idle and mem and after):
            continue
        verdicts.append("%s: %s wake-ups/s (target <= %g), VmRSS %s MiB (target <= %g), "
                        "after load %s MiB (target <= %.1f)"
                        % (r, idle["wakeups_per_s"], WAKEUPS_TARGET, mem["rss_MiB"],
                           RSS_TARGET_MIB, after["rss_MiB"],
                           AFTER_LOAD_MARGIN * mem["rss_MiB"]))
    for v in verdicts:
        say("  " + v)
    base = res.get("libs_only_memory")
    if base:
        say("  anchor: a program that only loads the same libraries (agent/bench/libsonly): "
            "VmRSS %s MiB, Pss %s MiB, anonymous %s MiB"
            % (base["rss_MiB"], base["pss_MiB"], base["anon_MiB"]))
