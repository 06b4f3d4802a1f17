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
  peer.py paced-services SEED  a paced source and a sink that notes when data
                               arrives, on loopback; prints "ports SOURCE
                               SINK", then serves until SIGTERM
  peer.py paced DOWN UP SIZE CHUNK INTERVAL_MS TIMEOUT_S DOWN_SEED UP_SEED
                               one long stream each way at once: asks the
                               paced source behind 127.0.0.1:DOWN for SIZE
                               bytes, CHUNK bytes every INTERVAL_MS, and
                               sends SIZE bytes to the sink behind
                               127.0.0.1:UP at the same pace; prints
                               "flowing" when the first bytes came down, then
                               one JSON line: per direction the bytes, the
                               hash, how the stream ended and the monotonic
                               times data arrived (the clock is the same in
                               every namespace), to measure gaps

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


# Arrivals closer than this to the last one noted are not noted: at most
# 200 a second, and gaps of 5 ms or more are all seen.
ARRIVAL_STEP_S = 0.005


class Arrivals:
    def __init__(self):
        self.times = []

    def note(self):
        now = time.monotonic()
        if not self.times or now - self.times[-1] >= ARRIVAL_STEP_S:
            self.times.append(round(now, 3))


def paced_send(sock, payload, chunk, interval):
    """Sends payload in chunks, chunk i when the clock says i * interval
    since the start (late chunks go at once: after a stall the backlog
    follows)."""
    t0 = time.monotonic()
    view = memoryview(payload)
    for i, off in enumerate(range(0, len(payload), chunk)):
        wait = t0 + i * interval - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        sock.sendall(view[off:off + chunk])


def ending_of(e):
    """How a stream that raised e ended, in a word or two."""
    if isinstance(e, socket.timeout):
        return "timeout"
    if isinstance(e, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return "reset"
    return "error: %s" % e


def paced_services(seed):
    """The far end of `paced`: the source reads one line "SIZE CHUNK
    INTERVAL_MS" and sends SIZE pattern bytes at that pace; the sink reads
    until the end and answers one JSON line: the bytes, their hash and when
    they arrived."""
    def source(conn):
        with conn:
            try:
                f = conn.makefile("rb")
                size, chunk, interval_ms = (int(x) for x in f.readline().split())
                paced_send(conn, pattern_bytes(seed, size), chunk, interval_ms / 1000.0)
                conn.shutdown(socket.SHUT_WR)
                while conn.recv(65536):
                    pass
            except (OSError, ValueError) as e:
                sys.stderr.write("paced source: %s\n" % e)

    def sink(conn):
        with conn:
            h, n, arrivals = hashlib.sha256(), 0, Arrivals()
            try:
                while True:
                    data = conn.recv(1 << 16)
                    if not data:
                        break
                    arrivals.note()
                    h.update(data)
                    n += len(data)
                conn.sendall(json.dumps({"bytes": n, "sha256": h.hexdigest(),
                                         "arrivals": arrivals.times}).encode() + b"\n")
                conn.shutdown(socket.SHUT_WR)
            except OSError as e:
                sys.stderr.write("paced sink: %s after %d bytes\n" % (ending_of(e), n))

    def listen(handler):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(16)

        def accept():
            while True:
                conn, _ = s.accept()
                conn.settimeout(600)
                threading.Thread(target=handler, args=(conn,), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()
        return s.getsockname()[1]

    print("ports %d %d" % (listen(source), listen(sink)), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # Bounded: the case's own timeout is far below this.
    time.sleep(3600)


def paced(down, up, size, chunk, interval_ms, timeout, down_seed, up_seed):
    interval = interval_ms / 1000.0
    payload = pattern_bytes(up_seed, size)
    result = {"size": size, "start": time.monotonic(),
              "down": {"bytes": 0, "sha256": None, "ending": None, "arrivals": [],
                       "expected": hashlib.sha256(pattern_bytes(down_seed, size)).hexdigest()},
              "up": {"sent": 0, "ending": None, "answer": None,
                     "expected": hashlib.sha256(payload).hexdigest()}}

    def download():
        d = result["down"]
        h, arrivals = hashlib.sha256(), Arrivals()
        d["arrivals"] = arrivals.times
        try:
            with connect_retry(down) as s:
                s.settimeout(timeout)
                s.sendall(b"%d %d %d\n" % (size, chunk, interval_ms))
                while True:
                    data = s.recv(1 << 16)
                    if not data:
                        d["ending"] = "eof"
                        break
                    if not arrivals.times:
                        print("flowing", flush=True)
                    arrivals.note()
                    h.update(data)
                    d["bytes"] += len(data)
        except OSError as e:
            d["ending"] = ending_of(e)
        except Exception as e:  # connect_retry's TestFailure: reported, not raised
            d["ending"] = "error: %s" % e
        d["sha256"] = h.hexdigest()

    t = threading.Thread(target=download, daemon=True)
    t.start()
    u = result["up"]
    try:
        with connect_retry(up) as s:
            s.settimeout(timeout)
            paced_send(s, payload, chunk, interval)
            u["sent"] = size
            s.shutdown(socket.SHUT_WR)
            answer = b""
            while True:
                data = s.recv(1 << 16)
                if not data:
                    break
                answer += data
            try:
                u["answer"] = json.loads(answer.decode())
                u["ending"] = "answer"
            except ValueError:
                u["ending"] = "eof" if not answer else "bad answer: %r" % answer[:80]
    except OSError as e:
        u["ending"] = ending_of(e)
    except Exception as e:  # connect_retry's TestFailure
        u["ending"] = "error: %s" % e
    t.join(timeout + 5)
    if t.is_alive():
        result["down"]["ending"] = "still running"
    result["elapsed"] = time.monotonic() - result["start"]
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
    if len(argv) == 3 and argv[1] == "paced-services":
        paced_services(int(argv[2]))
        return 0
    if len(argv) == 10 and argv[1] == "paced":
        paced(*[int(a) for a in argv[2:]])
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
