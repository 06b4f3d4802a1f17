#!/usr/bin/env python3
"""Prometheus metrics of p2ptun-relay, p2ptun-signal and p2ptun-agent (issue 19), on
loopback: each endpoint is scraped during a tunnel's transfer and after it,
checked by Prometheus's own `promtool check metrics`; counters only grow; a
relay refusal and a signaling 4xx show up under their reason; no secret or
key is in the text.

usage: test_metrics.py BUILD_DIR CASE"""

import glob
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from lab import TestSkip, check, free_port, run_cases
from test_relay import TurnTcp
from test_tunnel import MIB, relayed_re, transfer

SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")


def need_promtool():
    if not shutil.which("promtool"):
        raise TestSkip("promtool is not installed (Debian package prometheus; "
                       "scripts/deps.sh installs it)")


def scrape(port):
    """GET /metrics: checked by promtool; returns (text, {sample: value})."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        check(r.status == 200, "GET /metrics: %d" % r.status)
        check(r.headers["Content-Type"].startswith("text/plain; version=0.0.4"),
              "Content-Type %r" % r.headers["Content-Type"])
        text = r.read().decode()
    out = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                         capture_output=True, timeout=30)
    check(out.returncode == 0, "promtool check metrics: %s%s\n%s"
          % (out.stdout.decode(), out.stderr.decode(), text))
    types, samples = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
        elif line and not line.startswith("#"):
            m = SAMPLE_RE.match(line)
            check(m, "not a sample line: %r" % line)
            samples[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    samples["__types__"] = types
    return text, samples


def counters_grow(before, after):
    """Every counter and histogram sample of before is in after, not lower."""
    types = after["__types__"]
    n = 0
    for key, value in before.items():
        if key == "__types__":
            continue
        base = re.sub(r"(_bucket|_sum|_count)$", "", key.split("{")[0])
        if types.get(key.split("{")[0]) == "counter" or types.get(base) == "histogram":
            check(key in after and after[key] >= value,
                  "counter %s went from %s to %s" % (key, value, after.get(key)))
            n += 1
    check(n > 5, "only %d counter samples" % n)


def not_found(port):
    try:
        urllib.request.urlopen("http://127.0.0.1:%d/other" % port, timeout=5)
    except urllib.error.HTTPError as e:
        return e.code == 404
    return False


def no_secret(texts, secrets):
    for secret in secrets:
        check(len(secret) >= 16, "a secret too short to look for: %r" % secret)
        for text in texts:
            check(secret not in text, "a secret is in the metrics")


def key_lines(lab):
    """The base64 lines of every private key under the lab's directory."""
    lines = []
    for path in glob.glob(lab.path("**", "*key*"), recursive=True):
        try:
            with open(path) as f:
                content = f.read()
        except (OSError, UnicodeDecodeError):
            continue
        if "PRIVATE KEY" in content:
            lines += [l for l in content.splitlines() if l and not l.startswith("-----")]
    return lines


def relay(lab):
    """A relayed tunnel through p2ptun-relay --metrics: allocations and the
    relayed bytes both ways grow during the transfer; a wrong secret's
    Allocate counts as a 401 refusal and an auth failure."""
    need_promtool()
    secret, secret_file = lab.turn_secret()
    mport = free_port()
    _, port = lab.relay_server(secret_file,
                                        extra=("--metrics", "127.0.0.1:%d" % mport))
    check(not_found(mport), "GET /other is not 404")
    _, first = scrape(mport)
    check(first["p2ptun_relay_allocations"] == 0, "allocations at start")

    wrong = TurnTcp(port, "not-the-relay-secret", "%d:metrics-test" % (time.time() + 600))
    code, _ = wrong.allocate()
    wrong.close()
    check(code == 401, "a wrong secret got %d" % code)

    during = {}

    def scrape_during(server, client):
        during["text"], during["samples"] = scrape(mport)

    size = 8 * MIB
    transfer(lab, size=size, up_re=relayed_re("udp"), during=scrape_during,
             sig_extra=("--relay", "turn:127.0.0.1:%d" % port, "--turn-secret-file", secret_file),
             serve_extra=("--relay-only",), pair_extra=("--relay-only",))
    last_text, last = scrape(mport)
    mid = during["samples"]
    counters_grow(first, mid)
    counters_grow(mid, last)
    check(mid["p2ptun_relay_allocations"] >= 2, "allocations during the transfer: %s"
          % mid["p2ptun_relay_allocations"])
    check(last['p2ptun_relay_allocations_total{transport="udp"}'] >= 2, "allocations made")
    for d in ("to_peer", "to_client"):
        key = 'p2ptun_relay_relayed_bytes_total{direction="%s"}' % d
        check(mid[key] > 0 and last[key] >= size, "%s: %s then %s" % (key, mid[key], last[key]))
    check(last['p2ptun_relay_refusals_total{code="401",reason="unauthorized"}'] >= 1,
          "the wrong secret's 401 is not counted")
    check(last["p2ptun_relay_auth_failures_total"] >= 1, "no auth failure counted")
    check(last["p2ptun_relay_auth_challenges_total"] >= 3, "no challenges counted")
    no_secret([during["text"], last_text], [secret])
    sys.stderr.write(last_text)


def signal(lab):
    """A direct tunnel through p2ptun-signal --metrics: messages posted and
    delivered with their latency; a stranger's 403 not-enrolled and a bad
    enrollment token are counted under their error codes."""
    need_promtool()
    secret, secret_file = lab.turn_secret()
    mport = free_port()
    sig_extra = ("--metrics", "127.0.0.1:%d" % mport, "--relay", "turn:127.0.0.1:9",
                 "--turn-secret-file", secret_file)
    state = {}

    def during(server, client):
        # transfer() started the signaling server: a stranger and an unknown
        # token try it while the tunnel is up.
        state["mid_text"], state["mid"] = scrape(mport)
        url, pin = next(iter(lab.signal_pins.items()))
        sdir, _ = lab.agent_dir("stranger")
        stranger = lab.agent("stranger", sdir, ["serve", "--expose", "x=127.0.0.1:9"], url,
                             pin, enroll=False)
        stranger.wait_line("does not know this agent", timeout=15)
        stranger.stop()
        out = subprocess.run([lab.agent_bin, "enroll", "--config", sdir, "--signal", url,
                              "--signal-pin", pin, "p2ptun1-" + "a" * 32],
                             capture_output=True, timeout=30)
        check(out.returncode != 0, "an unknown token enrolled")

    transfer(lab, size=2 * MIB, during=during, sig_extra=sig_extra)
    last_text, last = scrape(mport)
    mid = state["mid"]
    counters_grow(mid, last)
    check(not_found(mport), "GET /other is not 404")
    check(mid["p2ptun_signal_receiving_peers"] >= 1, "no receiving peer during the tunnel")
    check(last["p2ptun_signal_delivered_messages_total"] >= 2, "no delivery counted")
    check(last["p2ptun_signal_posted_messages_total"]
          >= last["p2ptun_signal_delivered_messages_total"], "more delivered than posted")
    check(last["p2ptun_signal_delivery_latency_seconds_count"]
          == last["p2ptun_signal_delivered_messages_total"], "latency count != deliveries")
    check(last['p2ptun_signal_errors_total{status="403",error="not-enrolled"}'] >= 1,
          "the stranger's 403 not-enrolled is not counted")
    check(last['p2ptun_signal_enrollment_refusals_total{error="bad-token"}'] >= 1,
          "the bad token is not counted")
    check(last['p2ptun_signal_responses_total{status="202"}'] >= 2, "no 202 counted")
    no_secret([state["mid_text"], last_text], [secret] + key_lines(lab))
    sys.stderr.write(last_text)


def bounded(lab):
    """The endpoint holds 16 connections at most: the 17th is closed at
    once, idle ones are closed after 5 s, and then a scrape is answered."""
    _, secret_file = lab.turn_secret()
    mport = free_port()
    lab.relay_server(secret_file, extra=("--metrics", "127.0.0.1:%d" % mport))
    held = [socket.create_connection(("127.0.0.1", mport), timeout=10) for _ in range(16)]
    try:
        time.sleep(0.5)
        with socket.create_connection(("127.0.0.1", mport), timeout=5) as extra:
            check(extra.recv(16) == b"", "a 17th connection was kept")
        t0 = time.monotonic()
        check(held[0].recv(16) == b"", "an idle connection got an answer")
        check(time.monotonic() - t0 < 7, "an idle connection was held past its 5 s")
    finally:
        for s in held:
            s.close()
    time.sleep(0.5)
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=5) as r:
        check(b"p2ptun_relay_allocations " in r.read(), "no metrics after the idle ones")


def agent(lab):
    """A direct tunnel between serve --metrics and pair --metrics, the client
    trusted under a NAME: each agent's endpoint is scraped during the
    transfer and after it; the tunnel is direct over UDP, the bytes received
    are at least what the test sent, counters only grow, also after the
    tunnel ended; no key or TURN secret is in the text."""
    need_promtool()
    secret, secret_file = lab.turn_secret()
    sport, cport = free_port(), free_port()
    cdir, cid = lab.agent_dir("client")
    size = 4 * MIB
    state = {}

    def during(server, client):
        for who, port in (("server", sport), ("client", cport)):
            state[who] = scrape(port)

    server, client = transfer(
        lab, size=size, during=during, trust=False,
        sig_extra=("--relay", "turn:127.0.0.1:9", "--turn-secret-file", secret_file),
        serve_extra=("--trust", "laptop=" + cid, "--metrics", "127.0.0.1:%d" % sport),
        pair_extra=("--metrics", "127.0.0.1:%d" % cport))
    _, sid = lab.agent_dir("server")
    texts, lasts = [], {}
    for who, port, peer in (("server", sport, "laptop"), ("client", cport, sid)):
        mid_text, mid = state[who]
        last_text, last = scrape(port)
        texts += [mid_text, last_text]
        lasts[who] = last
        counters_grow(mid, last)
        check(not_found(port), "%s: GET /other is not 404" % who)
        check(mid['p2ptun_agent_tunnels{path="direct",transport="udp"}'] == 1,
              "%s: not one direct udp tunnel during the transfer" % who)
        check(mid['p2ptun_agent_tunnels{path="relayed",transport="udp"}'] == 0,
              "%s: a relayed tunnel" % who)
        rtt = 'p2ptun_agent_rtt_seconds{peer="%s"}' % peer
        check(0 < mid.get(rtt, 0) < 1, "%s: %s is %s" % (who, rtt, mid.get(rtt)))
        for d in ("sent", "received"):
            key = 'p2ptun_agent_bytes_total{peer="%s",direction="%s"}' % (peer, d)
            check(last.get(key, 0) >= size, "%s: %s is %s, sent %d each way"
                  % (who, key, last.get(key), size))
            key = 'p2ptun_agent_packets_total{peer="%s",direction="%s"}' % (peer, d)
            check(last.get(key, 0) > 0, "%s: no packets %s" % (who, d))
    # The tunnel ends; its counts stay.
    client.stop()
    server.wait_line("peer %s: " % cid, timeout=10)
    end_text, end = scrape(sport)
    counters_grow(lasts["server"], end)
    check(end['p2ptun_agent_tunnels{path="direct",transport="udp"}'] == 0,
          "the ended tunnel is still counted")
    key = 'p2ptun_agent_bytes_total{peer="laptop",direction="received"}'
    check(end.get(key, 0) >= size, "after the end, %s is %s" % (key, end.get(key)))
    texts.append(end_text)
    no_secret(texts, [secret] + key_lines(lab))
    sys.stderr.write(end_text)


CASES = {"relay": relay, "signal": signal, "bounded": bounded, "agent": agent}

if __name__ == "__main__":
    sys.exit(run_cases(CASES, sys.argv))
