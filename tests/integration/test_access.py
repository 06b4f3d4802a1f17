#!/usr/bin/env python3
"""Integration tests of who may use p2ptun-signal (issue 18): enrollment
tokens, revocation, restarts, a client CA and --open, with the real
p2ptun-signal and p2ptun-agent. Every token the test makes is looked for in
every log and file afterwards: none may appear but on the operator's stdout.

usage: test_access.py BUILD_DIR CASE"""

import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time

from lab import TestFailure, check, free_port, pattern_bytes, roundtrip, run_cases

NOT_ENROLLED = ("this signaling server does not know this agent (peer-id %s); ask its "
                "operator for an enrollment token, then run `p2ptun-agent enroll`")


def api(url, config, method, path, body=None, timeout=10.0, cert="identity.crt"):
    """One request to the signaling server as the agent of config (its own
    certificate, or cert in its directory); returns (status, JSON answer)."""
    host, port = re.fullmatch(r"https://([\d.]+):(\d+)", url).groups()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(os.path.join(config, cert), os.path.join(config, "identity.key"))
    conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=timeout)
    try:
        conn.request(method, path, body=body,
                     headers={"Content-Type": "application/json"} if body else {})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


class Operator:
    """The p2ptun-signal admin commands on one state directory; keeps every
    token it was given, for the final search of the logs."""

    def __init__(self, lab, state):
        self.lab, self.state = lab, state
        self.tokens = []

    def run(self, *args, ok=True):
        out = subprocess.run([self.lab.signal_bin] + list(args) + ["--state-dir", self.state],
                             capture_output=True, timeout=30)
        text = out.stderr.decode()
        sys.stderr.write("[operator %s] %s" % (" ".join(args), text))
        self.lab.operator_output.append(text)
        if ok:
            check(out.returncode == 0, "p2ptun-signal %s failed: %s" % (args[0], text))
        return out.returncode, out.stdout.decode(), text

    def token(self, *args):
        _, stdout, _ = self.run("enroll", *args)
        token = stdout.strip()
        check(re.fullmatch(r"p2ptun1-[a-z2-7]{32}", token), "enroll printed %r" % stdout)
        self.tokens.append(token)
        return token

    def peers(self):
        _, stdout, _ = self.run("peers", "--json")
        return json.loads(stdout)


def agent_enroll(lab, config, url, pin, token, stdin=False):
    """p2ptun-agent enroll; returns (exit code, its output). With stdin the
    token goes through standard input ("-"), as --help advises."""
    argv = [lab.agent_bin, "enroll", "--config", config, "--signal", url, "--signal-pin", pin,
            "-" if stdin else token]
    env = dict(os.environ, G_MESSAGES_DEBUG="all")
    out = subprocess.run(argv, input=(token + "\n").encode() if stdin else None,
                         capture_output=True, timeout=60, env=env)
    text = out.stdout.decode() + out.stderr.decode()
    sys.stderr.write("[enroll %s] %s\n" % (os.path.basename(config), text))
    lab.agent_output.append(text)
    return out.returncode, text


def no_token_anywhere(lab, operator):
    """No token in any process's output, any agent's output, the state
    directory or the operator's messages (stderr)."""
    texts = [p.text() for p in lab.procs] + lab.agent_output + lab.operator_output
    for root, _, files in os.walk(lab.dir):
        for name in files:
            try:
                with open(os.path.join(root, name), "rb") as f:
                    texts.append(f.read().decode("latin-1"))
            except OSError:
                pass
    check(operator.tokens, "the test made no token")
    for token in operator.tokens:
        for text in texts:
            check(token not in text, "a token appears in a log or file")
    sys.stderr.write("no token of %d in %d logs and files\n" % (len(operator.tokens), len(texts)))


def prepare(lab):
    lab.agent_output = []
    lab.operator_output = []


def enrollment(lab):
    """Strangers are refused with the issue's words and get no relay
    credentials; tokens admit once, race, expire; enrolled agents pair; a
    revoke ends a live long-poll; a restart keeps it all."""
    prepare(lab)
    sig, url, pin = lab.signal_server()
    op = Operator(lab, sig.state)
    nas, nas_id = lab.agent_dir("nas")
    laptop, laptop_id = lab.agent_dir("laptop")
    phone, phone_id = lab.agent_dir("phone")
    other, other_id = lab.agent_dir("other")

    # A stranger: the API and the CLI say what to do.
    status, body = api(url, nas, "GET", "/v1/ice-servers")
    check(status == 403 and body["error"] == "not-enrolled"
          and body["message"] == NOT_ENROLLED % nas_id, "stranger's ice-servers: %s %r"
          % (status, body))
    stranger = lab.agent("stranger", nas, ["serve", "--expose", "x=127.0.0.1:9"], url, pin,
                         enroll=False)
    stranger.wait_line(re.escape(NOT_ENROLLED % nas_id), timeout=20)
    stranger.stop()
    check(any(s["id"] == nas_id for s in op.peers()["seen"]),
          "the refused peer-id is not in the seen list")

    # A one-time token admits one agent, once.
    t1 = op.token("--note", "home server")
    code, text = agent_enroll(lab, nas, url, pin, t1)
    check(code == 0 and nas_id in text, "enroll with a fresh token: %d %s" % (code, text))
    code, text = agent_enroll(lab, laptop, url, pin, t1)
    check(code != 0 and "not valid" in text, "a used token was accepted: %d %s" % (code, text))
    status, body = api(url, laptop, "GET", "/v1/ice-servers")
    check(status == 403, "the refused laptop got ice-servers: %s" % status)

    # Two agents race for one token: exactly one wins.
    t2 = op.token()
    results = {}

    def race(name, config):
        results[name] = agent_enroll(lab, config, url, pin, t2)

    threads = [threading.Thread(target=race, args=(n, c))
               for n, c in (("laptop", laptop), ("phone", phone))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    winners = [n for n, (code, _) in results.items() if code == 0]
    check(len(winners) == 1, "two agents raced for a one-time token: %r" % results)
    sys.stderr.write("the race for one token: %s won\n" % winners[0])

    # An expired token.
    t3 = op.token("--expires", "1s")
    time.sleep(1.5)
    code, text = agent_enroll(lab, other, url, pin, t3)
    check(code != 0 and "not valid" in text, "an expired token was accepted: %d %s" % (code, text))

    # A reusable token, through stdin, for the rest.
    t4 = op.token("--reusable", "--expires", "1h", "--note", "family")
    for config in (laptop, phone, other):
        code, text = agent_enroll(lab, config, url, pin, t4, stdin=True)
        check(code == 0, "enroll with a reusable token: %d %s" % (code, text))
    listed = {p["id"]: p for p in op.peers()["peers"]}
    check(set(listed) == {nas_id, laptop_id, phone_id, other_id}, "peers: %r" % listed)
    check(listed[nas_id]["note"] == "home server", "the token's note: %r" % listed[nas_id])

    # Enrolled agents pair.
    echo = lab.service("echo")
    server = lab.agent("nas", nas, ["serve", "--expose", "echo=127.0.0.1:%d" % echo.port,
                                    "--trust", laptop_id], url, pin, enroll=False)
    server.wait_line("serving as " + nas_id)
    lport = free_port()
    client = lab.agent("laptop", laptop, ["pair", nas_id, "-L", "%d:echo" % lport], url, pin,
                       enroll=False)
    client.wait_line("tunnel up", timeout=20)
    data = pattern_bytes(3, 256 * 1024)
    check(roundtrip(lport, data) == data, "echo through the tunnel differs")

    # A peer the server has not enrolled: pair says so and stops.
    _, nobody_id = lab.agent_dir("nobody")
    lonely = lab.agent("lonely", phone, ["pair", nobody_id, "-L", "%d:echo" % free_port()], url,
                       pin, enroll=False)
    lonely.wait_line(r"error: peer %s: the signaling server at \S+ has not enrolled that peer"
                     % nobody_id, timeout=20)
    check(lonely.wait_exit(10) == 1, "pair to a peer that is not enrolled should exit 1")

    # Revoke during a live long-poll: the poll ends with 403 at once.
    answer = {}

    def poll():
        answer["r"] = api(url, other, "GET", "/v1/peers/%s/messages?wait=25" % other_id,
                          timeout=30)
        answer["t"] = time.monotonic()

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(1.0)
    check(poller.is_alive(), "the long-poll ended before the revoke: %r" % answer)
    revoked_at = time.monotonic()
    op.run("revoke", other_id)
    poller.join(10)
    check(not poller.is_alive(), "the long-poll did not end after the revoke")
    status, body = answer["r"]
    check(status == 403 and body["error"] == "revoked", "the ended poll: %s %r" % (status, body))
    sys.stderr.write("the revoked long-poll ended %.3f s after the revoke command began\n"
                     % (answer["t"] - revoked_at))
    status, body = api(url, other, "GET", "/v1/ice-servers")
    check(status == 403 and body["error"] == "revoked", "after the revoke: %s %r" % (status, body))
    code, text = agent_enroll(lab, other, url, pin, t4)
    check(code != 0 and "revoked" in text, "a revoked agent enrolled again: %d %s" % (code, text))

    # A restart keeps the enrollments and the revocation.
    client.stop()
    server.stop()
    sig.stop()
    sig2, url2, pin2 = lab.signal_server(state=sig.state)
    check(pin2 == pin, "the restarted server has another key")
    for config in (nas, laptop, phone):
        status, _ = api(url2, config, "GET", "/v1/ice-servers")
        check(status == 200, "%s after the restart: %s" % (config, status))
    status, body = api(url2, other, "GET", "/v1/ice-servers")
    check(status == 403 and body["error"] == "revoked", "revoked after the restart: %s" % status)
    check(other_id in [r["id"] for r in op.peers()["revoked"]], "revoked list after the restart")

    # Guessing is rate-limited per address: a burst of 10, then two a second
    # (30 guesses take well under the 10 s that would refill the burst).
    answers = [api(url2, phone, "POST", "/v1/enroll",
                   body=json.dumps({"token": "p2ptun1-" + "a" * 32}))[1]["error"]
               for _ in range(30)]
    check(set(answers) == {"bad-token", "rate-limited"} and answers[0] == "bad-token",
          "30 guesses in a row: %r" % answers)
    sys.stderr.write("30 guesses in a row: %d refused as bad, %d rate-limited\n"
                     % (answers.count("bad-token"), answers.count("rate-limited")))

    no_token_anywhere(lab, op)


def open_server(lab):
    """--open admits strangers, says so at start, and still refuses a revoked
    peer; relay policies reach the TURN usernames."""
    prepare(lab)
    _, secret_file = lab.turn_secret()
    sig, url, pin = lab.signal_server("--open", "--relay", "turn:127.0.0.1:3478",
                                      "--turn-secret-file", secret_file)
    sig.wait_line(r"WARNING: --open")
    op = Operator(lab, sig.state)
    a, a_id = lab.agent_dir("a")
    status, body = api(url, a, "GET", "/v1/ice-servers")
    check(status == 200, "--open refused a stranger: %s" % status)
    check(re.fullmatch(r"\d+:" + a_id, body["turn"][0]["username"]),
          "username without a policy: %r" % body)
    op.run("policy", "--default", "--max-allocations", "4")
    op.run("enroll", "--peer", a_id, "--note", "lab")
    op.run("policy", a_id, "--max-bps", "125000")
    _, body = api(url, a, "GET", "/v1/ice-servers")
    check(re.fullmatch(r"\d+:" + a_id + ":a=4,b=125000", body["turn"][0]["username"]),
          "username with a policy: %r" % body)
    peers = op.peers()
    check(peers["peers"][0]["max_bps"] == 125000 and peers["default_policy"]["max_allocations"] == 4,
          "policy listing: %r" % peers)
    op.run("revoke", a_id)
    status, body = api(url, a, "GET", "/v1/ice-servers")
    check(status == 403 and body["error"] == "revoked", "--open and revoked: %s %r" % (status, body))
    # And back: enroll --seen after a revoke does not admit the revoked one.
    b, b_id = lab.agent_dir("b")
    api(url, b, "GET", "/v1/ice-servers")
    check([s["id"] for s in op.peers()["seen"]] == [b_id], "--open keeps the peer-ids it served")
    _, _, text = op.run("enroll", "--seen")
    check("enrolled 1 peer-id" in text, "enroll --seen: %s" % text)
    peers = op.peers()
    check([p["id"] for p in peers["peers"]] == [b_id], "after enroll --seen: %r" % peers)


def make_ca(lab, name):
    """A self-made CA (P-256); returns (cert, key)."""
    cert, key = lab.path(name + ".crt"), lab.path(name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=" + name,
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign",
                    "-keyout", key, "-out", cert],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


def sign_agent(lab, config, ca):
    """p2ptun-agent csr, signed by ca with openssl, put back as the agent's
    signed-cert.pem."""
    out = subprocess.run([lab.agent_bin, "csr", "--config", config], capture_output=True,
                         timeout=30)
    check(out.returncode == 0 and b"BEGIN CERTIFICATE REQUEST" in out.stdout,
          "p2ptun-agent csr: %s" % out.stderr.decode())
    csr = os.path.join(config, "request.csr")
    with open(csr, "wb") as f:
        f.write(out.stdout)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1],
                    "-CAcreateserial", "-days", "1", "-copy_extensions", "copy",
                    "-out", os.path.join(config, "signed-cert.pem")],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def client_ca(lab):
    """--client-ca admits an agent whose certificate (from its own csr) the
    CA signed, under the peer-id of its key; one signed by another CA is not."""
    prepare(lab)
    ours, theirs = make_ca(lab, "org-ca"), make_ca(lab, "other-ca")
    sig, url, pin = lab.signal_server("--client-ca", ours[0])
    op = Operator(lab, sig.state)
    a, a_id = lab.agent_dir("a")
    b, b_id = lab.agent_dir("b")
    sign_agent(lab, a, ours)
    sign_agent(lab, b, theirs)
    # The self-signed certificate alone does not do.
    status, body = api(url, a, "GET", "/v1/ice-servers")
    check(status == 403 and body["error"] == "not-enrolled", "self-signed: %s %r" % (status, body))
    status, body = api(url, b, "GET", "/v1/ice-servers", cert="signed-cert.pem")
    check(status == 403 and body["error"] == "not-enrolled", "other CA: %s %r" % (status, body))
    # The real agent presents signed-cert.pem by itself.
    server = lab.agent("a", a, ["serve", "--expose", "x=127.0.0.1:9"], url, pin, enroll=False)
    server.wait_line("serving as " + a_id)
    listed = {p["id"]: p for p in op.peers()["peers"]}
    check(list(listed) == [a_id] and listed[a_id]["via"] == "client-ca", "peers: %r" % listed)
    other = lab.agent("b", b, ["serve", "--expose", "x=127.0.0.1:9"], url, pin, enroll=False)
    other.wait_line(re.escape(NOT_ENROLLED % b_id), timeout=20)
    # Revocation wins over the CA.
    op.run("revoke", a_id)
    status, body = api(url, a, "GET", "/v1/ice-servers", cert="signed-cert.pem")
    check(status == 403 and body["error"] == "revoked", "revoked CA agent: %s %r" % (status, body))


REVOKE_TTL = 12


def relay_revoke(lab):
    """A relayed tunnel whose serving agent is revoked keeps working until
    that agent's relay credentials expire, and no longer: its renewal is
    refused, p2ptun-relay ends the allocation at the credentials' expiry, and
    no new one can be made (both agents --relay-only, 12 s credentials)."""
    prepare(lab)
    _, secret_file = lab.turn_secret()
    relay, port = lab.relay_server(secret_file)
    echo = lab.service("echo")
    sig, url, pin = lab.signal_server("--relay", "turn:127.0.0.1:%d" % port,
                                      "--turn-secret-file", secret_file,
                                      "--turn-ttl", str(REVOKE_TTL))
    op = Operator(lab, sig.state)
    sdir, sid = lab.agent_dir("server")
    cdir, cid = lab.agent_dir("client")
    server = lab.agent("server", sdir, ["serve", "--expose", "echo=127.0.0.1:%d" % echo.port,
                                        "--trust", cid, "--relay-only"], url, pin)
    server.wait_line("serving as")
    lport = free_port()
    client = lab.agent("client", cdir, ["pair", sid, "--relay-only", "-L", "%d:echo" % lport],
                       url, pin)
    client.wait_line(r"tunnel up: peer \S+, path relayed", timeout=20)
    sock = socket.create_connection(("127.0.0.1", lport), timeout=10)
    sock.settimeout(3.0)
    block = pattern_bytes(9, 1024)

    def round_trip():
        try:
            sock.sendall(block)
            got = b""
            while len(got) < len(block):
                chunk = sock.recv(len(block) - len(got))
                if not chunk:
                    return False
                got += chunk
            return got == block
        except OSError:
            return False

    check(round_trip(), "no echo through the relayed tunnel")
    revoked_at = time.monotonic()
    op.run("revoke", sid)
    server.wait_line("revoked this agent", timeout=10)
    last_ok = None
    deadline = revoked_at + REVOKE_TTL + 20
    while time.monotonic() < deadline:
        if not round_trip():
            break
        last_ok = time.monotonic()
        time.sleep(0.2)
    check(last_ok is not None, "the tunnel stopped at the revoke, before its credentials expired")
    ended = last_ok - revoked_at
    sys.stderr.write("after the revoke, the relayed tunnel carried data for %.1f s "
                     "(credentials live %d s)\n" % (ended, REVOKE_TTL))
    check(time.monotonic() < deadline, "the relayed tunnel still works %d s after the revoke"
          % (REVOKE_TTL + 20))
    check(ended <= REVOKE_TTL + 1, "data flowed %.1f s after the revoke, past the credentials' "
          "%d s" % (ended, REVOKE_TTL))
    # And no longer: a new connection gets nothing back either.
    time.sleep(3)
    try:
        late = socket.create_connection(("127.0.0.1", lport), timeout=3)
        late.settimeout(3)
        late.sendall(block)
        back = late.recv(len(block))
        late.close()
    except OSError:
        back = b""
    check(back != block, "a new connection through the revoked agent's relay works again")


CASES = {
    "relay-revoke": relay_revoke,
    "client-ca": client_ca,
    "enrollment": enrollment,
    "open": open_server,
}

if __name__ == "__main__":
    sys.exit(run_cases(CASES, sys.argv))
