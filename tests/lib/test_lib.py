#!/usr/bin/env python3
"""libp2ptun as its users see it: the symbols it exports, and the examples
built and run against a copy installed into a temporary directory (meson
install --destdir), through a real p2ptun-signal and p2ptun-agent serve.

usage: test_lib.py BUILD_DIR CASE
environment: P2PTUN_SOURCE_ROOT, P2PTUN_LIBRARY (libp2ptun.so in the build),
P2PTUN_SANITIZE (meson's b_sanitize)"""

import glob
import hashlib
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from lab import TestFailure, TestSkip, check, pattern_bytes, run_cases  # noqa: E402

SOURCE_ROOT = os.environ.get("P2PTUN_SOURCE_ROOT", "")
BODY = pattern_bytes(14, 300 * 1024)  # many packets, not one
PATH_RE = r"^fetch: path direct \(host \S+ -> (?:host|prflx) \S+, udp\), rtt [\d.]+ ms$"
RUN_TIMEOUT = 60


def symbols(lab):
    """Every symbol that libp2ptun.so defines for others starts with p2ptun_
    (P2PTUN_0 is the version node of libp2ptun.map)."""
    library = os.environ["P2PTUN_LIBRARY"]
    out = subprocess.run(["nm", "-D", "--defined-only", library], capture_output=True,
                         text=True, timeout=30)
    check(out.returncode == 0, "nm -D %s failed: %s" % (library, out.stderr))
    names = [line.split()[-1].split("@")[0] for line in out.stdout.splitlines() if line.strip()]
    check(names, "nm -D found no symbols in %s" % library)
    others = sorted(n for n in names if not n.startswith("p2ptun_") and n != "P2PTUN_0")
    check(not others, "%d exported symbols without the p2ptun_ prefix:\n  %s"
          % (len(others), "\n  ".join(others)))
    # And each is the public header's: no private helper leaks out by its name.
    header = os.path.join(SOURCE_ROOT, "agent", "include", "p2ptun", "p2ptun.h")
    with open(header) as f:
        text = f.read()
    public = set(re.findall(r"\b(p2ptun_\w+)\s*\(", text))
    public |= {m + "_get_type" for m in re.findall(r"G_DECLARE_\w+_TYPE \(\w+, (\w+),", text)}
    private = sorted(n for n in names if n.startswith("p2ptun_") and n not in public)
    check(not private, "%d exported symbols not in p2ptun.h:\n  %s"
          % (len(private), "\n  ".join(private)))
    sys.stderr.write("%d symbols, all p2ptun_* and declared in p2ptun.h\n" % len(names))


def skip_if_sanitized():
    sanitize = os.environ.get("P2PTUN_SANITIZE", "none")
    if sanitize != "none":
        raise TestSkip("a sanitized build (b_sanitize=%s) is not installed for users: its "
                       "library needs the sanitizer runtime in the program" % sanitize)


def install(lab):
    """meson install into a temporary directory; returns (destdir, libdir)."""
    meson = shutil.which("meson")
    check(meson, "meson is not in PATH")
    destdir = lab.path("destdir")
    out = subprocess.run([meson, "install", "-C", lab.build, "--destdir", destdir,
                          "--no-rebuild", "--quiet"], capture_output=True, text=True,
                         timeout=180)
    check(out.returncode == 0, "meson install --destdir failed:\n%s%s" % (out.stdout, out.stderr))
    libs = glob.glob(os.path.join(destdir, "**", "libp2ptun.so.0"), recursive=True)
    check(len(libs) == 1, "libp2ptun.so.0 not installed once under %s: %r" % (destdir, libs))
    return destdir, os.path.dirname(libs[0])


class WebServer:
    """A tiny HTTP server on loopback: /hello.bin is BODY, anything else 404.
    paths lists the paths asked for."""

    def __init__(self):
        paths = self.paths = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                paths.append(self.path)
                if self.path == "/hello.bin":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(len(BODY)))
                    self.end_headers()
                    self.wfile.write(BODY)
                else:
                    self.send_error(404)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def fetch_through_tunnel(lab, argv, env):
    """Runs the example fetch program argv (its arguments are added) against a
    p2ptun-agent serve exposing a web service, and checks what it printed."""
    web = WebServer()
    lab.services.append(web)  # closed by the Lab, also on failure
    sig, url, pin = lab.signal_server()
    sdir, sid = lab.agent_dir("server")
    fdir, fid = lab.agent_dir("fetch")
    lab.enroll(sig.state, fid)  # the example is not started by lab.agent()
    # Loopback only, on both sides (the examples' last argument).
    server = lab.agent("server", sdir, ["serve", "--expose", "web=127.0.0.1:%d" % web.port,
                                        "--trust", fid], url=url, pin=pin)
    server.wait_line("serving as " + sid)

    def run(service, path):
        try:
            return subprocess.run(argv + [url, pin, fdir, sid, service, path, "127.0.0.1"],
                                  capture_output=True, env=env, timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise TestFailure("%s did not end within %d s" % (argv[-1], RUN_TIMEOUT))

    out = run("web", "/hello.bin")
    stderr = out.stderr.decode("utf-8", "replace")
    sys.stderr.write("[fetch] %s" % stderr)
    check(out.returncode == 0, "fetch exited %d: %s" % (out.returncode, stderr))
    check(re.search(PATH_RE, stderr, re.M), "fetch printed no path and RTT line: %r" % stderr)
    head, sep, body = out.stdout.partition(b"\r\n\r\n")
    check(sep and head.startswith(b"HTTP/1.0 200 "), "not an HTTP answer: %r" % out.stdout[:200])
    check(hashlib.sha256(body).hexdigest() == hashlib.sha256(BODY).hexdigest(),
          "the body differs: %d bytes arrived, %d sent" % (len(body), len(BODY)))
    check(web.paths == ["/hello.bin"], "the web service was asked for %r" % web.paths)

    # A service the peer does not expose: a one-line error, not an empty success.
    out = run("nothing", "/")
    stderr = out.stderr.decode("utf-8", "replace")
    sys.stderr.write("[fetch] %s" % stderr)
    check(out.returncode != 0, "fetch of a service not exposed exited 0")
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    check(last.startswith("fetch: error: ") and "nothing" in last,
          "fetch of a service not exposed did not say why: %r" % stderr)
    check(out.stdout == b"", "fetch of a service not exposed printed %r" % out.stdout[:200])


def installed_example(lab):
    """examples/fetch.c compiled with pkg-config against the installed library."""
    skip_if_sanitized()
    destdir, libdir = install(lab)
    pcs = glob.glob(os.path.join(destdir, "**", "pkgconfig", "p2ptun.pc"), recursive=True)
    check(len(pcs) == 1, "p2ptun.pc not installed once: %r" % pcs)
    # p2ptun.pc as installed, its prefix moved into the destdir: what a
    # relocated install does. (PKG_CONFIG_SYSROOT_DIR or --define-variable
    # would move the system's glib-2.0 paths there too.)
    with open(pcs[0]) as f:
        pc = f.read()
    prefix = re.search(r"^prefix=(/.*)$", pc, re.M)
    check(prefix, "p2ptun.pc has no prefix line:\n%s" % pc)
    os.mkdir(lab.path("pkgconfig"))
    with open(lab.path("pkgconfig", "p2ptun.pc"), "w") as f:
        f.write(pc.replace(prefix.group(0), "prefix=" + destdir + prefix.group(1), 1))
    env = dict(os.environ, PKG_CONFIG_PATH=lab.path("pkgconfig"))
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "p2ptun"], capture_output=True,
                           text=True, env=env, timeout=30)
    check(flags.returncode == 0, "pkg-config p2ptun failed: %s" % flags.stderr)
    check(destdir in flags.stdout, "pkg-config p2ptun does not point into the destdir: %s"
          % flags.stdout)
    # The installed header on its own, as C and as C++.
    cflags = subprocess.run(["pkg-config", "--cflags", "p2ptun"], capture_output=True,
                            text=True, env=env, timeout=30).stdout.split()
    for compiler, language in (("cc", "c"), ("c++", "c++")):
        if shutil.which(compiler) is None:
            raise TestFailure("no %s to compile p2ptun.h as %s" % (compiler, language))
        alone = subprocess.run([compiler, "-x", language, "-fsyntax-only", "-Wall", "-Werror",
                                "-"] + cflags, input="#include <p2ptun/p2ptun.h>\n",
                               capture_output=True, text=True, timeout=120)
        check(alone.returncode == 0, "p2ptun.h alone does not compile as %s:\n%s"
              % (language, alone.stderr))
    exe = lab.path("fetch")
    cc = subprocess.run(["cc", "-Wall", "-Werror", "-o", exe,
                         os.path.join(SOURCE_ROOT, "examples", "fetch.c")] + flags.stdout.split(),
                        capture_output=True, text=True, timeout=120)
    check(cc.returncode == 0, "cc examples/fetch.c failed:\n%s" % cc.stderr)
    linked = subprocess.run(["ldd", exe], capture_output=True, text=True, timeout=30,
                            env=dict(os.environ, LD_LIBRARY_PATH=libdir))
    check(os.path.join(libdir, "libp2ptun.so.0") in linked.stdout,
          "fetch does not load the installed libp2ptun: %s" % linked.stdout)
    fetch_through_tunnel(lab, [exe], dict(os.environ, LD_LIBRARY_PATH=libdir))


def python_with_gi():
    """A python3 that imports gi (python3-gi belongs to the system's python3,
    which may not be the first in PATH)."""
    for candidate in (sys.executable, shutil.which("python3"), "/usr/bin/python3"):
        if candidate and subprocess.run([candidate, "-c", "import gi"], capture_output=True,
                                        timeout=30).returncode == 0:
            return candidate
    return None


def python_example(lab):
    """examples/fetch.py through the installed typelib."""
    skip_if_sanitized()
    python = python_with_gi()
    if python is None:
        raise TestSkip("python3-gi is not installed (no python3 here imports gi)")
    destdir, libdir = install(lab)
    typelibs = glob.glob(os.path.join(destdir, "**", "girepository-1.0", "P2ptun-0.typelib"),
                         recursive=True)
    if not typelibs:
        raise TestSkip("no P2ptun-0.typelib was installed (gobject-introspection missing, or "
                       "-Dintrospection=disabled)")
    env = dict(os.environ, LD_LIBRARY_PATH=libdir, GI_TYPELIB_PATH=os.path.dirname(typelibs[0]),
               PYTHONDONTWRITEBYTECODE="1")
    fetch_through_tunnel(lab, [python, os.path.join(SOURCE_ROOT, "examples", "fetch.py")], env)


CASES = {
    "symbols": symbols,
    "installed-example": installed_example,
    "python-example": python_example,
}

if __name__ == "__main__":
    sys.exit(run_cases(CASES, sys.argv))
