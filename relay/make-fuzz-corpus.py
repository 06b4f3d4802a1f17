#!/usr/bin/env python3
"""Writes the seed corpus of tests/fuzz/fuzz-relay.c (tests/fuzz/corpus/relay/).

Input format: records of [source byte][length, 2 bytes big-endian][bytes];
source bit 1 set: the next piece of the client's TCP stream (cut into
messages by the relay's stream framing; broken framing closes the connection
and the next piece starts a new one); otherwise one datagram, bit 0: 0 = from
the client, 1 = from the permitted peer on a relayed socket (bit 2: the TCP
allocation's, else the UDP one's; bit 3: from another port of the peer, one
without a channel, so its data goes in Data indications); the high nibble advances the clock by
that many seconds. Existing seeds with the same names are
overwritten; other files (crash inputs kept for replay) are left alone."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fuzz", "corpus", "relay")
COOKIE = 0x2112A442
TXID = bytes(range(1, 13))


def rec(source, data):
    return struct.pack(">BH", source, len(data)) + data


def attr(t, v):
    pad = (4 - len(v) % 4) % 4
    return struct.pack(">HH", t, len(v)) + v + bytes(pad)


def msg(mtype, attrs=b""):
    return struct.pack(">HHI", mtype, len(attrs), COOKIE) + TXID + attrs


def xor_peer(ip, port):
    x = bytes(a ^ b for a, b in zip(bytes(ip), struct.pack(">I", COOKIE)))
    return attr(0x0012, struct.pack(">BBH", 0, 1, port ^ (COOKIE >> 16)) + x)


def write(name, data):
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


PEER = ([198, 51, 100, 7], 9000)
write("binding", rec(0, msg(0x0001)))
write("channeldata", rec(0, struct.pack(">HH", 0x4001, 5) + b"hello"))
write("channeldata-padded", rec(0, struct.pack(">HH", 0x4001, 5) + b"hello\0\0\0"))
write("channeldata-short", rec(0, struct.pack(">HH", 0x4001, 50) + b"hi"))
write("send-indication", rec(0, msg(0x0016, xor_peer(*PEER) + attr(0x0013, b"payload"))))
write("peer-data", rec(1, b"from the peer"))
write("peer-then-channel", rec(1, b"x" * 40) + rec(0, struct.pack(">HH", 0x4001, 1) + b"y"))
write("allocate-noauth", rec(0, msg(0x0003, attr(0x0019, b"\x11\0\0\0"))))
write("allocate-badauth", rec(0, msg(0x0003, attr(0x0019, b"\x11\0\0\0") + attr(0x0006, b"1:x")
                                      + attr(0x0014, b"fuzz.realm") + attr(0x0015, b"0" * 32)
                                      + attr(0x0008, bytes(20)))))
write("refresh-noauth", rec(0, msg(0x0004, attr(0x000D, b"\0\0\0\0"))))
write("unknown-attr", rec(0, msg(0x0008, attr(0x0777, b"abc"))))
write("truncated", rec(0, msg(0x0001, attr(0x8022, b"software"))[:-3]))
write("empty", b"")

# TURN over TCP (RFC 8656 section 12.5: ChannelData padded to 4 on streams).
BINDING = msg(0x0001)
CD5 = struct.pack(">HH", 0x4001, 5) + b"hello\0\0\0"
write("stream-binding", rec(2, BINDING))
write("stream-channeldata", rec(2, CD5))
write("stream-back-to-back", rec(2, BINDING + CD5 + BINDING + CD5))
write("stream-split", rec(2, BINDING[:7]) + rec(2, BINDING[7:] + CD5[:3]) + rec(2, CD5[3:]))
write("stream-send-indication", rec(2, msg(0x0016, xor_peer(*PEER) + attr(0x0013, b"payload"))))
write("stream-allocate-again", rec(2, msg(0x0003, attr(0x0019, b"\x11\0\0\0"))))
write("stream-peer-data", rec(5, b"from the peer") + rec(5, b"1234"))
write("stream-garbage-then-new", rec(2, b"GET / HTTP/1.1\r\n\r\n") + rec(2, BINDING)
      + rec(5, b"to a closed connection"))
write("stream-too-big", rec(2, b"\x40\x01\xff\xff") + rec(2, BINDING))
write("stream-stun-too-big", rec(2, struct.pack(">HHI", 0x0003, 0xfffc, COOKIE) + TXID))
write("stream-bad-length", rec(2, struct.pack(">HHI", 0x0001, 6, COOKIE) + TXID))
write("stream-data-indication", rec(0x0D, b"to the TCP client") + rec(0x0D, bytes(20000)))
write("stream-expired", rec(2, CD5) + rec(0xF2, CD5) + rec(0xF5, b"late"))
# Over --max-bps (100000 in the harness): 75 peer datagrams of 1400 bytes.
write("bandwidth", b"".join(rec(1, bytes(1400)) for _ in range(75)) + rec(0x10, CD5[:9]))
