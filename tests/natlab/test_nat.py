#!/usr/bin/env python3
"""The NAT matrix: two p2ptun agents behind every pair of NAT types, each
case in its own small internet of network namespaces (natlab.py), with
p2ptun-signal and p2ptun-relay (also the STUN server) on the internet.
Each case pairs the agents, moves 8 MiB each way through forwarded ports,
compares SHA-256, and checks that the path in use after the transfer is the
one this NAT pair should get (EXPECTED). It writes its result as JSON into
RESULTS_DIR for matrix.py. The "staying connected" cases (link cuts, NAT
rebinding, roaming, restarts) are in faults.py, one function each; the
agent lines they wait for are the RE_ constants below.

usage: test_nat.py BUILD_DIR RESULTS_DIR CASE     (CASE: NATA-NATB, same-lan, ...)"""

import json
import os
import re
import signal
import subprocess
import sys
import shutil
import threading
import time

import faults
import media
import natlab
from natlab import NAT_TYPES, SERVERS_IP, TestFailure, TestSkip, check

MIB = 1024 * 1024
SIZE = 8 * MIB
RELAY_PORT = 3478
SIGNAL_PORT = 8443
FWD_DOWN, FWD_UP = 10001, 10002
SETTLE_S = 10

# ---- what the agents print about staying connected (issue 15) ----
#
# The lines the fault cases (faults.py) wait for, as regexes: str.format
# fills {peer} with the other side's peer-id (already escaped). The agents
# print them on stderr. Adjust them here when the wording changes.
RE_TUNNEL_UP = r"tunnel up: peer {peer}, path (direct|relayed) \(.*\), rtt [\d.]+ ms"
RE_PATH_CHANGED = r"path changed: peer {peer}, path (direct|relayed) \(.*\)"
RE_PATH_LOST = r"peer {peer}: path lost, restarting ICE \(generation (\d+)\)"
RE_SILENT = r"peer {peer}: no answer for ([\d.]+) s;"
RE_ANSWERING = r"peer {peer}: answering again after ([\d.]+) s of silence"
# pair, when its peer went away (restarted) or stayed silent for --hold.
RE_WENT_AWAY = r"peer {peer} went away: (.*); reconnecting in ([\d.]+) s"
RE_RECONNECTED = (r"tunnel up: peer {peer}, path (direct|relayed) \(.*\), rtt [\d.]+ ms "
                  r"\(reconnected after ([\d.]+) s\)")
# A -L connection that waited too long with no tunnel.
RE_REFUSED_NO_TUNNEL = r"connection from (\S+) refused: no tunnel to the peer for (\d+) s"
# The signaling client, once the server answers again after failures.
RE_SIGNAL_BACK = r"signaling server (\S+) reachable again"
RE_AGENT_ERROR = r"^p2ptun-agent: error: .*"
# The options: how long streams survive with no answer from the peer.
HOLD_OPTION = "--hold"
GIVE_UP_OPTION = "--give-up-after"

# ---- what each pair of NATs should get ----
#
# Site A runs `serve`, site B runs `pair`; a case is named A-B with A before
# B in NAT_TYPES. ICE tries every pair of candidates (host, server-reflexive
# from the relay's STUN, relayed from TURN, peer-reflexive learned from
# checks) and prefers direct ones; libnice's checks from both sides at once
# are the hole punching. Terms (RFC 4787): a cone NAT keeps one mapping per
# inside address and port (endpoint-independent mapping), so the
# server-reflexive address learnt from STUN is what every peer sees; a
# symmetric NAT makes a new mapping, with a random port, for each new
# destination, so the peer sees an address it could not have been told.
# Filtering: full cone lets anything in to a mapping; address-restricted
# only hosts the inside sent to; port-restricted only the address and port
# the inside sent to. UDP blocked: the only way out is TCP, to the relay.

DIRECT = ("direct", "udp")
RELAY_UDP = ("relayed", "udp")
RELAY_TCP = ("relayed", "tcp")

EXPECTED = {}


def expect(a, b, outcome):
    EXPECTED["%s-%s" % (a, b)] = outcome


# A public host takes any check sent to it: the NATed side's checks reach its
# host address, from whatever mapping, and it answers the (peer-reflexive)
# source. So every UDP-capable NAT meets a public host directly.
for other in ("none", "fullcone", "addrrestricted", "portrestricted", "symmetric"):
    expect("none", other, DIRECT)
# A full cone forwards anything that reaches its mapping: the same as a
# public host, once it has a mapping (its STUN request made one).
for other in ("fullcone", "addrrestricted", "portrestricted", "symmetric"):
    expect("fullcone", other, DIRECT)
# Two cone NATs: each side's server-reflexive address is valid for every
# peer, and each side's checks to the other's open its own filter for the
# other's answers (address- or address+port-restricted alike): hole punching.
expect("addrrestricted", "addrrestricted", DIRECT)
expect("addrrestricted", "portrestricted", DIRECT)
expect("portrestricted", "portrestricted", DIRECT)
# Symmetric against address-restricted: the symmetric side's checks come from
# a new port, but from the NAT address that the restricted side has already
# sent checks to; an address-restricted filter lets any port of that address
# in, and the answer goes back through the new mapping (peer-reflexive).
expect("addrrestricted", "symmetric", DIRECT)
# Symmetric against port-restricted or symmetric: the symmetric side's
# mapping towards the peer has a port nobody could know in advance, and the
# other side only lets in the exact address and port it sent to: no direct
# pair can work, the relay (TURN over UDP) carries the tunnel.
expect("portrestricted", "symmetric", RELAY_UDP)
expect("symmetric", "symmetric", RELAY_UDP)
# UDP blocked: no STUN, no direct UDP; the only candidate that works there is
# relayed through TURN over TCP (ICE-TCP is off in the agent), against
# anything on the other side, and against another TCP-only site.
for other in NAT_TYPES:
    expect(other, "udpblocked", RELAY_TCP)
# Its peer should then reach that relayed address from its own host socket
# (one relay hop), and usually does. But when the blocked side nominates
# relay to relay at once, libnice drops its still-waiting pair towards the
# peer's server-reflexive address unchecked, so the relay never gets the
# permission that the peer's path probes would need to reach it (seen in
# one of five clean runs of fullcone-udpblocked, and once for
# addrrestricted-udpblocked). Relay to relay is a relayed path with the
# blocked side on TCP too: accepted, and the table shows which it was.
# (relay-shortcut, below, checks the probes that do repair it.)
ALSO_ACCEPTED = {"%s-udpblocked" % other: {("relayed", "tcp+udp")}
                 for other in NAT_TYPES if other != "udpblocked"}
# Both hosts behind one (port-restricted) NAT: their host candidates reach
# each other on the LAN, no NAT in the way.
EXPECTED["same-lan"] = DIRECT
# A carrier-grade NAT (endpoint-independent mapping, RFC 6888) in front of a
# home router that is a cone NAT too: two endpoint-independent mappings in a
# row are one, so the server-reflexive address works for every peer and hole
# punching works as between two port-restricted cones.
EXPECTED["portrestricted-cgnat"] = DIRECT
# Two public hosts whose direct UDP is blocked at first (the lab internet
# drops it): the tunnel comes up on the relay; once the block is lifted, ICE's
# checks of the direct pair succeed and the tunnel moves to it, and a stream
# open across the move loses nothing.
EXPECTED["relay-to-direct"] = DIRECT
# Two public hosts where UDP from A to B is dropped for longer than ICE's
# checks last (every direct check fails: B's checks get no answer, A's own
# checks never arrive), so the tunnel comes up on the relay; then the drop is
# lifted. No check of the direct pairs is in flight any more: the agents'
# path probes must find the direct pair again, whatever the machine's speed.
EXPECTED["one-way-block"] = DIRECT
# Two port-restricted cones (direct): the signaling server is killed with
# SIGKILL in the middle of the transfer (64 MiB each way, so that it is).
# The tunnel does not need it; its TLS connection dying must not touch the
# tunnel's DTLS (a stale OpenSSL error once ended healthy tunnels here).
EXPECTED["signal-killed"] = DIRECT
SIGNAL_KILLED_SIZE = 64 * MIB
SIGNAL_KILLED_AFTER_S = 0.5
# Two port-restricted cones (direct): the pairing site's TCP to the
# signaling server dropped silently (as a NAT that forgot the mapping does)
# once the tunnel is up. The pairing agent gives up its dead connections
# (its long-poll, and idle kept-alive ones) within SIGNAL_CUT_NOTICE_S: TCP
# keepalive and user timeout end them 10 to 14 s after the cut. Before,
# the long-poll ended with its 40 s timeout (15 to 40 s after the cut) and
# idle connections lived for minutes. The tunnel does not care.
EXPECTED["signal-cut"] = DIRECT
SIGNAL_CUT_NOTICE_S = 20
# A relay and signaling server on loopback, both agents on the same machine
# (the lab internet's namespace, whose br0 has an address too) forced
# through the relay, with no --local-address: the agents must reach the
# relay from a loopback socket (libnice binds host sockets to their
# interface), and one that cannot must say that the relay did not answer.
EXPECTED["loopback-relay"] = RELAY_UDP
ONE_WAY_BLOCK_S = 12
# A public host A against a UDP-blocked B, whose only candidate is relayed
# (TURN over TCP). A reaches B's relayed address straight from its host
# socket (host -> relay), unless that fails at first: here A's UDP to the
# relay's ports other than 3478 is dropped until ICE's checks are over, so
# the tunnel starts relay to relay (A's own UDP allocation -> B's). Once
# the drop is lifted, A's path probes must find the shorter pair.
EXPECTED["relay-shortcut"] = RELAY_TCP
# Two port-restricted cones (direct, as above), where site A's link to the
# internet carries 1400-byte packets only: A's router answers larger ones
# with ICMP "fragmentation needed", and larger ones towards A vanish. Path
# MTU discovery must find the size from both sides and lose nothing.
EXPECTED["small-mtu"] = DIRECT
SMALL_MTU = 1400
# The largest transport packet through it: the IP and UDP headers (28
# bytes) and the DTLS record's (37 with AES-GCM) come off.
SMALL_MTU_PACKET = SMALL_MTU - 28 - 37
PACKET_RE = re.compile(r"tunnel packets of (\d+) bytes")

# The "staying connected" cases (issue 15), one function each in faults.py.
for _name, (_a, _b, _outcome, _doc) in faults.CASES.items():
    EXPECTED[_name] = _outcome
# The media leg on the wire (issue 17), in media.py.
for _name, (_a, _b, _outcome, _doc) in media.CASES.items():
    EXPECTED[_name] = _outcome

LINE_RE = re.compile(r"path (direct|relayed) \((\w+) (\S+) -> (\w+) (\S+), (\w+)\)")


class Case:
    def __init__(self, name):
        self.name = name
        self.mtu_a = None
        if name in faults.CASES:
            self.nat_a, self.nat_b = faults.CASES[name][:2]
        elif name in media.CASES:
            self.nat_a, self.nat_b = media.CASES[name][:2]
        elif name == "same-lan":
            self.nat_a = self.nat_b = "portrestricted"
        elif name == "signal-killed":
            self.nat_a = self.nat_b = "portrestricted"
        elif name == "relay-shortcut":
            self.nat_a, self.nat_b = "none", "udpblocked"
        elif name == "loopback-relay":
            self.nat_a = self.nat_b = "none"
        elif name == "signal-cut":
            self.nat_a = self.nat_b = "portrestricted"
        elif name == "small-mtu":
            self.nat_a = self.nat_b = "portrestricted"
            self.mtu_a = SMALL_MTU
        elif name in ("relay-to-direct", "one-way-block"):
            self.nat_a = self.nat_b = "none"
        else:
            self.nat_a, self.nat_b = name.split("-")
        self.expected = EXPECTED[name]
        self.size = SIGNAL_KILLED_SIZE if name == "signal-killed" else SIZE
        self.servers_ip = "127.0.0.1" if name == "loopback-relay" else SERVERS_IP


def final_path(proc, peer):
    """The path an agent uses now: its last "tunnel up", "connected" or
    "path changed" line about peer, parsed; None when it printed none."""
    last = None
    for line in proc.text().splitlines():
        if peer in line and ("tunnel up:" in line or "connected: path" in line
                             or "path changed:" in line):
            m = LINE_RE.search(line)
            if m:
                last = m
    if last is None:
        return None
    return {"path": last.group(1), "local_type": last.group(2), "local": last.group(3),
            "remote_type": last.group(4), "remote": last.group(5),
            "transport": last.group(6), "line": last.group(0)}


def misnamed_paths(proc, relay_ip):
    """The path lines of an agent that call a path through the relay direct:
    one to an address of the relay is relayed, whatever type the remote
    candidate had when the line was printed (peer-reflexive, when the peer's
    check through its allocation came before its candidate line)."""
    return [m.group(0) for m in LINE_RE.finditer(proc.text())
            if m.group(1) == "direct" and m.group(5).rsplit(":", 1)[0] == relay_ip]


def packet_size(proc):
    """The transport's packet size that an agent logged last (its debug line
    when path MTU discovery changes it), or None."""
    sizes = PACKET_RE.findall(proc.text())
    return int(sizes[-1]) if sizes else None


def observed_outcome(client, server):
    """(path, transport) of the case: relayed when either side's selected pair
    has a relayed candidate; the transport is how a side whose own candidate
    is relayed reaches the relay (udp, tcp, tls), else the direct pair's."""
    relayed = [p for p in (client, server) if p["path"] == "relayed"]
    path = "relayed" if relayed else "direct"
    via = sorted({p["transport"] for p in (client, server) if p["local_type"] == "relay"})
    transport = "+".join(via) if via else client["transport"]
    return path, transport


class Runner:
    def __init__(self, build, results, case):
        self.build = os.path.abspath(build)
        self.results = results
        self.case = case
        self.agent_bin = os.path.join(self.build, "agent", "p2ptun-agent")
        self.signal_bin = os.path.join(self.build, "signaling", "p2ptun-signal")
        self.relay_bin = os.path.join(self.build, "relay", "p2ptun-relay")
        self.result = {"case": case.name, "nat_a": case.nat_a, "nat_b": case.nat_b,
                       "cgnat_b": case.name.endswith("-cgnat"),
                       "same_lan": case.name == "same-lan",
                       "expected": {"path": case.expected[0], "transport": case.expected[1]},
                       "status": "fail"}

    def write_result(self):
        os.makedirs(self.results, exist_ok=True)
        path = os.path.join(self.results, self.case.name + ".json")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.result, f, indent=1, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)

    def start_relay(self, net, secret_file, ip=None, name="relay"):
        """p2ptun-relay on ip (default: the case's servers' address);
        returns its Process, the first one is also self.relay_proc."""
        argv = [self.relay_bin, "--listen", "%s:%d" % (ip or self.case.servers_ip, RELAY_PORT),
                "--secret-file", secret_file, "--realm", "natlab.test"]
        if self.case.name == "loopback-relay":
            argv += ["--allow-peer", "127.0.0.1/32"]
        proc = net.start(name, net.inet, argv, capture_stdout=True)
        if ip is None:
            self.relay_proc = proc
        lines, done = [], threading.Event()

        def read():
            for raw in proc.proc.stdout:
                lines.append(raw.decode("utf-8", "replace").strip())
                if lines[-1] == "ready":
                    done.set()
            done.set()

        threading.Thread(target=read, daemon=True).start()
        check(done.wait(30) and "ready" in lines,
              "p2ptun-relay did not start: %r %s" % (lines, proc.text()))
        sys.stderr.write("[%s] %s\n" % (name, " | ".join(lines)))
        return proc

    def start_signal(self, net, secret_file, state, relay_ips=None):
        """p2ptun-signal on the servers' address, handing out the relay
        there (UDP and TCP), or with relay_ips the relays on those
        addresses (UDP only). Returns (url, pin)."""
        ip = self.case.servers_ip
        argv = [self.signal_bin, "--listen", "%s:%d" % (ip, SIGNAL_PORT),
                "--state-dir", state, "--turn-secret-file", secret_file]
        for rip in relay_ips or [ip]:
            argv += ["--stun", "%s:%d" % (rip, RELAY_PORT),
                     "--relay", "turn:%s:%d" % (rip, RELAY_PORT)]
        # TURN over TCP too, but not on loopback, where the UDP relay alone
        # is under test.
        if self.case.name != "loopback-relay" and relay_ips is None:
            argv += ["--relay", "turn:%s:%d?transport=tcp" % (ip, RELAY_PORT)]
        proc = net.start("signal", net.inet, argv, capture_stdout=True)
        self.signal_proc = proc
        self.signal_state = state
        info, done = {}, threading.Event()

        def read():
            for raw in proc.proc.stdout:
                line = raw.decode("utf-8", "replace").strip()
                if line.startswith("url ") or line.startswith("pin "):
                    info[line[:3]] = line[4:]
                elif line == "ready":
                    done.set()
            done.set()

        threading.Thread(target=read, daemon=True).start()
        check(done.wait(30) and "url" in info and "pin" in info,
              "p2ptun-signal did not start: %s" % proc.text())
        return info["url"], info["pin"]

    def agent_id(self, net, ns, config):
        """The peer-id of the agent directory config (made in ns on first
        use), enrolled on the signaling server that start_signal started."""
        out = subprocess.run(net.exec_argv(ns, [self.agent_bin, "id", "--config", config]),
                             capture_output=True, timeout=60)
        check(out.returncode == 0, "p2ptun-agent id failed: %s" % out.stderr.decode())
        peer_id = out.stdout.decode().strip()
        check(re.fullmatch(r"[a-z2-7]{52}", peer_id), "bad peer-id %r" % peer_id)
        # The operator's command needs only the state dir (its admin socket
        # is a file): it runs here, outside the namespaces.
        out = subprocess.run([self.signal_bin, "enroll", "--state-dir", self.signal_state,
                              "--peer", peer_id], capture_output=True, timeout=60)
        check(out.returncode == 0, "p2ptun-signal enroll --peer failed: %s"
              % out.stderr.decode())
        return peer_id

    def move_to_direct(self, net, host_b, client, id_a, peer_py, first_line):
        """relay-to-direct: a stream opened on the relay, the block lifted,
        the path change awaited, the stream finished and checked."""
        size = 4 * MIB
        up = subprocess.Popen(net.exec_argv(host_b, [sys.executable, peer_py, "upload-in-two",
                                                     str(FWD_UP), str(size), "11"]),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            half = up.stdout.readline().decode().strip()
            check(half == "half", "the upload did not start: %r" % half)
            self.unblock()
            changed = client.wait_line(r"path changed: peer %s, path direct .*" % id_a,
                                       timeout=30)
            up.stdin.write(b"go\n")
            up.stdin.flush()
            out, _ = up.communicate(timeout=120)
            upload = json.loads(out.decode().strip().splitlines()[-1])
        finally:
            if up.poll() is None:
                up.kill()
                up.wait(10)
        move_to_direct_check(first_line, upload, changed)
        sys.stderr.write("moved from the relay to the direct pair with a stream open: %s\n"
                         % changed.group(0))

    def direct_after_block(self, net, client, server, id_a, id_b, first_line):
        """one-way-block: the tunnel is up on the relay; the block stays
        until ICE's own checks of the direct pairs are long over, then goes,
        and both agents must move to a direct pair by themselves."""
        check(" path relayed " in first_line, "the tunnel did not start on the relay: %s"
              % first_line)
        time.sleep(ONE_WAY_BLOCK_S)
        self.unblock()
        t0 = time.monotonic()
        client.wait_line(r"path changed: peer %s, path direct .*" % id_a, timeout=60)
        server.wait_line(r"path changed: peer %s, path direct .*" % id_b, timeout=60)
        self.result["direct_after_s"] = round(time.monotonic() - t0, 1)
        sys.stderr.write("direct %.1f s after the block was lifted\n"
                         % self.result["direct_after_s"])

    def shortcut_after_block(self, server, id_b):
        """relay-shortcut: the tunnel is up relay to relay; the drop stays
        until ICE's own checks are over, then goes, and the serving agent
        must move to a pair from its own host socket to B's relay."""
        first = server.wait_line(r"peer %s connected: path .*" % id_b, timeout=30)
        check(" path relayed (relay " in first.group(0) and " -> relay " in first.group(0),
              "the tunnel did not start relay to relay: %s" % first.group(0))
        time.sleep(ONE_WAY_BLOCK_S)
        self.unblock()
        t0 = time.monotonic()
        server.wait_line(r"path changed: peer %s, path relayed \((host|srflx|prflx) " % id_b,
                         timeout=60)
        self.result["shortcut_after_s"] = round(time.monotonic() - t0, 1)
        sys.stderr.write("host -> relay %.1f s after the drop was lifted\n"
                         % self.result["shortcut_after_s"])

    def block(self, rules, hooks=("forward",)):
        """Drops what rules (nft matches) match on the lab internet's bridge
        (natlab.Net.bridge_block)."""
        self.net.bridge_block(rules, hooks)

    def unblock(self):
        self.net.bridge_unblock()

    def signal_connections(self, net, ns):
        """Local ports of ns's established TCP connections to the
        signaling server."""
        out = natlab.run(net.exec_argv(ns, ["ss", "-Htn", "state", "established", "dst",
                                            "%s:%d" % (SERVERS_IP, SIGNAL_PORT)]))
        return {line.split()[2].rsplit(":", 1)[1] for line in out.splitlines() if line.strip()}

    def notice_signal_cut(self, net, host_b):
        """signal-cut: the pairing site's TCP to the signaling server
        dropped; the agent must give up its dead connections (and so start
        new ones) soon, not when the poll times out."""
        before = self.signal_connections(net, host_b)
        check(before, "no connection to the signaling server to cut")
        self.block(["ip saddr 203.0.113.12 tcp dport %d" % SIGNAL_PORT,
                    "ip daddr 203.0.113.12 tcp sport %d" % SIGNAL_PORT],
                   hooks=("input", "output"))
        t0 = time.monotonic()
        while before & self.signal_connections(net, host_b):
            check(time.monotonic() - t0 < 60, "dead signaling connections still open after "
                  "60 s: %s" % sorted(before & self.signal_connections(net, host_b)))
            time.sleep(0.25)
        noticed = time.monotonic() - t0
        self.result["signal_cut_noticed_s"] = round(noticed, 1)
        sys.stderr.write("dead signaling connections given up after %.1f s\n" % noticed)
        check(noticed <= SIGNAL_CUT_NOTICE_S, "the dead signaling connections were given up "
              "after %.1f s (bound %d s)" % (noticed, SIGNAL_CUT_NOTICE_S))
        self.unblock()

    def relay_unreachable(self, net, ns, config, id_a, env):
        """loopback-relay: a pairing agent whose only host socket is on br0
        cannot reach the loopback relay, and says so."""
        lonely = net.start("pair-br0", ns,
                           [self.agent_bin, "pair", id_a, "--config", config, "--relay-only",
                            "--local-address", SERVERS_IP, "-L", "%d:down" % FWD_DOWN],
                           env=env)
        relay = r"relay turn:127\.0\.0\.1:%d did not answer" % RELAY_PORT
        lonely.wait_line(relay, timeout=30)
        lonely.wait_line(r"error: ICE failed: no working path to the peer .*; %s\)" % relay,
                         timeout=30)
        check(lonely.wait_exit(10) == 1, "pair should exit 1")

    def start_services(self, net, tmp, host_a, host_b, relay_ips=None):
        """p2ptun-relay and p2ptun-signal on the lab internet with a fresh TURN
        secret, and an identity for an agent on each host. Returns (the
        agents' environment, (config dir, peer-id) of A, the same of B).
        With relay_ips, a relay on each of those addresses (the first is the
        servers' address) and the signaling server hands out all of them."""
        secret_file = os.path.join(tmp, "turn-secret")
        with open(secret_file, "w") as f:
            f.write(os.urandom(16).hex() + "\n")
        os.chmod(secret_file, 0o600)
        self.secret_file = secret_file
        self.start_relay(net, secret_file)
        for i, ip in enumerate(relay_ips[1:] if relay_ips else ()):
            self.start_relay(net, secret_file, ip=ip, name="relay%d" % (i + 2))
        url, pin = self.start_signal(net, secret_file, os.path.join(tmp, "signal"), relay_ips)
        self.signal_url, self.signal_pin = url, pin
        # The agents' debug lines say what path MTU discovery found.
        # P2PTUN_NATLAB_DEBUG (e.g. "all", with NICE_DEBUG=all) widens that
        # when a case is run by hand to see why it chose its path.
        env = dict(os.environ, P2PTUN_SIGNAL=url, P2PTUN_SIGNAL_PIN=pin,
                   G_MESSAGES_DEBUG=os.environ.get("P2PTUN_NATLAB_DEBUG", "p2ptun"))
        dir_a, dir_b = os.path.join(tmp, "agent-a"), os.path.join(tmp, "agent-b")
        return (env, (dir_a, self.agent_id(net, host_a, dir_a)),
                (dir_b, self.agent_id(net, host_b, dir_b)))

    def run(self, net, tmp):
        case = self.case
        self.net = net
        if case.name in faults.CASES:
            faults.run(self, net, tmp, sys.modules[__name__])
            return
        if case.name in media.CASES:
            media.run(self, net, tmp, sys.modules[__name__])
            return
        net.internet()
        if case.name == "loopback-relay":
            host_a = host_b = net.inet
        elif case.name == "same-lan":
            hosts, _ = net.site(1, "portrestricted", hosts=2)
            host_a, host_b = hosts
        else:
            host_a = net.site(1, case.nat_a, mtu=case.mtu_a)[0][0]
            host_b = net.site(2, "portrestricted" if case.nat_b == "cgnat" else case.nat_b,
                              behind_cgn=case.nat_b == "cgnat")[0][0]

        if case.name == "relay-shortcut":
            self.block(["ip saddr 203.0.113.11 udp dport != %d" % RELAY_PORT],
                       hooks=("input",))
        if case.name in ("relay-to-direct", "one-way-block"):
            # On the lab internet's bridge: UDP between the two hosts only,
            # both ways or from A to B only.
            rules = ["ip saddr 203.0.113.11 ip daddr 203.0.113.12 meta l4proto udp"]
            if case.name == "relay-to-direct":
                rules.append("ip saddr 203.0.113.12 ip daddr 203.0.113.11 meta l4proto udp")
            self.block(rules)

        env, (dir_a, id_a), (dir_b, id_b) = self.start_services(net, tmp, host_a, host_b)

        peer_py = os.path.join(natlab.HERE, "peer.py")
        services = net.start("services", host_a,
                             [sys.executable, peer_py, "services", str(case.size), "7"],
                             capture_stdout=True)
        ports = services.proc.stdout.readline().decode().split()
        check(len(ports) == 3 and ports[0] == "ports", "services did not start: %r" % ports)
        extra = ["--relay-only"] if case.name == "loopback-relay" else []
        server = net.start("serve", host_a,
                           [self.agent_bin, "serve", "--config", dir_a,
                            "--expose", "down=127.0.0.1:%s" % ports[1],
                            "--expose", "up=127.0.0.1:%s" % ports[2], "--trust", id_b] + extra,
                           env=env)
        server.wait_line("serving as " + id_a, timeout=30)
        if case.name == "loopback-relay":
            self.relay_unreachable(net, host_b, dir_b, id_a, env)

        t0 = time.monotonic()
        client = net.start("pair", host_b,
                           [self.agent_bin, "pair", id_a, "--config", dir_b,
                            "-L", "%d:down" % FWD_DOWN, "-L", "%d:up" % FWD_UP] + extra,
                           env=env)
        m = client.wait_line(r"tunnel up: .*|^p2ptun-agent: error: .*", timeout=60)
        connect_ms = (time.monotonic() - t0) * 1000
        check(m.group(0).startswith("tunnel up: "), "pair failed: %s" % m.group(0))
        self.result["connect_ms"] = round(connect_ms)
        client.wait_line("forwarding 127.0.0.1:%d -> up" % FWD_UP, timeout=30)
        if case.name == "relay-to-direct":
            self.move_to_direct(net, host_b, client, id_a, peer_py, m.group(0))
        elif case.name == "one-way-block":
            self.direct_after_block(net, client, server, id_a, id_b, m.group(0))
        elif case.name == "relay-shortcut":
            self.shortcut_after_block(server, id_b)
        elif case.name == "signal-cut":
            self.notice_signal_cut(net, host_b)

        transfer = subprocess.Popen(net.exec_argv(host_b, [sys.executable, peer_py, "transfer",
                                                           str(FWD_DOWN), str(FWD_UP),
                                                           str(case.size), "7", "9"]),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            if case.name == "signal-killed":
                time.sleep(SIGNAL_KILLED_AFTER_S)
                self.signal_proc.proc.kill()
                self.result["signal_killed_mid_transfer"] = transfer.poll() is None
                sys.stderr.write("p2ptun-signal killed (SIGKILL) %s the transfer\n"
                                 % ("during" if transfer.poll() is None else "after"))
            stdout, stderr = transfer.communicate(timeout=900)
        finally:
            if transfer.poll() is None:
                transfer.kill()
                transfer.wait(10)
        out = subprocess.CompletedProcess(transfer.args, transfer.returncode, stdout, stderr)
        sys.stderr.write(out.stderr.decode(errors="replace"))
        try:
            t = json.loads(out.stdout.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise TestFailure("transfer printed no result: %r" % out.stdout[-400:])
        # Datagrams the hosts' kernels dropped for full receive buffers: the
        # usual cause of a slow transfer (each drop is a retransmission).
        self.result["udp_rcvbuf_errors"] = {
            side: net.udp_counters(ns).get("RcvbufErrors", 0)
            for side, ns in (("a", host_a), ("b", host_b))}
        self.result["transfer_s"] = round(t["elapsed"], 2)
        self.result["mib_per_s"] = round(2 * case.size / MIB / t["elapsed"], 1)

        # The path in use after the transfer, on both sides. The tunnel may
        # start on the relay and move when a direct pair is found later (a
        # peer-reflexive one, through a symmetric NAT, can take longer than
        # the transfer): give ICE a few seconds to settle before judging.
        deadline = time.monotonic() + SETTLE_S
        while True:
            cpath = final_path(client, id_a)
            spath = final_path(server, id_b)
            if (cpath and spath and observed_outcome(cpath, spath) == case.expected
                    or time.monotonic() >= deadline):
                break
            time.sleep(0.1)
        check(cpath is not None, "pair printed no path")
        check(spath is not None, "serve printed no path")
        path, transport = observed_outcome(cpath, spath)
        self.result["observed"] = {"path": path, "transport": transport,
                                   "client": cpath["line"], "server": spath["line"]}
        self.result["path_changes"] = sum("path changed:" in l
                                          for l in client.text().splitlines())
        self.result["packet_size"] = {"client": packet_size(client),
                                      "server": packet_size(server)}

        check(t["down_done"] and t["down_bytes"] == case.size
              and t["down_sha256"] == t["down_expected"],
              "download differs: %d of %d bytes%s" % (t["down_bytes"], case.size,
                                                       " (%s)" % t["down_error"]
                                                       if "down_error" in t else ""))
        check(t["up_answer"] == t["up_expected"],
              "upload hash differs: %r%s" % ((t["up_answer"] or "")[:80],
                                             " (%s)" % t["up_error"] if "up_error" in t else ""))
        sys.stderr.write("%d MiB each way in %.2f s; client: %s; server: %s\n"
                         % (case.size // MIB, t["elapsed"], cpath["line"], spath["line"]))
        # Each program ends cleanly on SIGTERM: exit code 0, which under the
        # sanitizers also means no leak or error report at exit.
        for proc in (client, server, self.signal_proc, self.relay_proc):
            if proc is self.signal_proc and case.name == "signal-killed":
                continue
            proc.signal(signal.SIGTERM)
            code = proc.wait_exit(30)
            check(code == 0, "%s exited %d on SIGTERM" % (proc.name, code))
        if case.servers_ip != "127.0.0.1":
            for proc in (client, server):
                wrong = misnamed_paths(proc, case.servers_ip)
                check(not wrong, "%s called a path through the relay direct: %s"
                      % (proc.name, wrong[0] if wrong else ""))
        if case.mtu_a is not None:
            for side, size in self.result["packet_size"].items():
                check(size is not None and SMALL_MTU_PACKET - 8 < size <= SMALL_MTU_PACKET,
                      "%s sends packets of %s bytes through a %d-byte MTU (expected %d - 8 "
                      "to %d)" % (side, size, SMALL_MTU, SMALL_MTU_PACKET, SMALL_MTU_PACKET))
        check((path, transport) == case.expected
              or (path, transport) in ALSO_ACCEPTED.get(case.name, ()),
              "expected %s over %s, got %s over %s (pair: %s; serve: %s)"
              % (case.expected[0], case.expected[1], path, transport, cpath["line"],
                 spath["line"]))


def move_to_direct_check(first_line, upload, changed):
    check(" path relayed " in first_line, "the tunnel did not start on the relay: %s"
          % first_line)
    check(changed is not None and " path direct " in changed.group(0),
          "the tunnel did not move to the direct pair")
    check(upload.get("answer") == upload["expected"],
          "the stream open across the move differs: %r" % upload)


def main(argv):
    cases = sorted(EXPECTED)
    if len(argv) != 4 or argv[3] not in EXPECTED:
        sys.stderr.write("usage: %s BUILD_DIR RESULTS_DIR CASE (%s)\n"
                         % (argv[0], ", ".join(cases)))
        return 2
    runner = Runner(argv[1], argv[2], Case(argv[3]))
    # meson stops a test that runs too long with SIGTERM: make it an
    # exception, so that the namespaces and processes are still removed.
    # A second signal is ignored, so that it cannot cut the clean-up short.
    def interrupted(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    code = 1
    tmp = None
    try:
        natlab.preflight()
        natlab.sweep_stale()
        tmp = natlab.make_tmp()
        with natlab.Net() as net:
            runner.run(net, tmp)
        runner.result["status"] = "pass"
        sys.stderr.write("PASS: %s\n" % argv[3])
        code = 0
    except TestSkip as e:
        runner.result["status"] = "skip"
        runner.result["reason"] = str(e)
        sys.stdout.write("SKIP: %s\n" % e)
        code = 77
    except TestFailure as e:
        runner.result["reason"] = str(e)
        sys.stderr.write("FAIL: %s\n" % e)
    except SystemExit as e:
        runner.result["reason"] = "interrupted (signal %s)" % (e.code - 128 if isinstance(
            e.code, int) else e.code)
        sys.stderr.write("FAIL: %s\n" % runner.result["reason"])
        code = e.code if isinstance(e.code, int) else 1
    except Exception as e:  # a bug of the test itself: still a failure, with the trace
        import traceback
        traceback.print_exc()
        runner.result["reason"] = "%s: %s" % (type(e).__name__, e)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        try:
            runner.write_result()
        except OSError as e:
            sys.stderr.write("cannot write the result: %s\n" % e)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
