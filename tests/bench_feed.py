#!/usr/bin/env python3
"""Event feed wake latency: time from the SMTP "250" that accepts a mail
opening a ticket to the answer of an agent's long-poll that was already
waiting on /api/v4/service_desk/events (target: 50 ms).

Standard library only. Each round: read the feed to its end, open a
long-poll (wait=10) from that cursor on a thread, give it a moment to park,
send one mail, and measure from the 250 to the poll's answer. A round whose
poll answers before the mail was sent, or without the new ticket's
issue_opened event, is an error.

The last line of output is machine-readable:
  RESULT rounds=N errors=N p50_ms=X p90_ms=X p99_ms=X max_ms=X over_50ms=N
"""

import argparse
import json
import socket
import sys
import threading
import time
import urllib.request


def api_get(base, token, path, timeout):
    request = urllib.request.Request(base + path, headers={"PRIVATE-TOKEN": token})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


def feed_end(base, token):
    cursor = ""
    while True:
        body = api_get(base, token, "/api/v4/service_desk/events?limit=1000&after=" + cursor, 30)
        if not body["events"] and body["cursor"] == cursor:
            return cursor
        cursor = body["cursor"]


def smtp_reply(sock, buf):
    while True:
        while b"\r\n" not in buf[0]:
            data = sock.recv(65536)
            if not data:
                raise RuntimeError("connection closed by server")
            buf[0] += data
        line, buf[0] = buf[0].split(b"\r\n", 1)
        if len(line) < 4 or line[3:4] != b"-":
            return int(line[:3])


def send_mail(host, port, sender, rcpt, message_id):
    """Sends one mail; returns the monotonic time the 250 was read."""
    sock = socket.create_connection((host, port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = [b""]
    try:
        steps = [
            (None, 220),
            (b"EHLO bench.example.org\r\n", 250),
            (b"MAIL FROM:<" + sender.encode() + b">\r\n", 250),
            (b"RCPT TO:<" + rcpt.encode() + b">\r\n", 250),
            (b"DATA\r\n", 354),
        ]
        for line, want in steps:
            if line:
                sock.sendall(line)
            code = smtp_reply(sock, buf)
            if code != want:
                raise RuntimeError("expected %d, got %d" % (want, code))
        body = (
            "From: <%s>\r\nTo: <%s>\r\nSubject: feed latency %s\r\n"
            "Message-ID: <%s>\r\n\r\nHello.\r\n.\r\n" % (sender, rcpt, message_id, message_id)
        ).encode()
        sock.sendall(body)
        code = smtp_reply(sock, buf)
        accepted = time.monotonic()
        if code != 250:
            raise RuntimeError("end of data: %d" % code)
        sock.sendall(b"QUIT\r\n")
        return accepted
    finally:
        sock.close()


def percentile(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    index = min(len(values) - 1, max(0, int(round(p / 100.0 * (len(values) - 1)))))
    return values[index]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", required=True, help="http://host:port of the API")
    parser.add_argument("--smtp-port", type=int, required=True)
    parser.add_argument("--smtp-host", default="127.0.0.1")
    parser.add_argument("--token", required=True)
    parser.add_argument("--to", required=True, help="a project address")
    parser.add_argument("--from", dest="sender", default="agent-bench@example.org")
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--park", type=float, default=0.1, help="seconds to let the poll park")
    args = parser.parse_args()

    latencies, errors = [], 0
    for round_no in range(args.rounds):
        try:
            cursor = feed_end(args.api, args.token)
            result = {}

            def long_poll():
                try:
                    result["body"] = api_get(
                        args.api,
                        args.token,
                        "/api/v4/service_desk/events?wait=10&after=" + cursor,
                        30,
                    )
                finally:
                    result["at"] = time.monotonic()

            thread = threading.Thread(target=long_poll)
            thread.start()
            time.sleep(args.park)
            if "at" in result:
                raise RuntimeError("the poll answered before the mail was sent")
            message_id = "feed-bench-%d-%d@example.org" % (time.time_ns(), round_no)
            accepted = send_mail(args.smtp_host, args.smtp_port, args.sender, args.to, message_id)
            thread.join(30)
            if "body" not in result:
                raise RuntimeError("the poll failed or did not answer")
            kinds = [e.get("type") for e in result["body"]["events"]]
            if "issue_opened" not in kinds:
                raise RuntimeError("no issue_opened in %r" % kinds)
            latencies.append(max(0.0, result["at"] - accepted) * 1000.0)
        except Exception as error:  # one bad round is counted, not fatal
            errors += 1
            print("round %d: %s" % (round_no, error), file=sys.stderr)

    over = sum(1 for v in latencies if v > 50.0)
    print(
        "RESULT rounds=%d errors=%d p50_ms=%.1f p90_ms=%.1f p99_ms=%.1f max_ms=%.1f over_50ms=%d"
        % (
            len(latencies),
            errors,
            percentile(latencies, 50),
            percentile(latencies, 90),
            percentile(latencies, 99),
            max(latencies) if latencies else float("nan"),
            over,
        )
    )
    return 0 if latencies and errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
