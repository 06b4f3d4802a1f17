#!/usr/bin/env python3
"""Integration test of the RTP media leg (SRTP between the agents): real
GStreamer pipelines (gst-launch-1.0) on both sides of p2ptun-signal and two
p2ptun-agent processes on loopback, a serving agent with
--expose music=127.0.0.1:RPORT/rtp and a pairing agent with -M MPORT:music;
the audio that arrives is compared byte for byte. MODE direct is the direct
path, relayed the path through p2ptun-relay (--relay-only), relayed-coturn
through coturn's turnserver. TAP on stdout,
one line per check; skipped (1..0 # SKIP) without gst-launch-1.0 or one of
the elements used.

Everything on the wire is made by GStreamer except the RTCP receiver report
that the service sends back (check 6, see receiver_report): the test reads
the packets that arrive at the service itself where it needs their source
addresses (checks 4 to 6).

usage: test_media.py BUILD_DIR MODE"""

import select
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

import tap
from lab import Lab, TestFailure, TestSkip, check, free_port
from test_tunnel import UP_RE, relayed_re, start_coturn

GST = "gst-launch-1.0"
ELEMENTS = ["audiotestsrc", "rtpL16pay", "rtpL16depay", "opusenc", "opusdec",
            "rtpopuspay", "rtpopusdepay", "rtpbin", "udpsrc", "udpsink", "filesink"]

# 1.2 s of a sine whose frequency does not divide the rate, so that no two
# 20 ms frames are equal: a frame lost, repeated or out of place changes the
# bytes (checked in the sanity check). 60 packets from sequence number
# 65500: the numbers roll over past 65535 after 36 of them, and so does
# SRTP's rollover counter.
FRAMES = 60
SEQ_FROM = 65500
SINE = "audiotestsrc wave=sine freq=441.7 volume=0.5 num-buffers=%d samplesperbuffer=%%d" % FRAMES
L16_FRAME = 320  # 160 samples of 2 bytes: 20 ms at 8 kHz
L16_SOURCE = SINE % 160 + " ! audio/x-raw,format=S16BE,rate=8000,channels=1"
# max-ptime: one 20 ms frame per packet, not as many as fit the MTU.
L16_PAY = "rtpL16pay pt=96 seqnum-offset=%d max-ptime=20000000" % SEQ_FROM
L16_CAPS = "application/x-rtp,media=audio,clock-rate=8000,encoding-name=L16,channels=1,payload=96"
OPUS_SOURCE = (SINE % 960 + " ! audio/x-raw,format=S16LE,rate=48000,channels=1"
               " ! opusenc bitrate=32000 frame-size=20 ! rtpopuspay pt=96 seqnum-offset=%d"
               % SEQ_FROM)
OPUS_DECODE = "rtpopusdepay ! opusdec ! audio/x-raw,format=S16LE,rate=48000,channels=1"
OPUS_FRAME = 1920  # 960 samples of 2 bytes decoded from each 20 ms packet
OPUS_CAPS = "application/x-rtp,media=audio,clock-rate=48000,encoding-name=OPUS,payload=96"
SEND_TIMEOUT = 20.0  # a sender plays 1.2 s of audio in real time (udpsink sync=true)


def l16_sender(port, bind_port):
    return ("%s ! %s ! udpsink host=127.0.0.1 port=%d bind-address=127.0.0.1 bind-port=%d "
            "sync=true" % (L16_SOURCE, L16_PAY, port, bind_port))


def l16_receiver(port, out):
    return ("udpsrc address=127.0.0.1 port=%d caps=%s ! rtpL16depay ! filesink location=%s"
            % (port, L16_CAPS, out))


def opus_sender(port, bind_port):
    return ("%s ! udpsink host=127.0.0.1 port=%d bind-address=127.0.0.1 bind-port=%d sync=true"
            % (OPUS_SOURCE, port, bind_port))


def opus_receiver(port, out):
    return ("udpsrc address=127.0.0.1 port=%d caps=%s ! %s ! filesink location=%s"
            % (port, OPUS_CAPS, OPUS_DECODE, out))


def rtpbin_sender(port, bind_port):
    """L16 as l16_sender, through an rtpbin that also sends RTCP sender
    reports (and a BYE at the end) from bind_port + 1 to port + 1."""
    return ("rtpbin name=b %s ! %s ! b.send_rtp_sink_0 "
            "b.send_rtp_src_0 ! udpsink host=127.0.0.1 port=%d bind-address=127.0.0.1 "
            "bind-port=%d sync=true "
            "b.send_rtcp_src_0 ! udpsink host=127.0.0.1 port=%d bind-address=127.0.0.1 "
            "bind-port=%d sync=false async=false"
            % (L16_SOURCE, L16_PAY, port, bind_port, port + 1, bind_port + 1))


def missing_gstreamer():
    """Why the test cannot run here, or None."""
    if not shutil.which(GST):
        return "gst-launch-1.0 not installed"
    if not shutil.which("gst-inspect-1.0"):
        return "gst-inspect-1.0 not installed"
    for element in ELEMENTS:
        if subprocess.run(["gst-inspect-1.0", "--exists", element], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, timeout=60).returncode != 0:
            return "GStreamer element %s not installed" % element
    return None


def gst(lab, name, pipeline, eos_on_interrupt=False):
    """gst-launch-1.0 PIPELINE as a process of the lab; with -e, SIGINT
    ends the pipeline with an EOS, so that filesink writes all it got."""
    return lab.start(name, [GST, "-q"] + (["-e"] if eos_on_interrupt else [])
                     + shlex.split(pipeline))


def tail(proc, n=4):
    return " | ".join(proc.text().splitlines()[-n:]) or "(nothing on stderr)"


def wait_udp_bound(port, proc, timeout=10.0):
    """Waits until a UDP socket is bound to 127.0.0.1:port (read from
    /proc/net/udp, so that nothing else binds the port meanwhile)."""
    local = "0100007F:%04X" % port
    deadline = time.monotonic() + timeout
    while True:
        with open("/proc/net/udp") as f:
            if any(line.split()[1] == local for line in f.readlines()[1:]):
                return
        check(proc.proc.poll() is None, "%s exited (%s) before it bound UDP port %d: %s"
              % (proc.name, proc.proc.returncode, port, tail(proc)))
        check(time.monotonic() < deadline, "%s did not bind UDP port %d within %.0f s"
              % (proc.name, port, timeout))
        time.sleep(0.05)


def finish_sender(tx):
    try:
        code = tx.wait_exit(SEND_TIMEOUT)
        check(code == 0, "%s exited %d: %s" % (tx.name, code, tail(tx)))
    finally:
        tx.stop()


def stream(lab, name, sender, receiver, rx_port, out):
    """Starts the receiver pipeline, once it listens on rx_port the sender
    pipeline; ends the receiver 1 s after the sender has finished. Returns
    what the receiver wrote to out."""
    rx = gst(lab, name + "-rx", receiver, eos_on_interrupt=True)
    try:
        wait_udp_bound(rx_port, rx)
        finish_sender(gst(lab, name + "-tx", sender))
        time.sleep(1)
        rx.signal(signal.SIGINT)
        code = rx.wait_exit(10)
        check(code == 0, "%s exited %d: %s" % (rx.name, code, tail(rx)))
    finally:
        rx.stop()
    with open(out, "rb") as f:
        return f.read()


def reference(lab, name, pipeline):
    """What pipeline (ending in a filesink to the returned path's file)
    writes, without any network in between."""
    out = lab.path(name + ".raw")
    finish_sender(gst(lab, name, pipeline % out))
    with open(out, "rb") as f:
        data = f.read()
    check(data, "%s wrote nothing" % name)
    return data


def frames(data, size):
    return [data[i:i + size] for i in range(0, len(data), size)]


def differences(got, want, size):
    """None when got == want, else what differs, frame by frame (the
    frames of want are all different, checked in the sanity check). The
    receivers have no jitter buffer: their depayloader drops a packet that
    comes after a later one, so one out of order shows as missing."""
    if got == want:
        return None
    index = {f: i for i, f in enumerate(frames(want, size))}
    seen = [index.get(f, -1) for f in frames(got, size)]
    first = next((i for i, (a, b) in enumerate(zip(seen, range(len(index)))) if a != b),
                 min(len(seen), len(index)))
    missing = sorted(set(range(len(index))) - set(seen))
    return ("%d bytes arrived (%d frames of %d bytes), %d expected; first difference at frame "
            "%d; frames missing: %d %s; repeated: %d; out of order: %d; unknown: %d"
            % (len(got), len(seen), size, len(want), first, len(missing), missing[:8],
               len(seen) - len(set(seen)),
               sum(1 for a, b in zip(seen, seen[1:]) if 0 <= b < a), seen.count(-1)))


def sanity(lab, refs):
    """The pipelines, sender straight to receiver without the tunnel,
    deliver the reference bytes; the comparison notices a swapped frame."""
    refs["l16"] = reference(lab, "l16-ref", L16_SOURCE + " ! filesink location=%s")
    refs["opus"] = reference(lab, "opus-ref", OPUS_SOURCE + " ! " + OPUS_DECODE
                             + " ! filesink location=%s")
    l16 = frames(refs["l16"], L16_FRAME)
    check(len(l16) == FRAMES and len(set(l16)) == FRAMES,
          "the L16 reference is not %d different frames of %d bytes (%d frames, %d different)"
          % (FRAMES, L16_FRAME, len(l16), len(set(l16))))
    swapped = b"".join([l16[1], l16[0]] + l16[2:])
    check(differences(swapped, refs["l16"], L16_FRAME) is not None,
          "the comparison does not notice two frames swapped")
    check(len(refs["opus"]) % OPUS_FRAME == 0 and len(refs["opus"]) >= FRAMES * OPUS_FRAME,
          "the Opus reference decodes to %d bytes, not %d or more frames of %d"
          % (len(refs["opus"]), FRAMES, OPUS_FRAME))

    port, src = free_port(), free_port()
    out = lab.path("l16-direct.raw")
    got = stream(lab, "l16-direct", l16_sender(port, src), l16_receiver(port, out), port, out)
    diff = differences(got, refs["l16"], L16_FRAME)
    check(diff is None, "L16 without the tunnel: %s" % diff)
    out = lab.path("opus-direct.raw")
    got = stream(lab, "opus-direct", opus_sender(port, src), opus_receiver(port, out), port, out)
    diff = differences(got, refs["opus"], OPUS_FRAME)
    check(diff is None, "Opus without the tunnel: %s" % diff)
    sys.stderr.write("sanity: L16 %d frames byte-identical, Opus %d packets decoded identically,"
                     " without the tunnel\n" % (FRAMES, len(refs["opus"]) // OPUS_FRAME))


def start_leg(lab, mode, rport, mport):
    """A serving agent exposing the RTP service music at rport (its RTCP at
    rport + 1), a pairing agent with -M mport:music; waits for the tunnel
    on the path of mode and for the leg. Returns (server, client)."""
    sig_extra, extra, up = (), [], UP_RE
    if mode == "relayed":
        _, secret_file = lab.turn_secret()
        _, relay_port = lab.relay_server(secret_file)
        sig_extra = ("--relay", "turn:127.0.0.1:%d" % relay_port,
                     "--turn-secret-file", secret_file)
        extra, up = ["--relay-only"], relayed_re("udp")
    elif mode == "relayed-coturn":
        secret, secret_file = lab.turn_secret()
        relay_port, _, _ = start_coturn(lab, secret)
        sig_extra = ("--relay", "turn:127.0.0.1:%d" % relay_port,
                     "--turn-secret-file", secret_file)
        extra, up = ["--relay-only"], relayed_re("udp")
    _, url, pin = lab.signal_server(*sig_extra)
    sdir, sid = lab.agent_dir("server")
    cdir, cid = lab.agent_dir("client")
    server = lab.agent("server", sdir, ["serve", "--trust", cid, "--expose",
                                        "music=127.0.0.1:%d/rtp" % rport] + extra, url, pin)
    try:
        server.wait_line("serving as " + sid, timeout=20)
        client = lab.agent("client", cdir, ["pair", sid, "-M", "%d:music" % mport] + extra,
                           url, pin)
        try:
            client.wait_line(up, timeout=30)
            client.wait_line(r"media 127\.0\.0\.1:%d -> music" % mport, timeout=20)
        except TestFailure as e:
            raise TestFailure("%s; client: %s" % (e, tail(client)))
    except TestFailure as e:
        raise TestFailure("%s; server: %s" % (e, tail(server)))
    return server, client


def through_l16(lab, refs, rport, mport):
    """L16 from the pair side's app to the service: the PCM byte-identical."""
    out = lab.path("l16-leg.raw")
    got = stream(lab, "l16-leg", l16_sender(mport, free_port()), l16_receiver(rport, out),
                 rport, out)
    diff = differences(got, refs["l16"], L16_FRAME)
    check(diff is None, diff)


def through_opus(lab, refs, rport, mport):
    """Opus: every packet arrived, the decoded audio is the reference's."""
    out = lab.path("opus-leg.raw")
    got = stream(lab, "opus-leg", opus_sender(mport, free_port()), opus_receiver(rport, out),
                 rport, out)
    diff = differences(got, refs["opus"], OPUS_FRAME)
    check(diff is None, "%d of %d packets decoded: %s"
          % (len(got) // OPUS_FRAME, len(refs["opus"]) // OPUS_FRAME, diff))


def udp_socket(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # Room for the whole stream: it is read once the sender has finished.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("127.0.0.1", port))
    return s


def drain(sock):
    """[(datagram, source)] waiting in sock."""
    got = []
    while select.select([sock], [], [], 0)[0]:
        got.append(sock.recvfrom(65535))
    return got


def collect(rtp, rtcp, rtp_count, timeout):
    """What arrives on the two sockets until rtp has rtp_count datagrams
    and rtcp at least one, or timeout: ([(datagram, source)] of each)."""
    got_rtp, got_rtcp = [], []
    deadline = time.monotonic() + timeout
    while (len(got_rtp) < rtp_count or not got_rtcp) and time.monotonic() < deadline:
        for sock in select.select([rtp, rtcp], [], [], 0.2)[0]:
            (got_rtp if sock is rtp else got_rtcp).append(sock.recvfrom(65535))
    return got_rtp, got_rtcp


def is_rtcp(data):
    # RFC 5761 section 4: on a muxed port, packet types 192-223 are RTCP.
    return len(data) >= 8 and data[0] >> 6 == 2 and 192 <= data[1] <= 223


def rtp_payload(data):
    """(sequence number, SSRC, payload) of an RTP packet (RFC 3550 5.1)."""
    check(len(data) >= 12 and data[0] >> 6 == 2, "not an RTP packet: %r" % data[:16])
    seq, = struct.unpack("!H", data[2:4])
    ssrc, = struct.unpack("!I", data[8:12])
    start = 12 + 4 * (data[0] & 0x0F)
    if data[0] & 0x10:  # header extension: 16 bits profile, 16 bits length in words
        check(len(data) >= start + 4, "truncated RTP header extension")
        start += 4 + 4 * struct.unpack("!H", data[start + 2:start + 4])[0]
    end = len(data) - (data[-1] if data[0] & 0x20 else 0)
    check(start <= end, "RTP packet shorter than its header: %r" % data[:16])
    return seq, ssrc, data[start:end]


def receiver_report(source_ssrc, highest, sender_report):
    """A compound RTCP packet of a receiver report about source_ssrc and an
    SDES CNAME (RFC 3550 6.4.2, 6.5): made by hand, because gst-launch
    cannot make a receiving rtpbin send its reports to the agent's RTCP
    socket, whose port is only known once the stream has arrived."""
    reporter = 0x5EC0DE01
    # LSR: the middle 32 bits of the sender report's NTP timestamp.
    ntp_hi, ntp_lo = struct.unpack("!II", sender_report[8:16])
    lsr = ((ntp_hi & 0xFFFF) << 16) | (ntp_lo >> 16)
    rr = struct.pack("!BBHI", 0x81, 201, 7, reporter)
    rr += struct.pack("!IIIIII", source_ssrc, 0, highest, 0, lsr, 0)
    cname = b"p2ptun-media-test@127.0.0.1"
    chunk = struct.pack("!IBB", reporter, 1, len(cname)) + cname + b"\0"
    chunk += b"\0" * (-len(chunk) % 4)
    sdes = struct.pack("!BBH", 0x81, 202, len(chunk) // 4) + chunk
    return rr + sdes


def rtcp_forward(lab, refs, rport, mport, learned):
    """An rtpbin on the pair side sends L16 and its RTCP sender reports to
    the leg: at the service's RTP port arrive the RTP packets, plain, in
    order across the sequence-number rollover, the payload the reference;
    at its RTCP port arrive the RTCP packets, the first a sender report of
    that stream's SSRC; no RTCP on the RTP port, no RTP on the RTCP port.
    learned gets the agent's source addresses and what answers need."""
    src = free_port(2)
    learned["app"] = src
    rtp, rtcp = udp_socket(rport), udp_socket(rport + 1)
    tx = None
    try:
        # Until the stream and a first RTCP packet are in, not until the
        # rtpbin ends: when its BYE goes depends on its RTCP timer.
        tx = gst(lab, "rtpbin-tx", rtpbin_sender(mport, src))
        got_rtp, got_rtcp = collect(rtp, rtcp, FRAMES, SEND_TIMEOUT)
        time.sleep(0.5)
        got_rtp += drain(rtp)
        got_rtcp += drain(rtcp)
    finally:
        if tx is not None:
            tx.stop()
        rtp.close()
        learned["rtcp_socket"] = rtcp  # kept for the report back; closed by main()
    check(got_rtp, "nothing arrived at the service's RTP port %d" % rport)
    check(not any(is_rtcp(d) for d, _ in got_rtp),
          "RTCP arrived at the RTP port %d, the service never sent RTCP (no rtcp-mux)" % rport)
    parsed = [rtp_payload(d) for d, _ in got_rtp]
    seqs = [p[0] for p in parsed]
    want = [(SEQ_FROM + i) % 65536 for i in range(FRAMES)]
    check(seqs == want, "%d RTP packets arrived, sequence numbers %s...%s, not %d from %d in "
          "order" % (len(seqs), seqs[:3], seqs[-3:], FRAMES, SEQ_FROM))
    ssrcs = {p[1] for p in parsed}
    check(len(ssrcs) == 1, "RTP packets of %d SSRCs arrived: %r" % (len(ssrcs), ssrcs))
    diff = differences(b"".join(p[2] for p in parsed), refs["l16"], L16_FRAME)
    check(diff is None, "the RTP payloads: %s" % diff)
    sources = {a for _, a in got_rtp}
    check(len(sources) == 1, "RTP came from %d addresses: %r" % (len(sources), sources))
    learned["rtp_from"] = sources.pop()

    check(got_rtcp, "no RTCP arrived at the service's RTCP port %d within %d s (rtpbin sends a "
          "report within a few seconds)" % (rport + 1, SEND_TIMEOUT))
    check(all(is_rtcp(d) for d, _ in got_rtcp),
          "not RTCP at the RTCP port %d: %r" % (rport + 1,
                                               [d[:12] for d, _ in got_rtcp if not is_rtcp(d)]))
    first = got_rtcp[0][0]
    check(first[1] == 200 and len(first) >= 28,
          "the first RTCP packet is not a sender report: %r" % first[:16])
    ssrc = parsed[0][1]
    check(struct.unpack("!I", first[4:8])[0] == ssrc,
          "the sender report's SSRC %08x is not the stream's %08x"
          % (struct.unpack("!I", first[4:8])[0], ssrc))
    sources = {a for _, a in got_rtcp}
    check(len(sources) == 1, "RTCP came from %d addresses: %r" % (len(sources), sources))
    learned["rtcp_from"] = sources.pop()
    learned["rtcp_back"] = receiver_report(ssrc, SEQ_FROM + FRAMES - 1, first)
    sys.stderr.write("%d RTP packets (sequence numbers %d..%d) from %s:%d and %d RTCP packets "
                     "from %s:%d at the service\n"
                     % (len(seqs), seqs[0], seqs[-1], learned["rtp_from"][0],
                        learned["rtp_from"][1], len(got_rtcp), learned["rtcp_from"][0],
                        learned["rtcp_from"][1]))


def rtp_back(lab, refs, rport, learned):
    """The service sends L16 from its RTP port to the agent's address that
    the stream came from: it arrives at the app's RTP address (the last
    sender's on mport), byte-identical."""
    check("rtp_from" in learned, "no stream arrived at the service (check 4) to answer")
    agent_port = learned["rtp_from"][1]
    app = learned["app"]
    out = lab.path("l16-back.raw")
    got = stream(lab, "l16-back", l16_sender(agent_port, rport), l16_receiver(app, out),
                 app, out)
    diff = differences(got, refs["l16"], L16_FRAME)
    check(diff is None, "at the app's address 127.0.0.1:%d: %s" % (app, diff))


def rtcp_back(lab, learned):
    """The service's receiver report, sent from its RTCP port to the
    agent's RTCP socket, arrives unchanged at the app's RTCP address (the
    last sender's on mport + 1). The sender pipeline has ended, so the test
    listens there itself."""
    check("rtcp_from" in learned, "no RTCP arrived at the service (check 4) to answer")
    report, service = learned["rtcp_back"], learned["rtcp_socket"]
    with udp_socket(learned["app"] + 1) as app:
        for _ in range(3):  # a datagram may be lost, as to any RTP application
            service.sendto(report, learned["rtcp_from"])
            if select.select([app], [], [], 3)[0]:
                data = app.recv(65535)
                check(data == report, "the receiver report arrived changed: %d bytes, "
                      "%r" % (len(data), data[:16]))
                return
    raise TestFailure("the service's receiver report to %s:%d did not arrive at the app's "
                      "RTCP address 127.0.0.1:%d (3 tries)"
                      % (learned["rtcp_from"] + (learned["app"] + 1,)))


def drops_reported(client, mport):
    """What the leg cannot carry is dropped and said: a datagram larger than
    any path carries, told at once, then one that is not RTP, told when the
    second of the first report is over (reports come at most once a
    second). Last: the test's socket is the app's last sender from here on."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"\x80\x60" + bytes(20000), ("127.0.0.1", mport))
        client.wait_line(r"media leg music: dropped 1 too large for the path$", timeout=10)
        s.sendto(bytes(40), ("127.0.0.1", mport))
        client.wait_line(r"media leg music: dropped 1 not RTP or RTCP$", timeout=10)


def run(outcomes, name, fn, *args):
    try:
        fn(*args)
        outcomes.append((True, name, ""))
    except (TestFailure, OSError, subprocess.SubprocessError) as e:
        outcomes.append((False, name, str(e)))


def not_run(names, mode, why):
    """Failed outcomes of checks that could not run: the first says why."""
    return [(False, "%s (%s)" % (name, mode), why if i == 0 else "not run (see check 2)")
            for i, name in enumerate(names)]


LEG_CHECKS = [
    "L16 through the media leg: the PCM byte-identical and in order, sequence numbers rolling "
    "over",
    "Opus through the media leg: every packet, decoded audio identical",
    "RTP and RTCP from the app reach the service's RTP and RTCP ports unprotected, in order",
    "L16 from the service back to the app's RTP address, byte-identical",
    "an RTCP receiver report from the service back to the app's RTCP address",
    "a packet too large for any path and one that is not RTP: dropped and reported",
]


def main(argv):
    if len(argv) != 3 or argv[2] not in ("direct", "relayed", "relayed-coturn"):
        sys.stderr.write("usage: %s BUILD_DIR direct|relayed|relayed-coturn\n" % argv[0])
        return 2
    mode = argv[2]
    # meson stops a test that runs too long with SIGTERM: turn it into an
    # exception so that the Lab still stops its processes and removes its files.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    why = missing_gstreamer()
    if why:
        print("1..0 # SKIP %s" % why)
        return 0
    outcomes = []
    refs = {}
    learned = {}
    try:
        with Lab(argv[1]) as lab:
            run(outcomes, "GStreamer pipelines without the tunnel: L16 byte-identical, Opus "
                "decoded as the reference", sanity, lab, refs)
            if not outcomes[0][0]:
                outcomes += not_run(LEG_CHECKS, mode, "the pipelines do not work without "
                                    "the tunnel (check 1)")
                return tap.finish(outcomes)
            rport, mport = free_port(2), free_port(2)
            try:
                _, client = start_leg(lab, mode, rport, mport)
            except TestSkip as e:
                print("1..0 # SKIP %s" % e)
                return 0
            except (TestFailure, OSError, subprocess.SubprocessError) as e:
                outcomes += not_run(LEG_CHECKS, mode, "no %s media leg: %s" % (mode, e))
                return tap.finish(outcomes)
            checks = [(through_l16, (lab, refs, rport, mport)),
                      (through_opus, (lab, refs, rport, mport)),
                      (rtcp_forward, (lab, refs, rport, mport, learned)),
                      (rtp_back, (lab, refs, rport, learned)),
                      (rtcp_back, (lab, learned)),
                      (drops_reported, (client, mport))]
            for name, (fn, args) in zip(LEG_CHECKS, checks):
                run(outcomes, "%s (%s)" % (name, mode), fn, *args)
            return tap.finish(outcomes)
    finally:
        if "rtcp_socket" in learned:
            learned["rtcp_socket"].close()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
