#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/).

Run from anywhere; existing seeds with the same names are overwritten, other
files (crash inputs kept for replay) are left alone. The formats are those of
proto/PROTOCOL.md."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
SESSION = "0123456789abcdef0123456789abcdef"
PEER = "v7hgw73wxjh5x4e2yhbzmzbd3ozvxabnxzgkcsusztm34ucax2ma"


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def ctl(typ, body):
    return struct.pack(">BH", typ, len(body)) + body


def ctlmsgs():
    hello = ctl(1, b"\x01")
    open_ = ctl(2, struct.pack(">IB", 5, 3) + b"web")
    accept = ctl(3, struct.pack(">I", 5))
    refuse = ctl(4, struct.pack(">IBB", 7, 1, 11) + b"not exposed")
    close = ctl(5, struct.pack(">I", 5))
    ping = ctl(6, struct.pack(">Q", 0x0102030405060708))
    pong = ctl(7, struct.pack(">Q", 0x0102030405060708))
    bye = ctl(8, struct.pack(">BB", 0, 8) + b"shutdown")
    write("ctlmsg", "hello", hello)
    write("ctlmsg", "hello-v2-extended", ctl(1, b"\x02\xaa\xbb"))
    write("ctlmsg", "open", open_)
    write("ctlmsg", "accept", accept)
    write("ctlmsg", "refuse", refuse)
    write("ctlmsg", "close", close)
    write("ctlmsg", "ping-pong", ping + pong)
    write("ctlmsg", "bye", bye)
    write("ctlmsg", "conversation", hello + open_ + accept + ping + pong + close + bye)
    open_dgram = ctl(10, struct.pack(">IB", 7, 3) + b"rtp")
    write("ctlmsg", "open-dgram", open_dgram)
    write("ctlmsg", "open-media", ctl(11, struct.pack(">IB", 9, 5) + b"music"))
    write("ctlmsg", "refuse-wrong-kind",
          ctl(4, struct.pack(">IBB", 7, 6, 20) + b"not a UDP service!!!"))
    write("ctlmsg", "open-max-name", ctl(2, struct.pack(">IB", 9, 63) + b"n" * 63))
    write("ctlmsg", "refuse-max-text", ctl(4, struct.pack(">IBB", 9, 3, 255) + b"~" * 255))
    write("ctlmsg", "truncated", open_[:-1])
    write("ctlmsg", "too-long", struct.pack(">BH", 6, 513) + bytes(513))
    write("ctlmsg", "trailing", ctl(3, struct.pack(">I", 5) + b"\x00"))


def dgrams():
    # flow 7 (1-byte varint) with a payload; flow 300 (2-byte); flow 2^30
    # (8-byte); a truncated prefix; a flow with an empty payload.
    write("dgram", "flow-7", b"\x07hello")
    write("dgram", "flow-300", b"\x41\x2c" + bytes(range(32)))
    write("dgram", "flow-8-byte", b"\xc0\x00\x00\x00\x40\x00\x00\x00rtp")
    write("dgram", "truncated", b"\x80\x00")
    write("dgram", "empty-payload", b"\x05")


def msg(**kw):
    parts = ['"v":1']
    for k, v in kw.items():
        parts.append('"%s":"%s"' % (k, v))
    return "{" + ",".join(parts) + "}"


def sigmsgs():
    offer = msg(type="offer", session=SESSION, ufrag="Ab+/", pwd="abcdefghijklmnopqrstuv")
    answer = msg(type="answer", session=SESSION, ufrag="zzzz", pwd="+/" * 12, **{"from": PEER})
    cand = msg(type="candidate", session=SESSION,
               candidate="candidate:1 1 UDP 2130706431 192.0.2.1 54321 typ host")
    eoc = msg(type="end-of-candidates", session=SESSION)
    bye = msg(type="bye", session=SESSION, reason="not-trusted", text="go \\\"away\\\"")
    eoc_from = msg(type="end-of-candidates", session=SESSION, **{"from": PEER})
    cand_from = msg(type="candidate", session=SESSION, **{"from": PEER},
                    candidate="candidate:2 1 TCP 1015022079 198.51.100.2 9 typ srflx")
    # mode byte: 0 parse, 1 parse with from, 2 batch, 3 ice servers,
    # 4 host:port, 5 turn uri
    write("sigmsg", "0-offer", "\x00" + offer)
    write("sigmsg", "0-candidate", "\x00" + cand)
    write("sigmsg", "0-bye", "\x00" + bye)
    write("sigmsg", "0-unknown-members", "\x00" + eoc[:-1] +
          ',"x":{"y":[1,-2.5e3,true,false,null,"\\u00e9\\ud83d\\ude00"]}}')
    write("sigmsg", "0-version-2", "\x00" + '{"v":2,"type":"offer"}')
    write("sigmsg", "0-duplicate", "\x00" + eoc[:-1] + ',"v":1}')
    write("sigmsg", "0-generation", "\x00" + cand[:-1] + ',"generation":4294967295}')
    write("sigmsg", "0-restart", "\x00" + msg(type="restart", session=SESSION)[:-1]
          + ',"generation":2}')
    write("sigmsg", "1-answer-from", "\x01" + answer)
    write("sigmsg", "2-batch", "\x02" + '{"messages":[%s,%s,%s]}' % (eoc_from, cand_from, answer))
    write("sigmsg", "2-batch-empty", "\x02" + '{"messages":[]}')
    write("sigmsg", "3-ice-servers", "\x03" + '{"stun":["stun.example.org:3478","[2001:db8::1]:3478"],'
          '"turn":[{"uri":"turn:relay.example:3478?transport=udp","username":"1700000000:%s",'
          '"password":"c2VjcmV0c2VjcmV0c2VjcmV0c2U="},{"uri":"turns:192.0.2.9:443",'
          '"username":"u","password":"p"}]}' % PEER)
    write("sigmsg", "3-ice-pin", "\x03" + '{"turn":[{"uri":"turns:relay.example:443",'
          '"username":"u","password":"p",'
          '"pin":"sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="}]}')
    write("sigmsg", "3-ice-empty", "\x03{}")
    write("sigmsg", "4-hostport", "\x04stun.example.org:3478")
    write("sigmsg", "4-hostport-v6", "\x04[2001:db8::1]:443")
    write("sigmsg", "4-hostport-v4", "\x04192.0.2.1:19302")
    write("sigmsg", "5-turn-uri", "\x05turn:relay.example:3478?transport=tcp")
    write("sigmsg", "5-turns-uri", "\x05turns:[::1]:5349")


def rtp(seq, ssrc, payload, pt=96, marker=0):
    return struct.pack(">BBHII", 0x80, (marker << 7) | pt, seq, 160 * seq, ssrc) + payload


def srtps():
    """Media leg packets (tests/fuzz/fuzz-srtp.c): mode byte, then the packet."""
    l16 = bytes(range(160))
    for profile, name in ((0, "gcm"), (1, "cm")):
        write("srtp", "rtp-%s" % name, bytes([profile]) + rtp(7, 0x11223344, l16))
        write("srtp", "rtp-%s-rollover" % name, bytes([profile]) + rtp(65535, 0x11223344, l16))
        write("srtp", "rtcp-rr-%s" % name,
              bytes([profile]) + struct.pack(">BBHI", 0x80, 201, 1, 0x55667788))
        write("srtp", "rtp-csrc-ext-%s" % name, bytes([profile]) + struct.pack(
            ">BBHII", 0x91, 96, 9, 1440, 0x01020304) + struct.pack(">I", 0x0a0b0c0d)
            + struct.pack(">HH", 0xbede, 1) + b"\x10\xaa\x00\x00" + l16[:20])
        write("srtp", "wire-%s" % name, bytes([2 + profile]) + rtp(8, 0x11223344, l16)
              + bytes(16))
    write("srtp", "wire-short", b"\x02\x80\x60\x00")
    write("srtp", "wire-rtcp-short", b"\x03\x80\xc9\x00\x01\x00\x00\x00\x01")
    write("srtp", "wire-version-0", b"\x02" + bytes(40))


def tlshellos():
    """First bytes of connections to the signaling server (RFC 8446 5.1)."""
    hello = b"\x01\x00\x00\x2c\x03\x03" + bytes(32) + b"\x00\x00\x02\x13\x01\x01\x00"
    record = struct.pack(">BHH", 22, 0x0301, len(hello)) + hello
    write("tlshello", "client-hello", record)
    write("tlshello", "client-hello-and-more", record + b"\x14\x03\x03\x00\x01\x01")
    write("tlshello", "header-only", record[:5])
    write("tlshello", "partial", record[:20])
    write("tlshello", "one-byte", b"\x16")
    write("tlshello", "http", b"GET / HTTP/1.1\r\n\r\n")
    write("tlshello", "zero-length", struct.pack(">BHH", 22, 0x0303, 0))
    write("tlshello", "too-long", struct.pack(">BHH", 22, 0x0303, 16385) + bytes(16))
    write("tlshello", "largest", struct.pack(">BHH", 22, 0x0303, 16384) + bytes(16384))


def accesses():
    """Seeds of fuzz-access: the first byte picks the parser (0 access.json,
    1 the enroll body, 2 a token, 3 an admin request)."""
    token = "p2ptun1-" + "abcdefghijklmnopqrstuvwxyz234567"
    state = ('{"version":1,"default_policy":{"max_allocations":4},'
             '"peers":[{"id":"%s","via":"operator","note":"nas","enrolled":1800000000,'
             '"last_seen":1800000100,"max_bps":100000}],'
             '"revoked":[{"id":"ohmqcatfvr3zdy6jz5fkcuyrhh5apluyek3i2gecmnutodhjcm2q",'
             '"when":1800000000}],'
             '"tokens":[{"sha256":"%s","reusable":true,"created":1,"expires":0,"uses":2,'
             '"note":"x"}],"seen":[]}' % (PEER, "ab" * 32))
    write("access", "file", b"\x00" + state.encode())
    write("access", "file-empty", b"\x00" + b'{"version":1,"default_policy":{},"peers":[],'
          b'"revoked":[],"tokens":[],"seen":[]}')
    write("access", "body", b"\x01" + ('{"token":"%s"}' % token).encode())
    write("access", "body-extra", b"\x01" + ('{"token":"%s","a":1}' % token).encode())
    write("access", "token", b"\x02" + token.encode())
    write("access", "token-bad", b"\x02" + token.upper().encode())
    for op in ('{"op":"token","reusable":false,"expires":1800003600,"note":"n"}',
               '{"op":"enroll","peer":"%s","note":"laptop"}' % PEER,
               '{"op":"revoke","peer":"%s"}' % PEER, '{"op":"peers"}', '{"op":"tokens"}',
               '{"op":"cancel","id":"abababab"}', '{"op":"enroll-seen"}',
               '{"op":"policy","peer":"%s","max_allocations":2,"max_bps":1000}' % PEER):
        name = "admin-" + op.split('"')[3]
        write("access", name, b"\x03" + op.encode())


def turnusers():
    """TURN REST usernames (proto/turnuser.h)."""
    write("turnuser", "peer", "1700000000:" + PEER)
    write("turnuser", "peer-a", "1700000000:%s:a=5" % PEER)
    write("turnuser", "peer-b", "1700000000:%s:b=125000" % PEER)
    write("turnuser", "peer-a-b", "1700000000:%s:a=10000,b=1000000000000" % PEER)
    write("turnuser", "peer-unknown-keys", "1700000000:%s:zz=1,b=7,abcdefgh=0,a=3" % PEER)
    write("turnuser", "bare-expiry", "9223372036854775807")
    write("turnuser", "anyname", "1700000000:alice")
    write("turnuser", "anyname-colons", "1700000000:alice:a=5")
    write("turnuser", "duplicate", "1700000000:%s:a=5,a=6" % PEER)
    write("turnuser", "out-of-range", "1700000000:%s:a=10001,b=99999999999999999999" % PEER)
    write("turnuser", "trailing-comma", "1700000000:%s:a=5," % PEER)
    write("turnuser", "nul-in-name", "1700000000:al\x00ice")
    write("turnuser", "too-long", "1:" + "n" * 255)


if __name__ == "__main__":
    ctlmsgs()
    dgrams()
    sigmsgs()
    tlshellos()
    srtps()
    accesses()
    turnusers()
