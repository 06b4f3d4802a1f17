#!/usr/bin/env python3
"""The figures of the staying-connected faults (README, NAT matrix): runs
each fault case of faults.py RUNS times, one after the other, in the NAT
lab of test_nat.py, and prints the median (and range) of what each case
measured: the time from the fault ending (or the move, or the kill) to data
flowing again, and the other times the case records. Not a test: the
suite's cases assert generous bounds; these are the targets' figures.

usage: figures.py BUILD_DIR [RUNS] [CASE ...]
  (default: 5 runs of cut-5s cut-60s direct-cut nat-rebind roam
   relay-failover signal-restart serve-restart; cut-180s and hold-default,
   which take 3 and 11 minutes, only when named)
Needs root, like the suite; each run cleans up after itself."""

import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CASES = ["cut-5s", "cut-60s", "direct-cut", "nat-rebind", "roam", "relay-failover",
                 "signal-restart", "serve-restart"]
# What each case measured, in seconds, in the order the table shows them.
KEYS = {
    "cut-5s": ["recovery_s"],
    "cut-60s": ["recovery_s"],
    "cut-180s": ["recovery_s"],
    "direct-cut": ["to_relay_s", "back_to_direct_s", "largest_gap_s"],
    "nat-rebind": ["recovery_s"],
    "roam": ["recovery_s"],
    "relay-failover": ["relay_moved_s", "recovery_s"],
    "signal-restart": ["signal_back_s"],
    "serve-restart": ["reconnected_s"],
    "hold-default": ["went_away_after_s", "reconnected_s"],
}
# Each run's own time limit (the longest case is hold-default).
RUN_TIMEOUT_S = 1200


def number(value):
    """A measurement as one number: the worse direction of a per-direction
    dict, the pair's side of a per-agent one."""
    if isinstance(value, dict):
        if "pair" in value:
            return value["pair"]
        return max(value.values())
    return value


def run_case(build, case, results):
    proc = subprocess.run([sys.executable, os.path.join(HERE, "test_nat.py"), build, results,
                           case], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          timeout=RUN_TIMEOUT_S)
    with open(os.path.join(results, case + ".json")) as f:
        result = json.load(f)
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:]
        sys.stderr.write("%s: failed: %s\n" % (case, tail[0] if tail else "?"))
    return result


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    build = os.path.abspath(argv[1])
    runs = int(argv[2]) if len(argv) > 2 else 5
    cases = argv[3:] or DEFAULT_CASES
    rows = []
    for case in cases:
        values = {key: [] for key in KEYS[case]}
        failures = 0
        for i in range(runs):
            with tempfile.TemporaryDirectory(prefix="p2ptun-figures-") as results:
                r = run_case(build, case, results)
            failures += r["status"] != "pass"
            for key in values:
                if key in r:
                    values[key].append(number(r[key]))
            sys.stderr.write("%s run %d: %s %s\n" % (case, i + 1, r["status"],
                                                    {k: r.get(k) for k in values}))
        cells = []
        for key, v in values.items():
            if v:
                cells.append("%s %.2f s (%.2f to %.2f)" % (key, statistics.median(v), min(v),
                                                          max(v)))
            else:
                cells.append("%s -" % key)
        rows.append("| %s | %d of %d | %s |" % (case, runs - failures, runs, "; ".join(cells)))
    print("| case | passed | median (min to max) |")
    print("|---|---|---|")
    for row in rows:
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
