"""The Debian packages (issue 19): debian/ builds with `dpkg-buildpackage -b
-us -uc` in a temporary copy of the source tree (its unit suite run by
dh_auto_test), every expected binary package comes out, and lintian reports
no error (its warnings are printed). The .deb files are kept in
BUILD_DIR/packages.

Usage: test_packages.py SOURCE_DIR BUILD_DIR VERSION. Exit 77 (skipped) with
the reason unless P2PTUN_PACKAGES=1 (./scripts/test --packages), or when a
tool is missing. Python standard library only."""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

PACKAGES = ["p2ptun-agent", "p2ptun-signal", "p2ptun-relay", "libp2ptun0",
            "libp2ptun-dev", "gir1.2-p2ptun-0"]


def skip(why):
    print("skipped: %s" % why)
    sys.exit(77)


def fail(why):
    print("FAIL: %s" % why)
    sys.exit(1)


def copy_tree(source, dest):
    """The files git knows of, or would (untracked but not ignored); no build
    directories."""
    if shutil.which("git") and subprocess.run(
            ["git", "-C", source, "rev-parse"], capture_output=True).returncode == 0:
        out = subprocess.run(["git", "-C", source, "ls-files", "-z", "--cached", "--others",
                              "--exclude-standard"], check=True, capture_output=True).stdout
        for rel in out.decode().split("\0"):
            if not rel or not os.path.lexists(os.path.join(source, rel)):
                continue
            os.makedirs(os.path.join(dest, os.path.dirname(rel)), exist_ok=True)
            shutil.copy2(os.path.join(source, rel), os.path.join(dest, rel), follow_symlinks=False)
    else:
        shutil.copytree(source, dest, symlinks=True, ignore=shutil.ignore_patterns(
            "build*", "obj-*", ".git", "__pycache__", "*.pyc"))


def main():
    source, build, version = sys.argv[1:4]
    if os.environ.get("P2PTUN_PACKAGES") != "1":
        skip("package build runs with ./scripts/test --packages")
    for tool, package in [("dpkg-buildpackage", "dpkg-dev"), ("dh", "debhelper"),
                          ("lintian", "lintian"), ("fakeroot", "fakeroot")]:
        if shutil.which(tool) is None:
            skip("%s is missing (Debian package %s; scripts/deps.sh installs it)" % (tool, package))

    # The packages' version is the project's.
    with open(os.path.join(source, "debian", "changelog")) as f:
        m = re.match(r"p2ptun \(([^)]+)\)", f.readline())
    deb_version = m.group(1) if m else "?"
    if deb_version.split("-")[0] != version:
        fail("debian/changelog is at %s, meson.build at %s" % (deb_version, version))

    with tempfile.TemporaryDirectory(prefix="p2ptun-deb-") as tmp:
        tree = os.path.join(tmp, "p2ptun-" + version)
        copy_tree(source, tree)
        env = dict(os.environ)
        env.setdefault("DEB_BUILD_OPTIONS", "parallel=1")
        for var in ("P2PTUN_PACKAGES", "MESON_TEST_ITERATION", "MALLOC_PERTURB_"):
            env.pop(var, None)
        start = time.monotonic()
        r = subprocess.run(["dpkg-buildpackage", "-b", "-us", "-uc"], cwd=tree, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        took = time.monotonic() - start
        if r.returncode != 0:
            print(r.stdout[-20000:])
            fail("dpkg-buildpackage -b -us -uc exited %d after %.0f s" % (r.returncode, took))
        print("dpkg-buildpackage -b -us -uc: %.0f s" % took)

        debs = sorted(glob.glob(os.path.join(tmp, "*.deb")))
        names = {os.path.basename(d).split("_")[0] for d in debs}
        missing = [p for p in PACKAGES if p not in names]
        if missing:
            fail("no package %s among %s" % (", ".join(missing), sorted(names)))
        changes = glob.glob(os.path.join(tmp, "*.changes"))
        if len(changes) != 1:
            fail("expected one .changes file, found %s" % changes)

        kept = os.path.join(build, "packages")
        shutil.rmtree(kept, ignore_errors=True)
        os.makedirs(kept)
        for f in debs + changes + glob.glob(os.path.join(tmp, "*.buildinfo")):
            shutil.copy2(f, kept)
        print("packages in %s: %s" % (kept, ", ".join(os.path.basename(d) for d in debs)))

        lint = subprocess.run(["lintian", "--fail-on", "error", "--display-info",
                               "--tag-display-limit", "0", changes[0]],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        tags = [l for l in lint.stdout.splitlines() if re.match(r"[EWIPX]: ", l)]
        errors = [l for l in tags if l.startswith("E: ")]
        warnings = [l for l in tags if l.startswith("W: ")]
        print("lintian: %d errors, %d warnings, %d other tags" % (
            len(errors), len(warnings), len(tags) - len(errors) - len(warnings)))
        for line in lint.stdout.splitlines():
            print("  " + line)
        if errors or lint.returncode != 0:
            fail("lintian reports errors (exit %d)" % lint.returncode)
    print("ok: %d packages built, lintian without errors" % len(debs))


if __name__ == "__main__":
    main()
