#!/usr/bin/env python3
"""The NAT lab's end points, run inside a host namespace (ip netns exec):

  peer.py services SIZE SEED   a source of SIZE pattern bytes and a hashing sink
                               on loopback; prints "ports SOURCE SINK", then
                               serves until SIGTERM
  peer.py upload-in-two UP SIZE SEED
                               one upload to 127.0.0.1:UP, paused half-way
                               until a line arrives on stdin
  peer.py transfer DOWN UP SIZE DOWN_SEED UP_SEED
                               reads SIZE bytes from 127.0.0.1:DOWN while it
                               sends SIZE bytes to 127.0.0.1:UP (both at once);
                               prints one JSON line with what arrived

Python standard library only; the services and the pattern are those of the
loopback integration tests (tests/integration/lab.py)."""

import hashlib
import json
import os
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

from lab import Service, connect_retry, pattern_bytes  # noqa: E402


def services(size, seed):
    source = Service("source", size=size, seed=seed)
    sink = Service("sink")
    print("ports %d %d" % (source.port, sink.port), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # Bounded: the case's own timeout is far below this.
    time.sleep(3600)


def transfer(down, up, size, down_seed, up_seed):
    result = {"down_bytes": 0, "down_sha256": None, "up_answer": None,
              "down_expected": hashlib.sha256(pattern_bytes(down_seed, size)).hexdigest()}
    payload = pattern_bytes(up_seed, size)
    result["up_expected"] = hashlib.sha256(payload).hexdigest()

    def download():
        h = hashlib.sha256()
        n = 0
        try:
            with connect_retry(down) as s:
                while True:
                    data = s.recv(1 << 16)
                    if not data:
                        break
                    h.update(data)
                    n += len(data)
        except OSError as e:
            result["down_error"] = str(e)
        result["down_bytes"] = n
        result["down_sha256"] = h.hexdigest()

    t0 = time.monotonic()
    t = threading.Thread(target=download, daemon=True)
    t.start()
    try:
        with connect_retry(up) as s:
            view = memoryview(payload)
            for off in range(0, size, 1 << 16):
                s.sendall(view[off:off + (1 << 16)])
            s.shutdown(socket.SHUT_WR)
            answer = b""
            while True:
                data = s.recv(4096)
                if not data:
                    break
                answer += data
            result["up_answer"] = answer.decode(errors="replace")
    except Exception as e:  # reported, not raised: the caller judges
        result["up_error"] = str(e)
    t.join(600)
    result["elapsed"] = time.monotonic() - t0
    result["down_done"] = not t.is_alive()
    print(json.dumps(result), flush=True)


def upload_in_two(up, size, seed):
    """One upload through the forwarded port, in two halves: after the first
    it says "half" and waits for a line on stdin before it sends the rest.
    Prints the JSON result (the sink's hash of everything and the expected one)."""
    payload = pattern_bytes(seed, size)
    result = {"expected": hashlib.sha256(payload).hexdigest(), "answer": None}
    try:
        with connect_retry(up) as s:
            s.sendall(payload[:size // 2])
            print("half", flush=True)
            if not sys.stdin.readline():
                raise OSError("no go-ahead")
            s.sendall(payload[size // 2:])
            s.shutdown(socket.SHUT_WR)
            answer = b""
            while True:
                data = s.recv(4096)
                if not data:
                    break
                answer += data
            result["answer"] = answer.decode(errors="replace")
    except OSError as e:
        result["error"] = str(e)
    print(json.dumps(result), flush=True)


def main(argv):
    if len(argv) == 4 and argv[1] == "services":
        services(int(argv[2]), int(argv[3]))
        return 0
    if len(argv) == 5 and argv[1] == "upload-in-two":
        upload_in_two(*[int(a) for a in argv[2:]])
        return 0
    if len(argv) == 7 and argv[1] == "transfer":
        transfer(*[int(a) for a in argv[2:]])
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
