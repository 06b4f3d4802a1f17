"""The NAT lab: a small internet of network namespaces per test case, with
NAT routers made of nftables rules (the recipes of DESIGN.md, "NAT lab").
Python standard library only.

Every namespace is named p2pt-PID-RAND-ROLE, PID being the test process:
cases run in parallel without meeting, and a later case removes what a
killed one left behind (its PID is gone). Nothing is added to the root
namespace: links are created inside the lab's namespaces (`ip -n NS link
add ... netns NS2`), and programs run through `ip netns exec`.

One case's world:

  inet     bridge br0, 203.0.113.1/24: p2ptun-signal (TCP 8443), p2ptun-relay
           (TURN and STUN, 3478); default route to nowhere (see internet())
  site N   public:  host hN, eth0 203.0.113.(10+N)
           NAT:     router rN, wan 203.0.113.(10+N), lan 10.N.0.1/24
                    host(s) hN (hNa, hNb, ... on a shared LAN), 10.N.0.2...
           CGNAT:   carrier NAT cN (wan 203.0.113.(10+N), lan 100.64.0.1/10)
                    -> home router rN (wan 100.64.0.2/10) -> host hN
           joined:  a second site's LAN reaching an existing host through
                    another interface, down until roam() moves it there
           second relay (relay-failover): 203.0.113.2 on br0 too

Faults (the "staying connected" cases, faults.py): bridge_block() drops
what nft rules match on the bridge (with counters, to see that it did);
rebind() makes a NAT router forget its mappings; roam() moves a host to
another network."""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from lab import Process, TestFailure, TestSkip, check  # noqa: E402

NS_PREFIX = "p2pt-"
NS_RE = re.compile(r"^p2pt-(\d+)-[0-9a-f]+-")

# The lab's internet: one bridge on a documentation range (RFC 5737) in the
# namespace "inet", which also holds the signaling server and the relay.
SERVERS_IP = "203.0.113.1"
WORLD_GW = "203.0.113.254"
# 100.64.0.0/10 (RFC 6598) between a carrier-grade NAT and a home router.
CGN_INSIDE = "100.64.0.1"
CGN_HOME = "100.64.0.2"

NAT_TYPES = ("none", "fullcone", "addrrestricted", "portrestricted", "symmetric", "udpblocked")

NAT_LABELS = {
    "none": "public",
    "fullcone": "full cone",
    "addrrestricted": "addr-restricted",
    "portrestricted": "port-restricted",
    "symmetric": "symmetric",
    "udpblocked": "UDP blocked",
    "cgnat": "CGNAT",
}


def nat_ruleset(nat, lan_hosts, ports=None):
    """The nft ruleset of a router of type nat whose inside hosts are
    lan_hosts (the first one gets the full- and address-restricted cone
    forwards). Interfaces: "wan" outside, "lan" inside. With ports
    ("LOW-HIGH"), the mappings take their outside port from that range
    (masquerade otherwise keeps the inside port when it is free)."""
    masq = "masquerade"
    if nat == "symmetric":
        # A new random port for each new mapping (address+port-dependent mapping).
        masq = "masquerade random,fully-random"
    rules = ["table ip p2ptnat {"]
    if nat == "addrrestricted":
        # Remember every address the inside sent to; only those may come in.
        rules += ["  set seen {", "    type ipv4_addr; flags dynamic,timeout; timeout 10m;", "  }",
                  "  chain forward {",
                  "    type filter hook forward priority filter; policy accept;",
                  '    iifname "lan" oifname "wan" update @seen { ip daddr }', "  }"]
    if nat == "udpblocked":
        rules += ["  chain forward {",
                  "    type filter hook forward priority filter; policy accept;",
                  '    iifname "lan" meta l4proto udp drop', "  }"]
    if nat == "fullcone":
        rules += ["  chain prerouting {",
                  "    type nat hook prerouting priority dstnat; policy accept;",
                  '    iifname "wan" udp dport 1024-65535 dnat to %s' % lan_hosts[0], "  }"]
    if nat == "addrrestricted":
        rules += ["  chain prerouting {",
                  "    type nat hook prerouting priority dstnat; policy accept;",
                  '    iifname "wan" ip saddr @seen udp dport 1024-65535 dnat to %s'
                  % lan_hosts[0], "  }"]
    # Like any router's firewall, drop what comes in from outside for the
    # router itself. Without this, a peer's hole-punching packet that reaches
    # the mapped port before the inside host has sent to that peer is
    # accepted for local delivery, and conntrack confirms an entry for it
    # (peer -> router:port); the host's own packet to that peer then
    # collides with it, and masquerade picks another port: a cone NAT acts
    # as a symmetric one. A dropped packet leaves no entry behind.
    rules += ["  chain input {",
              "    type filter hook input priority filter; policy accept;",
              '    iifname "wan" ct state new drop', "  }"]
    rules += ["  chain postrouting {",
              "    type nat hook postrouting priority srcnat; policy accept;"]
    if ports:
        # A port range needs the protocol known; the rest (ICMP) as before.
        rules.append('    oifname "wan" meta l4proto { tcp, udp } %s to :%s' % (masq, ports))
    rules += ['    oifname "wan" %s' % masq, "  }",
              "}"]
    return "\n".join(rules) + "\n"


class Link:
    """An emulated link (linkem, built next to this file by meson): one-way
    delay and jitter in ms, random loss in percent and rate in bit/s (0:
    none), each direction; queue in bytes (None: one bandwidth-delay product)."""

    def __init__(self, binary, delay_ms=0, loss=0, rate=0, queue=None, seed=1, jitter_ms=0):
        self.binary = binary
        self.delay_ms, self.loss, self.rate, self.queue, self.seed = (delay_ms, loss, rate,
                                                                      queue, seed)
        self.jitter_ms = jitter_ms

    def argv(self):
        a = ["--delay", "%g" % self.delay_ms, "--jitter", "%g" % self.jitter_ms,
             "--loss", "%g" % self.loss, "--seed", str(self.seed)]
        if self.rate:
            a += ["--rate", str(int(self.rate))]
        if self.queue:
            a += ["--queue", str(int(self.queue))]
        return a


def run(argv, timeout=20, check_rc=True):
    out = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=timeout)
    if check_rc and out.returncode != 0:
        raise TestFailure("%s: exit %d: %s" % (" ".join(argv), out.returncode,
                                               out.stderr.decode(errors="replace").strip()))
    return out.stdout.decode(errors="replace")


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def list_namespaces():
    out = run(["ip", "netns", "list"], check_rc=False)
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def remove_namespace(name):
    """Kills what still runs in namespace name (only lab processes can be
    there) and deletes it."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = run(["ip", "netns", "pids", name], check_rc=False).split()
        if not pids:
            break
        for p in pids:
            try:
                os.kill(int(p), sig)
            except (ProcessLookupError, ValueError):
                pass
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and run(["ip", "netns", "pids", name],
                                                  check_rc=False).split():
            time.sleep(0.05)
    run(["ip", "netns", "del", name], check_rc=False)


TMP_PREFIX = "p2ptun-natlab-"


def make_tmp():
    """The case's own temporary directory, named after its process like the
    namespaces."""
    return tempfile.mkdtemp(prefix="%s%d-" % (TMP_PREFIX, os.getpid()))


def sweep_stale():
    """Removes lab namespaces and temporary directories whose test process is
    gone (a run killed with SIGKILL cannot clean up after itself)."""
    for name in list_namespaces():
        m = NS_RE.match(name)
        if m and not _pid_alive(int(m.group(1))):
            remove_namespace(name)
    tmp = tempfile.gettempdir()
    for name in os.listdir(tmp):
        m = re.match(r"^%s(\d+)-" % TMP_PREFIX, name)
        if m and not _pid_alive(int(m.group(1))):
            shutil.rmtree(os.path.join(tmp, name), ignore_errors=True)


def preflight():
    """Raises TestSkip with the reason when this machine cannot host the lab."""
    if os.geteuid() != 0:
        raise TestSkip("the NAT lab needs root to create network namespaces")
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            raise TestSkip("the NAT lab needs %r (iproute2, nftables)" % tool)
    probe = "%s%d-%s-probe" % (NS_PREFIX, os.getpid(), os.urandom(3).hex())
    out = subprocess.run(["ip", "netns", "add", probe], stdin=subprocess.DEVNULL,
                         capture_output=True, timeout=20)
    if out.returncode != 0:
        raise TestSkip("cannot create a network namespace: %s"
                       % out.stderr.decode(errors="replace").strip())
    try:
        out = subprocess.run(["ip", "netns", "exec", probe, "nft", "list", "ruleset"],
                             stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
        if out.returncode != 0:
            raise TestSkip("nft does not work in a namespace here: %s"
                           % out.stderr.decode(errors="replace").strip())
    finally:
        remove_namespace(probe)


class Net:
    """The namespaces, links and processes of one case; close() removes
    them all and is safe to call on a half-built lab."""

    def __init__(self):
        self.prefix = "%s%d-%s-" % (NS_PREFIX, os.getpid(), os.urandom(3).hex())
        self.namespaces = []
        self.procs = []
        # site index -> (its NAT router's namespace, NAT type, inside hosts'
        # addresses); public sites have none.
        self.routers = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        for p in reversed(self.procs):
            try:
                p.stop()
            except Exception:  # keep cleaning up
                pass
        self.procs = []
        for name in reversed(self.namespaces):
            remove_namespace(name)
        self.namespaces = []

    def ns(self, role):
        """A new namespace with loopback up, IPv6 off (no stray candidates,
        no duplicate address detection delays) and forwarding on."""
        name = self.prefix + role
        run(["ip", "netns", "add", name])
        self.namespaces.append(name)
        run(["ip", "-n", name, "link", "set", "lo", "up"])
        run(["ip", "netns", "exec", name, "sysctl", "-q", "-w",
             "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1",
             "net.ipv4.ip_forward=1"])
        return name

    def link(self, ns1, if1, ns2, if2):
        """A veth pair from ns1 (if1) to ns2 (if2), created inside ns1."""
        run(["ip", "-n", ns1, "link", "add", if1, "type", "veth", "peer", "name", if2,
             "netns", ns2])

    def addr(self, ns, ifname, cidr):
        run(["ip", "-n", ns, "addr", "add", cidr, "dev", ifname])
        run(["ip", "-n", ns, "link", "set", ifname, "up"])

    def route(self, ns, via):
        run(["ip", "-n", ns, "route", "add", "default", "via", via])

    def nft(self, ns, ruleset):
        out = subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"],
                             input=ruleset.encode(), capture_output=True, timeout=20)
        check(out.returncode == 0, "nft in %s: %s" % (ns, out.stderr.decode(errors="replace")))

    def udp_counters(self, ns):
        """The namespace's UDP counters (/proc/net/snmp), e.g. RcvbufErrors:
        datagrams dropped because a socket's receive buffer was full."""
        lines = [l.split() for l in run(["ip", "netns", "exec", ns, "cat", "/proc/net/snmp"])
                 .splitlines() if l.startswith("Udp:")]
        if len(lines) < 2:
            return {}
        return {k: int(v) for k, v in zip(lines[0][1:], lines[1][1:])}

    def exec_argv(self, ns, argv):
        return ["ip", "netns", "exec", ns] + list(argv)

    def start(self, name, ns, argv, **kw):
        p = Process(name, self.exec_argv(ns, argv), **kw)
        self.procs.append(p)
        return p

    # ---- topology ----

    def internet(self):
        """The internet namespace with its bridge; returns its name."""
        self.inet = self.ns("inet")
        run(["ip", "-n", self.inet, "link", "add", "br0", "type", "bridge"])
        self.addr(self.inet, "br0", SERVERS_IP + "/24")
        # The rest of the world: a default route to a gateway that is not
        # there (a permanent neighbour entry with an unused MAC address), so
        # that packets to anywhere else vanish without an error, as on the
        # real internet. Without it, a relay's send to a private address the
        # peer offered as a candidate fails at once with ENETUNREACH (coturn
        # then closes that client's TCP allocation), which no real relay sees.
        run(["ip", "-n", self.inet, "neigh", "add", WORLD_GW, "lladdr", "02:00:00:00:00:fe",
             "dev", "br0", "nud", "permanent"])
        run(["ip", "-n", self.inet, "route", "add", "default", "via", WORLD_GW])
        self.ports = 0
        return self.inet

    def plug(self, ns, ifname, cidr, link=None, mtu=None):
        """Connects ns to the internet bridge through ifname, at cidr; with
        link (a Link) through an emulated link: a namespace of its own
        between ifname and the bridge port, where linkem copies the frames.
        With mtu, the connection carries packets of at most mtu bytes: ns
        answers larger ones it would forward with ICMP "fragmentation
        needed", the bridge drops larger ones towards ns without a word (a
        black hole)."""
        self.ports += 1
        port = "p%d" % self.ports
        if link is None:
            self.link(ns, ifname, self.inet, port)
        else:
            self.emulated_link(ns, ifname, self.inet, port, link, "e%d" % self.ports)
        if mtu is not None:
            run(["ip", "-n", ns, "link", "set", "dev", ifname, "mtu", str(mtu)])
            run(["ip", "-n", self.inet, "link", "set", "dev", port, "mtu", str(mtu)])
            # A UDP GSO message stays whole through veths and the bridge,
            # which check the MTU only of packets already cut: a wire cuts it
            # at the sender. The port cuts it, so that the cut packets meet
            # the black hole as a wire's would.
            run(["ip", "netns", "exec", self.inet, "ethtool", "-K", port,
                 "tx-udp-segmentation", "off"])
        run(["ip", "-n", self.inet, "link", "set", port, "master", "br0", "up"])
        self.addr(ns, ifname, cidr)
        if link is not None:
            # The kernel reports carrier on (IFF_RUNNING) up to a second
            # later, and libnice gathers no host candidate before that.
            self.wait_running(ns, ifname)
            self.wait_running(self.inet, port)

    def wait_running(self, ns, ifname, timeout=5):
        deadline = time.monotonic() + timeout
        while True:
            out = run(["ip", "-n", ns, "-o", "link", "show", "dev", ifname])
            if "state UP" in out:
                return
            check(time.monotonic() < deadline, "%s in %s is not up: %s" % (ifname, ns, out))
            time.sleep(0.05)

    def emulated_link(self, ns1, if1, ns2, if2, link, role):
        """Instead of a veth pair ns1/if1 -- ns2/if2: ns1/if1 -- ifa | ROLE |
        ifb -- ns2/if2, ROLE a namespace in which linkem copies every frame
        between ifa and ifb after link's delay, loss and rate. Returns linkem's
        Process (stopped by close(), which prints its counters)."""
        if shutil.which("ethtool") is None:
            raise TestSkip("an emulated link needs ethtool (package ethtool)")
        check(link.binary and os.access(link.binary, os.X_OK),
              "no linkem program at %r" % link.binary)
        e = self.ns(role)
        self.link(ns1, if1, e, "ifa")
        self.link(e, "ifb", ns2, if2)
        # linkem's copies carry no "checksum still to do" mark: the ends
        # that send into it must finish checksums (and so segmentation)
        # themselves, and the ends it sends from must not offload either.
        for n, i in ((ns1, if1), (e, "ifa"), (e, "ifb"), (ns2, if2)):
            run(["ip", "netns", "exec", n, "ethtool", "-K", i, "tx", "off"])
        for i in ("ifa", "ifb"):
            run(["ip", "-n", e, "link", "set", i, "up"])
        proc = self.start("linkem-" + role, e, [link.binary] + link.argv() + ["ifa", "ifb"])
        proc.wait_line(r"^linkem: ready", timeout=10)
        return proc

    def site(self, index, nat, hosts=1, behind_cgn=False, link=None, mtu=None, join=None):
        """One site: a host on the internet (nat "none") or a NAT router and
        hosts behind it on 10.INDEX.0.0/24. With behind_cgn the router's wan
        is in 100.64.0.0/10 behind a carrier-grade NAT (port-restricted, as
        RFC 6888 asks: endpoint-independent mapping). With link (a Link) the
        site's connection to the internet is an emulated link (linkem); with
        mtu it carries packets of at most mtu bytes (see plug).
        With join=(NS, IFNAME), the site's one host is the existing
        namespace NS, through a new interface IFNAME that stays down and
        without an address (roam() moves NS there later).
        Returns (host namespaces, their addresses)."""
        public = "203.0.113.%d" % (10 + index)
        if nat == "none":
            h = self.ns("h%d" % index)
            self.plug(h, "eth0", public + "/24", link, mtu)
            self.route(h, SERVERS_IP)
            return [h], [public]
        r = self.ns("r%d" % index)
        if behind_cgn:
            c = self.ns("c%d" % index)
            self.plug(c, "wan", public + "/24", link, mtu)
            self.route(c, SERVERS_IP)
            self.link(c, "lan", r, "wan")
            self.addr(c, "lan", CGN_INSIDE + "/10")
            self.addr(r, "wan", CGN_HOME + "/10")
            self.route(r, CGN_INSIDE)
            self.nft(c, nat_ruleset("portrestricted", [CGN_HOME]))
        else:
            self.plug(r, "wan", public + "/24", link, mtu)
            self.route(r, SERVERS_IP)
        lan = "10.%d.0" % index
        names, addrs = [], []
        if join is not None:
            check(nat != "none" and hosts == 1, "join needs a NAT site with one host")
            self.link(r, "lan", join[0], join[1])
            self.addr(r, "lan", lan + ".1/24")
            addrs.append(lan + ".2")
            self.nft(r, nat_ruleset(nat, addrs))
            self.routers[index] = (r, nat, addrs)
            return [join[0]], addrs
        if hosts == 1:
            h = self.ns("h%d" % index)
            self.link(r, "lan", h, "eth0")
            self.addr(r, "lan", lan + ".1/24")
            names.append(h)
        else:
            run(["ip", "-n", r, "link", "add", "lan", "type", "bridge"])
            self.addr(r, "lan", lan + ".1/24")
            for i in range(hosts):
                h = self.ns("h%d%s" % (index, "abcdefgh"[i]))
                self.link(r, "l%d" % i, h, "eth0")
                run(["ip", "-n", r, "link", "set", "l%d" % i, "master", "lan", "up"])
                names.append(h)
        for i, h in enumerate(names):
            a = "%s.%d" % (lan, 2 + i)
            self.addr(h, "eth0", a + "/24")
            self.route(h, lan + ".1")
            addrs.append(a)
        self.nft(r, nat_ruleset(nat, addrs))
        self.routers[index] = (r, nat, addrs)
        return names, addrs

    # ---- faults ----

    def roam(self, ns, old_if, new_if, cidr, gateway):
        """Host ns moves from one network to another, as a laptop does: the
        old interface loses its address (and so its routes) and goes down,
        the new one comes up with cidr and a default route via gateway."""
        run(["ip", "-n", ns, "addr", "flush", "dev", old_if])
        run(["ip", "-n", ns, "link", "set", old_if, "down"])
        self.addr(ns, new_if, cidr)
        self.wait_running(ns, new_if)
        self.route(ns, gateway)

    def rebind(self, index, ports):
        """Site index's NAT router forgets its mappings, as one that
        rebooted does: its outside ports come from the range ports
        ("LOW-HIGH") from now on (so that every flow gets a new one: masquerade
        would keep the old port otherwise), and its connection tracking is
        flushed. Needs the conntrack tool (see has_conntrack)."""
        r, nat, addrs = self.routers[index]
        self.nft(r, "delete table ip p2ptnat\n" + nat_ruleset(nat, addrs, ports))
        run(self.exec_argv(r, ["conntrack", "-F"]))

    def nat_ports(self, index, inside, proto="udp"):
        """The outside ports that site index's router maps inside's flows
        (proto) to, from its connection tracking table."""
        r = self.routers[index][0]
        out = run(self.exec_argv(r, ["conntrack", "-L", "-p", proto, "-s", inside]),
                  check_rc=False)
        ports = set()
        for line in out.splitlines():
            # original tuple first, then the reply tuple, whose dport is
            # the mapped outside port.
            dports = re.findall(r"\bdport=(\d+)", line)
            if len(dports) >= 2:
                ports.add(int(dports[1]))
        return ports

    def bridge_block(self, rules, hooks=("forward",), table="p2ptun_block"):
        """Drops what rules match on the lab internet's bridge: traffic
        between sites at the forward hook; to and from the servers on the
        bridge's own address at input and output. Each rule gets a counter
        (bridge_counters)."""
        net_rules = "".join("  %s counter drop\n" % r for r in rules)
        chains = "".join(" chain %s {\n  type filter hook %s priority 0;\n%s }\n"
                         % (hook, hook, net_rules) for hook in hooks)
        self.nft(self.inet, "table bridge %s {\n%s}\n" % (table, chains))

    def bridge_counters(self, table="p2ptun_block"):
        """{rule text without its counter: packets dropped, summed over the
        hooks} of a table made by bridge_block."""
        out = run(self.exec_argv(self.inet, ["nft", "list", "table", "bridge", table]))
        counts = {}
        for line in out.splitlines():
            m = re.match(r"\s*(.*?) counter packets (\d+) bytes \d+ drop", line)
            if m:
                counts[m.group(1)] = counts.get(m.group(1), 0) + int(m.group(2))
        return counts

    def bridge_unblock(self, table="p2ptun_block"):
        run(self.exec_argv(self.inet, ["nft", "delete", "table", "bridge", table]))

    def link_rx_packets(self, ns, ifname):
        """Packets ifname in ns has received (ip netns exec mounts the
        namespace's own /sys)."""
        return int(run(self.exec_argv(ns, ["cat", "/sys/class/net/%s/statistics/rx_packets"
                                           % ifname])).strip())


def has_conntrack():
    """Whether the conntrack tool (package conntrack) is here."""
    return shutil.which("conntrack") is not None
