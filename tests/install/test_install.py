"""What `meson install` puts on a machine (issue 19): the systemd units, checked
by systemd-analyze and run under their own restrictions by hand (no test
starts a unit: test machines have no systemd as PID 1); the installed tree;
the manual pages against every --help; the QR code of `id --qr`.

Usage: test_install.py BUILD_DIR SOURCE_DIR CASE. Exit 77 (skipped) with the
reason when a tool is missing. Python standard library only."""
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from lab import free_port, stun_answers  # noqa: E402

# The most exposure systemd-analyze security may score a unit (0 safest, 10
# least safe; it calls up to 2.0 "OK"). Measured: signal, agent@ and pair@
# 1.4, the relay 1.7 (a capability, and no PrivateUsers= since the capability
# must count in the host's network namespace).
SECURITY_THRESHOLD = 2.0

UNITS = ["p2ptun-signal.service", "p2ptun-relay.service", "p2ptun-agent@.service",
         "p2ptun-pair@.service"]
PROGRAMS = {"p2ptun-agent": "agent", "p2ptun-signal": "signaling", "p2ptun-relay": "relay"}
PAGES = {"p2ptun-agent": "p2ptun-agent.1", "p2ptun-signal": "p2ptun-signal.8",
         "p2ptun-relay": "p2ptun-relay.8"}


class Skip(Exception):
    pass


class Failure(Exception):
    pass


def need(tool, package):
    path = shutil.which(tool)
    if path is None:
        raise Skip("%s is missing (Debian package %s; scripts/deps.sh installs it)"
                   % (tool, package))
    return path


def run(argv, **kw):
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 60)
    return subprocess.run(argv, **kw)


def unit_text(build, unit):
    with open(os.path.join(build, "data", unit)) as f:
        return f.read()


def unit_to_build_tree(build, text):
    """The unit with ExecStart= into the build tree instead of BINDIR."""
    def program(m):
        name = m.group(2)
        return m.group(1) + os.path.join(build, PROGRAMS[name], name)
    return re.sub(r"(?m)^(ExecStart=)\S*/(p2ptun-(?:agent|signal|relay))\b", program, text)


def instance_name(unit):
    return unit.replace("@.", "@test.")


# ---- systemd-analyze ----

def case_verify(build, source):
    tool = need("systemd-analyze", "systemd")
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ)
        args = []
        mandir = os.path.join(build, "docs", "man")
        if os.path.exists(os.path.join(mandir, "p2ptun-agent.1")):
            # Documentation=man:... is checked too, against the built pages.
            for page in os.listdir(mandir):
                if page[-1] in "158" and page[-2] == ".":
                    sect = os.path.join(tmp, "man", "man" + page[-1])
                    os.makedirs(sect, exist_ok=True)
                    shutil.copy(os.path.join(mandir, page), sect)
            env["MANPATH"] = os.path.join(tmp, "man")
        else:
            args.append("--man=no")
            print("# the manual pages are not built (no scdoc): Documentation= not checked")
        paths = []
        for unit in UNITS:
            path = os.path.join(tmp, instance_name(unit))
            with open(path, "w") as f:
                f.write(unit_to_build_tree(build, unit_text(build, unit)))
            paths.append(path)
        r = run([tool, "verify"] + args + paths, env=env)
        out = (r.stdout + r.stderr).strip()
        print(out)
        if r.returncode != 0 or out:
            raise Failure("systemd-analyze verify: exit %d: %s" % (r.returncode, out))


def case_security(build, source):
    tool = need("systemd-analyze", "systemd")
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        for unit in UNITS:
            path = os.path.join(tmp, instance_name(unit))
            with open(path, "w") as f:
                f.write(unit_to_build_tree(build, unit_text(build, unit)))
            r = run([tool, "security", "--offline=true", "--no-pager", path])
            m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
            if m is None:
                raise Failure("no score for %s: %s%s" % (unit, r.stdout[-500:], r.stderr))
            score = float(m.group(1))
            print("# %s: exposure %.1f (threshold %.1f)" % (unit, score, SECURITY_THRESHOLD))
            if score > SECURITY_THRESHOLD:
                failed.append("%s scores %.1f" % (unit, score))
    if failed:
        raise Failure(", ".join(failed))


# ---- a unit's ExecStart under its restrictions, by hand ----

def unit_settings(text):
    settings = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z]+)=(.*)$", line)
        if m:
            settings.setdefault(m.group(1), []).append(m.group(2))
    return settings


def expand_exec(line, env, specifiers):
    """systemd's ExecStart= expansion, enough for our units: ${VAR} is one
    word, $VAR splits into words, %X specifiers."""
    for k, v in specifiers.items():
        line = line.replace(k, v)
    words = []
    for word in line.split():
        m = re.fullmatch(r"\$\{(\w+)\}", word)
        if m:
            words.append(env.get(m.group(1), ""))
            continue
        m = re.fullmatch(r"\$(\w+)", word)
        if m:
            words.extend(env.get(m.group(1), "").split())
            continue
        words.append(word)
    return words


def unit_environment(settings, overrides):
    env = {}
    for line in settings.get("Environment", []):
        for item in line.split():
            k, _, v = item.partition("=")
            env[k] = v
    env.update(overrides)
    return env


def capabilities(settings):
    caps = settings.get("AmbientCapabilities", [""])[-1].split()
    bounding = settings.get("CapabilityBoundingSet", [""])[-1].split()
    if sorted(caps) != sorted(bounding):
        raise Failure("AmbientCapabilities %s differs from CapabilityBoundingSet %s"
                      % (caps, bounding))
    return [c.lower().replace("cap_", "") for c in caps]


SANDBOX_SHELL = r"""
set -e
# ProtectSystem=strict: every mount read-only, then PrivateTmp= and
# ProtectHome= (empty), then the StateDirectory= writable again.
mount --make-rprivate /
for m in $(awk '{print $5}' /proc/self/mountinfo | sort -u); do
  case $m in /proc*|/sys*|/dev*) continue ;; esac
  mount -o remount,bind,ro "$m" 2>/dev/null || true
done
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=0755 tmpfs /home
mount -t tmpfs -o mode=0700 tmpfs /root
mount --bind "$STATE" "$STATE"
mount -o remount,bind,rw "$STATE"
ip link set lo up
exec "$@"
"""


def sandboxed(work, state, caps, argv):
    """The command that runs argv in new mount and network namespaces, as
    nobody, with no new privileges and only @caps."""
    capset = "".join(",+" + c for c in caps)
    setpriv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
               "--no-new-privs", "--bounding-set=-all" + capset,
               "--inh-caps=-all" + capset]
    if caps:
        setpriv.append("--ambient-caps=" + ",".join("+" + c for c in caps))
    return (["unshare", "--mount", "--net", "--fork", "--",
             "env", "STATE=" + state, "sh", "-c", SANDBOX_SHELL, "sandbox"]
            + setpriv + ["--"] + argv)


def sandbox_tools():
    if os.geteuid() != 0:
        raise Skip("needs root: unshare -m -n and setpriv to another user")
    for tool, package in (("unshare", "util-linux"), ("setpriv", "util-linux"),
                          ("ip", "iproute2")):
        need(tool, package)
    try:
        run(["id", "nobody"], check=True)
    except subprocess.CalledProcessError:
        raise Skip("no user nobody")


def run_in_sandbox(build, unit, overrides, probe, workdir):
    """Runs the unit's ExecStart in its sandbox, in the background; probe()
    runs inside the same namespaces (by nsenter) and must say True within
    10 s."""
    text = unit_text(build, unit)
    settings = unit_settings(unit_to_build_tree(build, text))
    state = os.path.join(workdir, "state")
    os.makedirs(state, mode=0o755)
    for d in settings.get("StateDirectory", []):
        sd = os.path.join(state, d)
        os.makedirs(sd, mode=0o700)
        shutil.chown(sd, "nobody", "nogroup")
    env = unit_environment(settings, overrides)
    argv = expand_exec(settings["ExecStart"][0], env, {"%S": state, "%t": "/run"})
    cmd = sandboxed(workdir, state, capabilities(settings), argv)
    print("# " + " ".join(argv))
    log = open(os.path.join(workdir, "stderr"), "w+")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True,
                            start_new_session=True)
    try:
        ready = proc.stdout.readline()
        deadline = time.time() + 10
        while "ready" not in ready and ready and time.time() < deadline:
            ready = proc.stdout.readline()
        if "ready" not in ready:
            log.seek(0)
            raise Failure("%s did not start under its restrictions: %s" % (unit, log.read()))
        # The program runs in the namespaces of unshare's child: probe there.
        child = run(["pgrep", "-P", str(proc.pid)]).stdout.split()
        target = child[0] if child else str(proc.pid)
        r = run(["nsenter", "-t", target, "-n", "--", sys.executable, "-c", probe],
                timeout=15)
        if r.returncode != 0:
            log.seek(0)
            raise Failure("%s does not answer: %s%s\n%s" % (unit, r.stdout, r.stderr,
                                                             log.read()))
        print("# " + r.stdout.strip())
        # Still running: nothing it needs was denied after the start either.
        if proc.poll() is not None:
            raise Failure("%s exited: %s" % (unit, proc.returncode))
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
        log.close()


def case_sandbox_signal(build, source):
    sandbox_tools()
    port = free_port()
    probe = r"""
import ssl, urllib.request, sys, time
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
for _ in range(50):
    try:
        r = urllib.request.urlopen("https://127.0.0.1:%d/healthz", context=ctx, timeout=2)
        print("healthz", r.status); sys.exit(0 if r.status == 200 else 1)
    except OSError:
        time.sleep(0.2)
sys.exit(1)
""" % port
    with tempfile.TemporaryDirectory(dir=build) as work:
        os.chmod(work, 0o755)
        run_in_sandbox(build, "p2ptun-signal.service",
                       {"SIGNAL_LISTEN": "127.0.0.1:%d" % port}, probe, work)


def case_sandbox_relay(build, source):
    sandbox_tools()
    # Port 443 in the test's own network namespace: CAP_NET_BIND_SERVICE,
    # the unit's only capability, is what lets nobody bind it.
    stunwire = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration")
    probe = r"""
import sys, time
sys.path.insert(0, %r)
from lab import stun_answers
for _ in range(50):
    if stun_answers(443):
        print("STUN binding answered on 127.0.0.1:443"); sys.exit(0)
    time.sleep(0.2)
sys.exit(1)
""" % stunwire
    with tempfile.TemporaryDirectory(dir=build) as work:
        os.chmod(work, 0o755)
        secret = os.path.join(work, "relay-secret")
        with open(secret, "w") as f:
            f.write("a-test-secret\n")
        os.chmod(secret, 0o640)
        shutil.chown(secret, "root", "nogroup")
        run_in_sandbox(build, "p2ptun-relay.service",
                       {"RELAY_LISTEN": "127.0.0.1:443", "RELAY_SECRET_FILE": secret},
                       probe, work)


# ---- the installed tree ----

def case_install_tree(build, source):
    need("man", "man-db")
    need("groff", "groff-base")
    with tempfile.TemporaryDirectory() as dest:
        r = run(["meson", "install", "-C", build, "--destdir", dest, "--no-rebuild",
                 "--quiet"], timeout=300)
        if r.returncode != 0:
            raise Failure("meson install: %s%s" % (r.stdout, r.stderr))
        prefix = run(["meson", "introspect", "--buildoptions", build]).stdout
        m = re.search(r'"name": "prefix", "value": "([^"]+)"', prefix)
        root = dest + (m.group(1) if m else "/usr/local")
        missing = []
        want = ["bin/p2ptun-agent", "bin/p2ptun-signal", "bin/p2ptun-relay",
                "lib/sysusers.d/p2ptun.conf", "share/doc/p2ptun/agent.conf.example",
                "share/bash-completion/completions/p2ptun-agent",
                "share/bash-completion/completions/p2ptun-signal",
                "share/bash-completion/completions/p2ptun-relay"]
        want += ["lib/systemd/system/" + u for u in UNITS]
        pages = ["share/man/man1/p2ptun-agent.1", "share/man/man5/agent.conf.5",
                 "share/man/man8/p2ptun-signal.8", "share/man/man8/p2ptun-relay.8"]
        if os.path.exists(os.path.join(build, "docs", "man", "p2ptun-agent.1")):
            want += pages
        else:
            print("# the manual pages are not built (no scdoc): not checked")
            pages = []
        for w in want:
            if not os.path.exists(os.path.join(root, w)):
                missing.append(w)
        if missing:
            raise Failure("not installed: " + ", ".join(missing))
        for u in UNITS:
            with open(os.path.join(root, "lib/systemd/system", u)) as f:
                exec_start = [l for l in f.read().splitlines() if l.startswith("ExecStart=")]
            prog = exec_start[0].split()[0][len("ExecStart="):]
            if not os.path.exists(dest + prog):
                raise Failure("%s: ExecStart %s is not what was installed" % (u, prog))
        for p in pages:
            r = run(["man", "--warnings", "-l", os.path.join(root, p)],
                    env=dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MAN_KEEP_STDERR="1"))
            if r.returncode != 0 or r.stderr.strip():
                raise Failure("man -l %s: %s" % (p, r.stderr))
            print("# man -l %s: %d lines, no warnings" % (p, r.stdout.count("\n")))
        # The completion is bash that loads and names the commands.
        comp = os.path.join(root, "share/bash-completion/completions/p2ptun-agent")
        script = (". %s; PATH=%s:$PATH; COMP_WORDS=(p2ptun-agent --config x pa); COMP_CWORD=3;"
                  " _p2ptun_complete p2ptun-agent; echo \"${COMPREPLY[*]}\";"
                  " COMP_WORDS=(p2ptun-agent id --); COMP_CWORD=2;"
                  " _p2ptun_complete p2ptun-agent; echo \"${COMPREPLY[*]}\"" %
                  (comp, os.path.join(root, "bin")))
        r = run(["bash", "-c", script],
                env=dict(os.environ, LD_LIBRARY_PATH=os.path.join(build, "agent")))
        lines = r.stdout.splitlines()
        if len(lines) != 2 or lines[0] != "pair" or "--qr" not in lines[1].split():
            raise Failure("bash completion: %r %s" % (r.stdout, r.stderr))
        print("# bash completion: %s" % " | ".join(lines))


# ---- every --help option in the manual page ----

def help_options(argv):
    r = run(argv + ["--help"])
    if r.returncode != 0:
        raise Failure("%s --help: exit %d %s" % (" ".join(argv), r.returncode, r.stderr))
    opts = set(re.findall(r"^\s+(?:-\w, )?(--[a-z][a-z0-9-]*)", r.stdout, re.M))
    if not opts:
        raise Failure("%s --help lists no options" % " ".join(argv))
    return opts


def case_help_in_man(build, source):
    commands = {"p2ptun-agent": ["id", "serve", "pair", "enroll", "csr", "status"],
                "p2ptun-signal": ["", "enroll", "peers", "revoke", "tokens", "policy"],
                "p2ptun-relay": [""]}
    # p2ptun-agent's common options are in its own --help text, not GOption's.
    missing = []
    for prog, cmds in commands.items():
        with open(os.path.join(source, "docs", "man", PAGES[prog] + ".scd")) as f:
            page = f.read()
        exe = os.path.join(build, PROGRAMS[prog], prog)
        for cmd in cmds:
            argv = [exe] + ([cmd] if cmd else [])
            for opt in sorted(help_options(argv)):
                if not re.search(r"\*%s\*" % re.escape(opt), page):
                    missing.append("%s %s: %s" % (prog, cmd, opt))
            print("# %s %s: every option in %s" % (prog, cmd, PAGES[prog]))
    if missing:
        raise Failure("not in the manual page: " + "; ".join(missing))


# ---- p2ptun-agent id --qr ----

def qr_to_pbm(lines, path, scale=8, border=4):
    """The half-block drawing (a drawn half is a light module) as a PBM image
    of dark modules, with a quiet zone around it."""
    halves = {"\u2588": (0, 0), "\u2580": (0, 1), "\u2584": (1, 0), " ": (1, 1)}
    rows = []
    for line in lines:
        top, bottom = [], []
        for ch in line:
            t, b = halves[ch]
            top.append(t)
            bottom.append(b)
        rows += [top, bottom]
    width = max(len(r) for r in rows)
    rows = [[0] * width] * border + [r + [0] * (width - len(r)) for r in rows] \
        + [[0] * width] * border
    rows = [[0] * border + r + [0] * border for r in rows]
    with open(path, "w") as f:
        f.write("P1\n%d %d\n" % (len(rows[0]) * scale, len(rows) * scale))
        for r in rows:
            line = " ".join(str(v) for v in r for _ in range(scale))
            for _ in range(scale):
                f.write(line + "\n")


def case_qr(build, source):
    exe = os.path.join(build, "agent", "p2ptun-agent")
    with tempfile.TemporaryDirectory() as tmp:
        r = run([exe, "--config", tmp, "id", "--qr"], env=dict(os.environ, LC_ALL="C.UTF-8"))
        if r.returncode != 0 and "without libqrencode" in r.stderr:
            raise Skip("p2ptun-agent is built without libqrencode (Debian libqrencode-dev)")
        if r.returncode != 0:
            raise Failure("id --qr: exit %d: %s" % (r.returncode, r.stderr))
        lines = r.stdout.split("\n")
        peer_id = lines[0]
        drawing = [l for l in lines[1:] if l]
        print("\n".join("# " + l for l in r.stdout.splitlines()))
        zbarimg = need("zbarimg", "zbar-tools")
        image = os.path.join(tmp, "qr.pbm")
        qr_to_pbm(drawing, image)
        z = run([zbarimg, "--quiet", "--raw", image])
        if z.stdout.strip() != peer_id:
            raise Failure("zbarimg read %r (exit %d %s), the peer-id is %s"
                          % (z.stdout, z.returncode, z.stderr, peer_id))
        print("# zbarimg read the peer-id back: %s" % peer_id)


CASES = {"verify": case_verify, "security": case_security,
         "sandbox-signal": case_sandbox_signal, "sandbox-relay": case_sandbox_relay,
         "install-tree": case_install_tree, "help-in-man": case_help_in_man, "qr": case_qr}


def main(argv):
    if len(argv) != 4 or argv[3] not in CASES:
        sys.stderr.write("usage: %s BUILD_DIR SOURCE_DIR CASE (%s)\n"
                         % (argv[0], ", ".join(CASES)))
        return 2
    try:
        CASES[argv[3]](os.path.abspath(argv[1]), os.path.abspath(argv[2]))
    except Skip as e:
        print("SKIP: %s" % e)
        return 77
    except Failure as e:
        print("FAIL: %s" % e)
        return 1
    print("ok: %s" % argv[3])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
