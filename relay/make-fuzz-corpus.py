#!/usr/bin/env python3
"""Writes the seed corpus of tests/fuzz/fuzz-relay.c (tests/fuzz/corpus/relay/).

Input format: records of [source byte][length, 2 bytes big-endian][datagram];
source bit 0: 0 = from the client, 1 = from the permitted peer on the
allocation's relayed socket. Existing seeds with the same names are
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
