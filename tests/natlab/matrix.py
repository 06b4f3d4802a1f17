#!/usr/bin/env python3
"""Prints the NAT matrix from the results the natlab cases wrote
(RESULTS_DIR/CASE.json): NAT A x NAT B -> path/transport and connect time,
with every case that did not get what it should, then writes
RESULTS_DIR/../matrix.json (all results) and RESULTS_DIR/../matrix.md (the
table, in markdown, for the README).

usage: matrix.py [RESULTS_DIR]   (default: build-test/tests/natlab/results)
Exit code 0 when there were results to show (failed cases included: meson
counts those), 1 when there were none."""

import glob
import json
import os
import sys

from natlab import NAT_LABELS, NAT_TYPES


def load(results):
    out = {}
    for path in sorted(glob.glob(os.path.join(results, "*.json"))):
        try:
            with open(path) as f:
                r = json.load(f)
            out[r["case"]] = r
        except (OSError, ValueError, KeyError) as e:
            sys.stderr.write("%s: %s\n" % (path, e))
    return out


def cell(r):
    """One case in a few words: "direct udp 2.1 s", "FAIL: relayed tcp ..."."""
    if r is None:
        return "not run"
    if r["status"] == "skip":
        return "skipped"
    obs = r.get("observed")
    if obs is None:
        return "FAIL (no tunnel; expected %s %s)" % (r["expected"]["path"],
                                                  r["expected"]["transport"])
    text = "%s %s" % (obs["path"], obs["transport"])
    if "connect_ms" in r:
        text += ", %.1f s" % (r["connect_ms"] / 1000.0)
    if r["status"] != "pass":
        exp = r["expected"]
        if (obs["path"], obs["transport"]) != (exp["path"], exp["transport"]):
            text = "FAIL: %s (expected %s %s)" % (text, exp["path"], exp["transport"])
        else:
            text = "FAIL: %s" % text
    return text


def seconds(key):
    """A detail: the number of seconds the case recorded under key."""
    return lambda r: "%s s" % r.get(key, "-")


def details(*parts):
    """Several details: (label, key) pairs, each "label N s"; a key whose
    value is a dict shows it as "a / b"."""
    def show(r):
        out = []
        for label, key in parts:
            v = r.get(key, "-")
            if isinstance(v, dict):
                v = " / ".join(str(x) for x in v.values())
            out.append("%s %s s" % (label, v) if label else "%s s" % v)
        return "; ".join(out)
    return show


def packet_sizes(r):
    sizes = r.get("packet_size") or {}
    return "%s / %s bytes" % (sizes.get("client", "-"), sizes.get("server", "-"))


# The cases beside the matrix: (case, what it is, the detail shown after
# its path, or None).
OTHER_CASES = [
    ("same-lan", "both hosts behind one port-restricted NAT (same LAN)", None),
    ("portrestricted-cgnat", "port-restricted against CGNAT (a home NAT behind a carrier NAT)",
     None),
    ("relay-to-direct", "two public hosts, direct UDP blocked until the tunnel is up on the "
     "relay, then let through with a stream open (path after the move)", None),
    ("one-way-block", "two public hosts, UDP from A to B dropped until ICE's checks are over, "
     "then let through (path after the move; seconds to it)", seconds("direct_after_s")),
    ("relay-shortcut", "public against UDP blocked, the public host's UDP to the relay's "
     "allocations dropped until ICE's checks are over, then let through (path after the move "
     "from relay-to-relay to host-to-relay; seconds to it)", seconds("shortcut_after_s")),
    ("signal-cut", "two port-restricted NATs, the pairing site's TCP to the signaling server "
     "dropped (dead connections given up after)", seconds("signal_cut_noticed_s")),
    ("signal-killed", "two port-restricted NATs, the signaling server killed (SIGKILL) in the "
     "middle of a 64 MiB transfer", None),
    ("loopback-relay", "relay and signaling server on loopback, both agents on that machine "
     "(which has another interface too) forced through the relay, no --local-address", None),
    ("small-mtu", "two port-restricted NATs, site A's internet link carries 1400-byte packets "
     "(packet size path MTU discovery found: pair / serve)", packet_sizes),
    # Staying connected (faults.py): the time from the fault's end (or the
    # move) to data flowing again, and what else each case measured.
    ("cut-5s", "two public hosts, B's whole link cut for 5 s during a paced transfer "
     "(data again after)", seconds("recovery_s")),
    ("cut-60s", "two public hosts, B's whole link cut for 60 s during a paced transfer "
     "(data again after)", seconds("recovery_s")),
    ("hold-exceeded", "--hold 20, B's link cut for 30 s: stream reset, pair reconnects, a new "
     "connection works (peer given up after; reconnected after the cut)",
     details(("", "went_away_after_s"), ("", "reconnected_s"))),
    ("direct-cut", "two public hosts, only their direct UDP cut for 40 s (on the relay after; "
     "direct again after the cut)", details(("", "to_relay_s"), ("", "back_to_direct_s"))),
    ("nat-rebind", "two port-restricted NATs, B's NAT forgets its mappings mid-transfer (data "
     "again after)", seconds("recovery_s")),
    ("roam", "B moves mid-transfer to another LAN behind another NAT (data again after)",
     seconds("recovery_s")),
    ("relay-failover", "--relay-only with two relays, the one in use killed mid-transfer "
     "(on the other relay after; data again after)",
     details(("", "relay_moved_s"), ("", "recovery_s"))),
    ("signal-restart", "the signaling server killed mid-transfer and restarted; a third agent "
     "pairs (agents back on it after: pair / serve)", details(("", "signal_back_s"))),
    ("serve-restart", "the serving agent killed mid-transfer and restarted (pair reconnected "
     "after)", seconds("reconnected_s")),
    # The media leg (media.py).
    ("media-srtp", "an RTP stream through -M between two public hosts, captured between the "
     "sites: SRTP, decrypted by libsrtp2 with the key log (packets captured)",
     lambda r: "%s SRTP packets" % r.get("srtp_packets_captured", "-")),
    ("media-relay-to-direct", "an RTP stream through -M, started on the relay and moved to the "
     "direct pair mid-stream (frames lost at the move)",
     lambda r: "%s of 1000" % r.get("media_frames_missing_at_move", "-")),
]


def table(results):
    """The matrix as markdown lines: the upper triangle of NAT A x NAT B,
    then the other cases."""
    head = ["NAT A \\ NAT B"] + [NAT_LABELS[t] for t in NAT_TYPES]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, a in enumerate(NAT_TYPES):
        row = [NAT_LABELS[a]]
        for j, b in enumerate(NAT_TYPES):
            row.append(cell(results.get("%s-%s" % (a, b))) if j >= i else "")
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append("| other case | path |")
    lines.append("|---|---|")
    for case, what, detail in OTHER_CASES:
        r = results.get(case)
        text = cell(r)
        if detail is not None:
            text += " (%s)" % detail(r or {})
        lines.append("| %s | %s |" % (what, text))
    return lines


def main(argv):
    results_dir = argv[1] if len(argv) > 1 else os.path.join("build-test", "tests", "natlab",
                                                             "results")
    results = load(results_dir)
    if not results:
        sys.stderr.write("no natlab results in %s\n" % results_dir)
        return 1
    lines = table(results)
    print("NAT matrix (A serves, B pairs; path/transport in use after 8 MiB each way; "
          "time from starting pair to tunnel up)")
    print("\n".join(lines))
    print("\n%-32s %-8s %-15s %-15s %9s %9s %9s  %s" % (
        "case", "status", "expected", "observed", "connect", "MiB/s", "packets", "pair's path"))
    for name in sorted(results):
        r = results[name]
        obs = r.get("observed") or {}
        size = (r.get("packet_size") or {}).get("client")
        print("%-32s %-8s %-15s %-15s %9s %9s %9s  %s" % (
            name, r["status"], "%s %s" % (r["expected"]["path"], r["expected"]["transport"]),
            "%s %s" % (obs["path"], obs["transport"]) if obs else "-",
            "%d ms" % r["connect_ms"] if "connect_ms" in r else "-",
            "%.1f" % r["mib_per_s"] if "mib_per_s" in r else "-",
            size if size else "-", obs.get("client", "-")))
    counts = {}
    for r in results.values():
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    print("\n%d cases: %d passed, %d failed, %d skipped"
          % (len(results), counts.get("pass", 0), counts.get("fail", 0), counts.get("skip", 0)))
    for name in sorted(results):
        r = results[name]
        if r["status"] == "fail":
            print("  %s: %s" % (name, r.get("reason", "no reason recorded")))
        elif r["status"] == "skip":
            print("  %s skipped: %s" % (name, r.get("reason", "")))
    out_dir = os.path.dirname(os.path.abspath(results_dir))
    with open(os.path.join(out_dir, "matrix.json"), "w") as f:
        json.dump({"cases": [results[k] for k in sorted(results)]}, f, indent=1,
                  sort_keys=True)
        f.write("\n")
    with open(os.path.join(out_dir, "matrix.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    # The cases' own exit codes already count in meson's summary.
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
