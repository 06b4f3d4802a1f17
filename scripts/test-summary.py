#!/usr/bin/env python3
"""Counts results in meson test logs (testlog.json, one JSON object a line) and
prints the plain summary line "N passed, N failed, N skipped". Skipped tests
are listed with the reason they printed. Exit 1 if anything failed or no test
ran. A test found again in a later log (the package build that
./scripts/test --packages runs after the suite skipped it) counts once, with
its last result."""
import json
import sys

passed = failed = skipped = 0
notes = []
results = {}
for path in sys.argv[1:]:
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError as e:
        print("cannot read %s: %s" % (path, e), file=sys.stderr)
        failed += 1
        continue
    build = path.split("/")[0]
    for line in lines:
        if not line.strip():
            continue
        t = json.loads(line)
        name = "%s: %s" % (build, t.get("name"))
        results[(name, tuple(t.get("suite") or ()))] = t
for (name, _), t in results.items():
    result = t.get("result")
    if result in ("OK", "EXPECTEDFAIL"):
        passed += 1
    elif result == "SKIP":
        skipped += 1
        why = [l for l in (t.get("stdout") or "").splitlines() if "skip" in l.lower()]
        notes.append("skipped %s: %s" % (name, why[-1] if why else "(no reason printed)"))
    else:
        failed += 1
        notes.append("FAILED %s (%s)" % (name, result))
for n in notes:
    print(n)
if passed + failed + skipped == 0:
    failed = 1
    print("no test ran")
print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
sys.exit(1 if failed else 0)
