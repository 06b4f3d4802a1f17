"""The media leg on the wire (issue 17), a case of the NAT lab: two public
hosts, an L16 stream from a GStreamer sender on B through `pair -M` to a
GStreamer receiver behind `serve --expose .../rtp` on A, and tcpdump on the
lab internet's bridge between them. The capture must show SRTP, not RTP in
the clear: RTP headers readable (version 2, one SSRC, the sequence numbers
sent), no payload equal to any frame of the plaintext, and each packet 16
bytes longer than its plaintext (AES-GCM's tag). Then libsrtp2 alone
(srtpdecrypt.c, nothing of p2ptun) decrypts the captured packets with the
keys of the pairing agent's P2PTUN_SRTP_KEYLOG and gets back exactly the
audio that was sent, under the same headers. (GStreamer's srtpdec was tried
first: with AES-GCM keys from caps, 1.22 decrypted to other bytes and crashed
at the end now and then.) So the format is standard SRTP (RFC 3711, RFC
7714), keyed by DTLS-SRTP (RFC 5764).

Run by test_nat.py (CASES below); the stream's constants and comparison
are tests/integration/test_media.py's."""

import base64
import os
import shutil
import signal
import struct
import subprocess
import sys
import time

import natlab
from natlab import TestSkip, check

import test_media as tm

DIRECT = ("direct", "udp")
CASES = {
    "media-srtp": ("none", "none", DIRECT,
                   "an RTP stream through -M, captured between the sites: SRTP on the wire, "
                   "decrypted by libsrtp2 with the key log"),
    "media-relay-to-direct": ("none", "none", DIRECT,
                              "an RTP stream through -M on the relay, moved to the direct "
                              "pair mid-stream"),
}

HOST_A, HOST_B = "203.0.113.11", "203.0.113.12"
RTP_PORT, M_PORT, SENDER_PORT = 5004, 6004, 7004
GCM_TAG = 16
PCAP_LINKTYPE_ETHERNET = 1


def gst_argv(pipeline, eos_on_interrupt=False):
    return (["gst-launch-1.0", "-q"] + (["-e"] if eos_on_interrupt else [])
            + pipeline.split())


def wait_bound(net, ns, port, proc, timeout=10.0):
    """Until a UDP socket in ns is bound to 127.0.0.1:port."""
    local = "0100007F:%04X" % port
    deadline = time.monotonic() + timeout
    while True:
        table = natlab.run(["ip", "netns", "exec", ns, "cat", "/proc/net/udp"])
        if any(len(l.split()) > 1 and l.split()[1] == local for l in table.splitlines()[1:]):
            return
        check(proc.proc.poll() is None, "%s exited before it bound UDP port %d: %s"
              % (proc.name, port, proc.text()[-300:]))
        check(time.monotonic() < deadline, "%s did not bind UDP port %d" % (proc.name, port))
        time.sleep(0.05)


def udp_payloads(pcap, src, dst):
    """The UDP payloads of IPv4 packets from src to dst in a capture of
    Ethernet frames (pcap, microsecond format), in order, with each
    record's bytes: [(payload, record)]."""
    with open(pcap, "rb") as f:
        data = f.read()
    check(len(data) >= 24, "the capture is empty")
    magic, _, _, _, _, _, linktype = struct.unpack("<IHHiIII", data[:24])
    check(magic == 0xa1b2c3d4 and linktype == PCAP_LINKTYPE_ETHERNET,
          "unexpected capture format (magic %#x, link type %d)" % (magic, linktype))
    out, off = [], 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack("<IIII", data[off:off + 16])
        frame = data[off + 16:off + 16 + incl]
        record = data[off:off + 16 + incl]
        off += 16 + incl
        if len(frame) < 14 + 20 or frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        ihl = (ip[0] & 0x0f) * 4
        if ip[9] != 17 or len(ip) < ihl + 8:
            continue
        if socket_ntoa(ip[12:16]) != src or socket_ntoa(ip[16:20]) != dst:
            continue
        udp_len = struct.unpack(">H", ip[ihl + 4:ihl + 6])[0]
        out.append((ip[ihl + 8:ihl + udp_len], record))
    return out


def socket_ntoa(b):
    return ".".join(str(x) for x in b)


def srtp_packets(payloads):
    """Those that are RTP by RFC 7983 (first byte 128..191) and not RTCP
    (second byte 192..223), with payload type 96."""
    return [(p, r) for p, r in payloads
            if len(p) >= 12 and 128 <= p[0] <= 191 and not 192 <= p[1] <= 223
            and p[1] & 0x7f == 96]


def key_log(path):
    """(profile, the sender's key and salt) from the pairing agent's log."""
    with open(path) as f:
        lines = [l.split() for l in f if l.startswith("SRTP ")]
    check(len(lines) == 1, "the key log has %d SRTP lines, not 1" % len(lines))
    fields = dict(kv.split("=", 1) for kv in lines[0][4:])
    return lines[0][3], base64.b64decode(fields["out"])


def skip_unless_tools():
    for tool in ("tcpdump", "gst-launch-1.0"):
        if not shutil.which(tool):
            raise TestSkip("%s is not installed" % tool)
    why = tm.missing_gstreamer()
    if why:
        raise TestSkip(why)


class Leg:
    """Two public hosts, the servers, a receiver behind `serve --expose
    music=.../rtp` on A and `pair -M` on B (with the key log), up to the
    leg's "open" line."""

    def __init__(self, runner, net, tmp, before_agents=None):
        self.net, self.tmp = net, tmp
        net.internet()
        self.host_a = net.site(1, "none")[0][0]
        self.host_b = net.site(2, "none")[0][0]
        if before_agents:
            before_agents()
        env, (dir_a, id_a), (dir_b, id_b) = runner.start_services(net, tmp, self.host_a,
                                                                  self.host_b)
        self.id_a, self.id_b = id_a, id_b
        self.keylog = os.path.join(tmp, "srtp-keys.log")
        self.received = os.path.join(tmp, "received.raw")
        self.rx = net.start("receiver", self.host_a,
                            gst_argv(tm.l16_receiver(RTP_PORT, self.received), True))
        wait_bound(net, self.host_a, RTP_PORT, self.rx)
        self.server = net.start("serve", self.host_a,
                                [runner.agent_bin, "serve", "--config", dir_a, "--trust", id_b,
                                 "--expose", "music=127.0.0.1:%d/rtp" % RTP_PORT], env=env)
        self.server.wait_line("serving as " + id_a, timeout=30)
        self.client = net.start("pair", self.host_b,
                                [runner.agent_bin, "pair", id_a, "--config", dir_b,
                                 "-M", "%d:music" % M_PORT],
                                env=dict(env, P2PTUN_SRTP_KEYLOG=self.keylog))
        up = self.client.wait_line(r"tunnel up: .*|^p2ptun-agent: error: .*", timeout=60)
        check(up.group(0).startswith("tunnel up: "), "pair failed: %s" % up.group(0))
        self.up_line = up.group(0)
        self.client.wait_line(r"media leg 127\.0\.0\.1:%d -> music open" % M_PORT, timeout=30)

    def send(self, pipeline):
        return self.net.start("sender", self.host_b, gst_argv(pipeline))

    def finish(self, tx, timeout):
        """Waits for the sender, ends the receiver and the agents; returns
        what the receiver wrote."""
        code = tx.wait_exit(timeout)
        check(code == 0, "the sender exited %d: %s" % (code, tx.text()[-300:]))
        time.sleep(1)
        self.rx.signal(signal.SIGINT)
        check(self.rx.wait_exit(10) == 0,
              "the receiver did not end cleanly: %s" % self.rx.text()[-300:])
        for proc in (self.client, self.server):
            proc.signal(signal.SIGTERM)
            check(proc.wait_exit(30) == 0, "%s did not exit 0 on SIGTERM" % proc.name)
        with open(self.received, "rb") as f:
            return f.read()

    def observe(self, runner, t):
        """The path both agents ended on, for the matrix (as test_nat.py's
        cases record it), checked against the case's."""
        cpath = t.final_path(self.client, self.id_a)
        spath = t.final_path(self.server, self.id_b)
        check(cpath is not None and spath is not None, "an agent printed no path")
        path, transport = t.observed_outcome(cpath, spath)
        runner.result["observed"] = {"path": path, "transport": transport,
                                     "client": cpath["line"], "server": spath["line"]}
        check((path, transport) == runner.case.expected, "expected %s over %s, got %s over %s"
              % (runner.case.expected + (path, transport)))


def reference_of(tmp, source):
    out = os.path.join(tmp, "reference.raw")
    subprocess.run(gst_argv(source + " ! filesink location=" + out), check=True, timeout=120)
    with open(out, "rb") as f:
        return f.read()


def run(runner, net, tmp, t):
    skip_unless_tools()
    if runner.case.name == "media-relay-to-direct":
        relay_to_direct(runner, net, tmp, t)
    else:
        on_the_wire(runner, net, tmp, t)


def on_the_wire(runner, net, tmp, t):
    result = runner.result
    pcap = os.path.join(tmp, "between-the-sites.pcap")
    capture = []

    def start_capture():
        capture.append(net.start("tcpdump", net.inet,
                                 ["tcpdump", "-i", "br0", "-U", "-n", "-s", "0", "-w", pcap,
                                  "udp and host %s and host %s" % (HOST_A, HOST_B)]))
        capture[0].wait_line(r"listening on br0", timeout=20)

    leg = Leg(runner, net, tmp, before_agents=start_capture)
    check(" path direct " in leg.up_line, "expected a direct path: %s" % leg.up_line)
    client, server, keylog = leg.client, leg.server, leg.keylog
    received = leg.finish(leg.send(tm.l16_sender(M_PORT, SENDER_PORT)),
                          tm.SEND_TIMEOUT)
    leg.observe(runner, t)
    time.sleep(0.5)
    capture[0].signal(signal.SIGINT)
    capture[0].wait_exit(10)

    reference = reference_of(tmp, tm.L16_SOURCE)
    plain = tm.frames(reference, tm.L16_FRAME)
    diff = tm.differences(received, reference, tm.L16_FRAME)
    check(diff is None, "the audio through the leg differs: %s" % diff)

    # On the wire: SRTP from B to A.
    packets = srtp_packets(udp_payloads(pcap, HOST_B, HOST_A))
    result["srtp_packets_captured"] = len(packets)
    check(len(packets) == tm.FRAMES, "%d SRTP packets from B to A in the capture, not %d"
          % (len(packets), tm.FRAMES))
    ssrcs = {struct.unpack(">I", p[8:12])[0] for p, _ in packets}
    seqs = [struct.unpack(">H", p[2:4])[0] for p, _ in packets]
    want = [(tm.SEQ_FROM + i) % 65536 for i in range(tm.FRAMES)]
    check(len(ssrcs) == 1, "%d SSRCs in the capture, not 1" % len(ssrcs))
    check(seqs == want, "the sequence numbers in the capture are not %d..%d in order"
          % (want[0], want[-1]))
    sizes = {len(p) for p, _ in packets}
    check(sizes == {12 + tm.L16_FRAME + GCM_TAG},
          "SRTP packets of %s bytes, not 12 + %d + a %d-byte tag"
          % (sorted(sizes), tm.L16_FRAME, GCM_TAG))
    wire = b"".join(p for p, _ in packets)
    clear = [i for i, frame in enumerate(plain) if frame in wire]
    check(not clear, "frames %s of the plaintext are in the capture" % clear[:5])
    sys.stderr.write("media-srtp: %d SRTP packets captured between the sites, SSRC %#x, "
                     "sequence %d..%d, %d bytes each, no plaintext frame among them\n"
                     % (len(packets), next(iter(ssrcs)), want[0], want[-1], sizes.pop()))

    # The same packets, decrypted by libsrtp2 alone (tests/natlab/srtpdecrypt)
    # with the logged key: the RTP that was sent, header and payload.
    profile, key = key_log(keylog)
    check(profile == "SRTP_AEAD_AES_128_GCM", "profile %s, not SRTP_AEAD_AES_128_GCM" % profile)
    records = b"".join(struct.pack(">H", len(p)) + p for p, _ in packets)
    out = subprocess.run([os.path.join(runner.build, "tests", "natlab", "srtpdecrypt"), profile,
                          base64.b64encode(key).decode()],
                         input=records, capture_output=True, timeout=60)
    check(out.returncode == 0, "srtpdecrypt: %s" % out.stderr.decode(errors="replace")[-300:])
    rtp, data = [], out.stdout
    while data:
        n = struct.unpack(">H", data[:2])[0]
        rtp.append(data[2:2 + n])
        data = data[2 + n:]
    check(len(rtp) == tm.FRAMES, "%d packets decrypted, not %d" % (len(rtp), tm.FRAMES))
    for i, (packet, (wire_packet, _)) in enumerate(zip(rtp, packets)):
        check(packet[:12] == wire_packet[:12], "packet %d: the header changed in decryption" % i)
        check(packet[0] == 0x80 and packet[1] & 0x7f == 96,
              "packet %d: not RTP version 2 of payload type 96" % i)
    diff = tm.differences(b"".join(p[12:] for p in rtp), reference, tm.L16_FRAME)
    check(diff is None, "the capture, decrypted, differs from the audio sent: %s" % diff)
    result["decrypted_as_sent"] = True
    for proc in (client, server):
        check(key.hex() not in proc.text() and base64.b64encode(key).decode() not in proc.text(),
              "%s wrote the SRTP key to its output" % proc.name)


# relay-to-direct: 20 s of audio from 64936, so that the sequence numbers
# roll over (and SRTP's rollover counter with them) after the move.
MOVE_FRAMES = 1000
MOVE_SEQ_FROM = 64936
# 441.73 Hz: at 441.7 frames 500 apart would be equal (8.834 cycles each).
MOVE_SOURCE = ("audiotestsrc wave=sine freq=441.73 volume=0.5 num-buffers=%d samplesperbuffer=160"
               " ! audio/x-raw,format=S16BE,rate=8000,channels=1" % MOVE_FRAMES)
# Packets of the old path that come after the first ones of the new: the
# receiver has no jitter buffer, so they count as missing. A few at most.
MOVE_MISSING_MAX = 10


def relay_to_direct(runner, net, tmp, t):
    """The leg starts on the relay (UDP between the sites dropped), the
    block goes while audio streams, the tunnel moves to the direct pair,
    and the audio keeps coming: each frame intact and in order, a few at
    most lost at the move, none after it, across the rollover."""
    result = runner.result
    rules = ["ip saddr %s ip daddr %s meta l4proto udp" % (HOST_A, HOST_B),
             "ip saddr %s ip daddr %s meta l4proto udp" % (HOST_B, HOST_A)]
    leg = Leg(runner, net, tmp, before_agents=lambda: runner.block(rules))
    check(" path relayed " in leg.up_line, "the tunnel did not start on the relay: %s"
          % leg.up_line)
    sender = ("%s ! rtpL16pay pt=96 seqnum-offset=%d max-ptime=20000000 ! udpsink "
              "host=127.0.0.1 port=%d bind-address=127.0.0.1 bind-port=%d sync=true"
              % (MOVE_SOURCE, MOVE_SEQ_FROM, M_PORT, SENDER_PORT))
    tx = leg.send(sender)
    time.sleep(1)
    runner.unblock()
    changed = leg.client.wait_line(r"path changed: peer %s, path direct .*" % leg.id_a,
                                   timeout=30)
    check(tx.proc.poll() is None, "the stream ended before the tunnel moved: nothing shown")
    received = leg.finish(tx, 60)
    leg.observe(runner, t)
    reference = reference_of(tmp, MOVE_SOURCE)
    want = {f: i for i, f in enumerate(tm.frames(reference, tm.L16_FRAME))}
    check(len(want) == MOVE_FRAMES, "the reference has %d different frames, not %d"
          % (len(want), MOVE_FRAMES))
    got = [want.get(f, -1) for f in tm.frames(received, tm.L16_FRAME)]
    check(-1 not in got, "%d frames arrived that were not sent" % got.count(-1))
    check(all(a < b for a, b in zip(got, got[1:])), "frames arrived out of order or twice")
    missing = sorted(set(range(MOVE_FRAMES)) - set(got))
    result["media_frames_missing_at_move"] = len(missing)
    sys.stderr.write("media-relay-to-direct: %s; %d of %d frames arrived, missing %s\n"
                     % (changed.group(0), len(got), MOVE_FRAMES, missing[:12]))
    check(len(missing) <= MOVE_MISSING_MAX, "%d frames lost (%s...), more than %d"
          % (len(missing), missing[:8], MOVE_MISSING_MAX))
    check(not missing or missing[-1] - missing[0] < 100,
          "frames lost apart from the move: %s" % missing[:12])
