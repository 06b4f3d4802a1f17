"""TAP output of a test script made of named cases (meson's protocol 'tap')."""


def finish(outcomes, log=""):
    """Prints the plan and one line per (ok, name, why), then log (the tail of
    a server's stderr) when a case failed; returns the exit status."""
    print("1..%d" % len(outcomes))
    for i, (ok, name, why) in enumerate(outcomes, 1):
        print("%s %d - %s" % ("ok" if ok else "not ok", i, name))
        if not ok:
            print("# " + why.replace("\n", "\n# "))
    passed = all(ok for ok, _, _ in outcomes)
    if not passed and log:
        print("# relay stderr:\n# " + log.replace("\n", "\n# "))
    return 0 if passed else 1
