#!/usr/bin/env python3
"""fetch.py: GET one path from a peer's HTTP service through a p2ptun tunnel,
with PyGObject (the P2ptun-0 typelib and libp2ptun must be installed).

  fetch.py SIGNAL-URL SIGNAL-PIN CONFIG-DIR PEER-ID SERVICE PATH [ONLY-LOCAL-IP]"""

import argparse
import os
import sys

import gi

gi.require_version("P2ptun", "0")
from gi.repository import GLib, P2ptun  # noqa: E402


class Fetch:
    def __init__(self, node, peer_id, service, path):
        self.node, self.peer_id, self.service, self.path = node, peer_id, service, path
        self.stream = 0  # 0 until the stream is open
        self.code = None  # the exit code, once known
        self.loop = GLib.MainLoop()

    def finish(self, error=None):
        """The first outcome wins: error says what went wrong, None is success."""
        if self.code is None:
            self.code = 1 if error else 0
            if error:
                print("fetch: error: %s" % error, file=sys.stderr)
            self.node.close()  # CLOSED follows

    def on_readable(self, fd, condition):
        """The answer, to its end; closing our end then ends the stream cleanly."""
        data = os.read(fd, 16384)
        if data:
            sys.stdout.buffer.write(data)
            return GLib.SOURCE_CONTINUE
        os.close(fd)
        return GLib.SOURCE_REMOVE

    def on_event(self, node, event):
        kind = event.get_kind()
        if kind == P2ptun.EventKind.PEER_UP and self.stream == 0:
            print("fetch: path %s, rtt %.1f ms" % (event.get_path().to_string(),
                                                   event.get_rtt_us() / 1000.0),
                  file=sys.stderr)
            try:
                fd, self.stream = node.open_fd(self.peer_id, self.service)
            except GLib.Error as e:
                return self.finish(e.message)
            os.write(fd, b"GET %s HTTP/1.0\r\nHost: p2ptun\r\n\r\n" % self.path.encode())
            GLib.unix_fd_add_full(GLib.PRIORITY_DEFAULT, fd,
                                  GLib.IOCondition.IN | GLib.IOCondition.HUP,
                                  self.on_readable)
        elif kind == P2ptun.EventKind.STREAM_ENDED and event.get_stream() == self.stream:
            self.finish(event.get_message() if event.get_error() else None)
        elif kind in (P2ptun.EventKind.PEER_OFFLINE, P2ptun.EventKind.PEER_GONE,
                      P2ptun.EventKind.FATAL):  # a one-shot fetch does not wait
            self.finish(event.get_message())
        elif kind == P2ptun.EventKind.CLOSED:
            self.loop.quit()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("signal_url", "signal_pin", "config", "peer_id", "service", "path"):
        parser.add_argument(name, metavar=name.upper().replace("_", "-"))
    parser.add_argument("local", nargs="?", metavar="ONLY-LOCAL-IP")
    args = parser.parse_args()

    config = P2ptun.Config.new()
    config.set_signal(args.signal_url, args.signal_pin)
    config.set_local_addresses([args.local] if args.local else None)
    try:
        identity = P2ptun.Identity.load(args.config)
        node = P2ptun.Node.new(None, identity, config)
        node.pair(args.peer_id)
    except GLib.Error as e:
        print("fetch: error: %s" % e.message, file=sys.stderr)
        return 1
    fetch = Fetch(node, args.peer_id, args.service, args.path)
    node.set_event_func(fetch.on_event)
    node.start()
    fetch.loop.run()
    sys.stdout.flush()
    return fetch.code


if __name__ == "__main__":
    sys.exit(main())
