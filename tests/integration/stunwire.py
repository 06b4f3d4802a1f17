"""STUN message encoding for the relay's integration tests (RFC 5389 section
6): a header with the magic cookie, attributes padded to 4 bytes."""

import os
import struct

COOKIE = 0x2112A442


def stun_attr(t, v):
    return struct.pack(">HH", t, len(v)) + v + bytes((4 - len(v) % 4) % 4)


def stun_msg(mtype, attrs, txid=None):
    txid = txid or os.urandom(12)
    return struct.pack(">HHI", mtype, len(attrs), COOKIE) + txid + attrs


def stun_attrs(data):
    """{type: value} of a message's attributes, the first of each type."""
    out, off = {}, 20
    while off + 4 <= len(data):
        t, n = struct.unpack(">HH", data[off:off + 4])
        out.setdefault(t, data[off + 4:off + 4 + n])
        off += 4 + (n + 3) // 4 * 4
    return out
