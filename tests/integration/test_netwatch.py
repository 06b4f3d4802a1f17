"""Runs agent/test-netwatch (the network watch against the real kernel) in a
network namespace of its own, p2ptun-nw-PID-RAND, and removes the namespace
afterwards, also when the test fails or is interrupted. A namespace left by a
killed run (its PID gone) is removed by the next run.

Exits 77 (skipped) when this machine cannot host it: not root, no ip(8), or
no network namespaces. Python standard library only.

Usage: test_netwatch.py TEST-NETWATCH-BINARY"""

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from lab import TestSkip  # noqa: E402

NS_RE = re.compile(r"^p2ptun-nw-(\d+)-[0-9a-f]+$")
TIMEOUT = 60


def ip(*args, check=True):
    return subprocess.run(["ip"] + list(args), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=20, check=check)


def remove_namespace(name):
    """Stops whatever still runs in the namespace, then removes it."""
    pids = ip("netns", "pids", name, check=False).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ValueError, OSError):
            pass
    ip("netns", "del", name, check=False)


def sweep_stale():
    """Namespaces of earlier runs whose process is gone."""
    for line in ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = NS_RE.match(name)
        if m is None:
            continue
        try:
            os.kill(int(m.group(1)), 0)
            continue  # still running: someone else's
        except ProcessLookupError:
            pass
        except OSError:
            continue
        remove_namespace(name)


def preflight():
    if os.geteuid() != 0:
        raise TestSkip("needs root, to create a network namespace")
    if shutil.which("ip") is None:
        raise TestSkip("needs ip(8) (package iproute2)")


def main(argv):
    if len(argv) != 2:
        sys.stderr.write(__doc__ + "\n")
        return 2
    binary = os.path.abspath(argv[1])
    name = "p2ptun-nw-%d-%s" % (os.getpid(), secrets.token_hex(4))

    def interrupted(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    try:
        preflight()
        sweep_stale()
        try:
            made = ip("netns", "add", name, check=False)
            if made.returncode != 0:
                raise TestSkip("cannot create a network namespace: %s"
                               % made.stderr.strip())
            env = dict(os.environ, P2PTUN_NETWATCH_NETNS=name)
            # Output goes straight to ours: meson shows the test's own lines.
            run = subprocess.run(["ip", "netns", "exec", name, binary],
                                 stdin=subprocess.DEVNULL, env=env, timeout=TIMEOUT)
            return run.returncode
        except subprocess.TimeoutExpired:
            sys.stderr.write("FAIL: test-netwatch still running after %d s\n" % TIMEOUT)
            return 1
        finally:
            remove_namespace(name)
    except TestSkip as e:
        print("SKIP: %s" % e)
        return 77


if __name__ == "__main__":
    sys.exit(main(sys.argv))
