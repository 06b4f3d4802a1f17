#!/usr/bin/env python3
"""'p2ptun-agent status' (issue 19): what the running agents of a config
directory say about their tunnels, checked against what the test sent through
them, direct and relayed; and status with no agent running.

usage: test_status.py BUILD_DIR CASE"""

import hashlib
import json
import os
import re
import socket
import stat
import subprocess
import sys

from lab import check, free_port, pattern_bytes, roundtrip, run_cases
from test_tunnel import UP_RE, relayed_re, setup_pair

MIB = 1024 * 1024
SIZE = 4 * MIB
# What the tunnel adds to the bytes of a stream: framing and acknowledgements
# (test lib-inprocess measures well under 5 %), and the control channel.
OVERHEAD = SIZE // 10 + 64 * 1024


def status(lab, config, *extra):
    return subprocess.run([lab.agent_bin, "status", "--config", config] + list(extra),
                          capture_output=True, timeout=30)


def upload(port, size):
    """size bytes through a forwarded port to a sink; checks its hash."""
    payload = pattern_bytes(3, size)
    answer = roundtrip(port, payload)
    check(answer.decode() == hashlib.sha256(payload).hexdigest(), "the upload's hash differs")


def check_socket(sock_dir, pid):
    """The agent's control socket: PID.sock, 0600, in a 0700 directory."""
    path = os.path.join(sock_dir, "%d.sock" % pid)
    st = os.lstat(path)
    check(stat.S_ISSOCK(st.st_mode), "%s is not a socket" % path)
    check(stat.S_IMODE(st.st_mode) == 0o600, "%s has mode %o" % (path, stat.S_IMODE(st.st_mode)))
    mode = stat.S_IMODE(os.lstat(sock_dir).st_mode)
    check(mode == 0o700, "%s has mode %o" % (sock_dir, mode))


def tunnel_of(config_dir, lab, want_mode, peer):
    """The one agent's --json reply, and its tunnel to peer."""
    out = status(lab, config_dir, "--json")
    check(out.returncode == 0, "status --json failed: %s" % out.stderr.decode())
    doc = json.loads(out.stdout)
    check(doc["version"] == 1 and len(doc["agents"]) == 1, "status --json: %r" % doc)
    agent = doc["agents"][0]
    check(agent["version"] == 1 and agent["mode"] == want_mode
          and agent["config_dir"] == config_dir, "the agent's envelope: %r" % agent)
    check(len(agent["tunnels"]) == 1, "tunnels: %r" % agent["tunnels"])
    tunnel = agent["tunnels"][0]
    check(tunnel["version"] == 1 and tunnel["peer_id"] == peer and tunnel["up"],
          "the tunnel: %r" % tunnel)
    return agent, tunnel, out.stdout.decode()


def in_range(n, what):
    check(SIZE <= n <= SIZE + OVERHEAD, "%s: %d bytes for %d sent" % (what, n, SIZE))


def secrets_absent(texts, secrets):
    for text in texts:
        for s in secrets:
            check(s not in text, "a secret is in status' output")


def key_lines(config_dir):
    """The base64 lines of the agent's private key files, to look for."""
    lines = []
    for name in os.listdir(config_dir):
        if not os.path.isfile(os.path.join(config_dir, name)):
            continue
        with open(os.path.join(config_dir, name), "rb") as f:
            text = f.read().decode("ascii", "replace")
        if "PRIVATE KEY" in text:
            lines += [l for l in text.splitlines() if l and not l.startswith("-----")]
    check(lines, "no private key found in %s" % config_dir)
    return lines


def run_status(lab, kind, serve_extra, pair_extra, sig_extra, up_re, secrets, trust_conf):
    """A tunnel up, SIZE bytes through it; status of both ends. The server
    trusts the client as laptop=PEER-ID in agent.conf (trust_conf) or with
    --trust."""
    sink = lab.service("sink")
    port = free_port()
    sdir, _ = lab.agent_dir("server")
    _, cid = lab.agent_dir("client")
    if trust_conf:
        with open(os.path.join(sdir, "agent.conf"), "w") as f:
            f.write("[agent]\ntrust=laptop=%s\n" % cid)
    else:
        serve_extra = ("--trust", "laptop=" + cid) + serve_extra
    server, client, (sid, _, _, _) = setup_pair(
        lab, {"up": sink.port}, {port: "up"}, trust=False, serve_extra=serve_extra,
        pair_extra=pair_extra, sig_extra=sig_extra)
    client.wait_line(up_re, timeout=20)
    upload(port, SIZE)
    sdir, cdir = lab.path("agent-server"), lab.path("agent-client")

    # A caller that connects and says nothing does not hold status up.
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        sock_dir = os.path.join(runtime, "p2ptun", hashlib.sha256(
            os.path.realpath(sdir).encode()).hexdigest()[:16])
    else:
        sock_dir = os.path.join(sdir, "run")
    check_socket(sock_dir, server.proc.pid)
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.connect(os.path.join(sock_dir, "%d.sock" % server.proc.pid))

    agent, tunnel, sjson = tunnel_of(sdir, lab, "serve", cid)
    check(agent["pid"] == server.proc.pid and agent["peer_id"] == sid
          and agent["names"] == {cid: "laptop"}, "the serving agent: %r" % agent)
    path = tunnel["path"]
    check(path["kind"] == kind and path["transport"] == "udp", "the path: %r" % path)
    if kind == "relayed":
        check(path["local_type"] == "relay" and path["remote_type"] == "relay", "%r" % path)
    in_range(tunnel["bytes_received"], "the server's bytes_received")
    check(tunnel["packets_received"] >= SIZE // 16448 and tunnel["packets_sent"] > 0,
          "packets: %r" % tunnel)
    check(tunnel["rtt_us"] > 0 and tunnel["uptime_us"] > 0, "rtt and uptime: %r" % tunnel)
    check(tunnel["streams"] == 0 and tunnel["udp_flows"] == 0, "open streams: %r" % tunnel)

    _, ctunnel, cjson = tunnel_of(cdir, lab, "pair", sid)
    in_range(ctunnel["bytes_sent"], "the client's bytes_sent")
    check(ctunnel["path"]["kind"] == kind, "the client's path: %r" % ctunnel["path"])

    out = status(lab, sdir)
    text = out.stdout.decode()
    sys.stderr.write(text)
    check(out.returncode == 0, "status failed: %s" % out.stderr.decode())
    check(re.search(r"^agent %d \(serve\) %s, 1 tunnel$" % (server.proc.pid, sid), text, re.M),
          "no agent line")
    check(re.search(r"^  peer laptop \(%s\)$" % cid, text, re.M), "no peer line")
    check(re.search(r"^    path: +%s, udp, %s " % (kind, path["local_type"]), text, re.M),
          "no path line")
    received = re.search(r"^    received: +(\d+) bytes \([^)]*\) in (\d+) packets$", text, re.M)
    check(received, "no received line")
    in_range(int(received.group(1)), "status' received")
    check(re.search(r"^    uptime: +\d+s$", text, re.M), "no uptime line")
    silent.close()

    secrets_absent([text, sjson, cjson], secrets + key_lines(sdir) + key_lines(cdir))


def direct(lab):
    """A direct tunnel; the control sockets in $XDG_RUNTIME_DIR/p2ptun; the
    peer's name from agent.conf."""
    runtime = lab.path("xdg")
    os.mkdir(runtime, 0o700)
    os.environ["XDG_RUNTIME_DIR"] = runtime
    run_status(lab, "direct", (), (), (), UP_RE, [], True)


def relayed(lab):
    """A relayed tunnel (both --relay-only through p2ptun-relay); the control
    sockets in CONFIG/run, without XDG_RUNTIME_DIR. The TURN secret is not
    shown."""
    os.environ.pop("XDG_RUNTIME_DIR", None)
    secret, secret_file = lab.turn_secret()
    _, port = lab.relay_server(secret_file)
    run_status(lab, "relayed", ("--relay-only",), ("--relay-only",),
               ("--relay", "turn:127.0.0.1:%d" % port, "--turn-secret-file", secret_file),
               relayed_re("udp"), [secret], False)


def no_agent(lab):
    """No agent running: one line, exit 1; a socket of a dead process is
    removed, not asked."""
    os.environ.pop("XDG_RUNTIME_DIR", None)
    config, _ = lab.agent_dir("alone")
    for extra in ((), ("--json",)):
        out = status(lab, config, *extra)
        err = out.stderr.decode()
        check(out.returncode == 1 and out.stdout == b"", "status %r: %r" % (extra, out))
        check(err == "p2ptun-agent: no agent of %s is running\n" % config, "said %r" % err)
    run = os.path.join(config, "run")
    os.mkdir(run, 0o700)
    stale = os.path.join(run, "%d.sock" % (2 ** 22 + 1))  # above any pid_max
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(stale)
    out = status(lab, config)
    check(out.returncode == 1 and out.stderr.decode().count("\n") == 1, "%r" % out)
    check(not os.path.exists(stale), "the stale socket is still there")


CASES = {
    "direct": direct,
    "relayed": relayed,
    "no-agent": no_agent,
}

if __name__ == "__main__":
    sys.exit(run_cases(CASES, sys.argv))
