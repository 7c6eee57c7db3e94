#!/usr/bin/env python3
"""SMTP acceptance latency: time from sending the end of DATA ("\\r\\n.\\r\\n")
to receiving the final reply (250), under a fixed offered load.

Standard library only. Opens --sessions SMTP connections (EHLO once each),
then each session sends messages (MAIL, RCPT, DATA, body) on a fixed
schedule so that all sessions together offer --rate messages per second for
--duration seconds. A session that falls behind its schedule sends its next
message at once (the achieved rate then drops below the target, which is
reported). Every message has a unique Message-ID.

The last line of output is machine-readable:
  RESULT sent=N errors=N achieved=R p50_ms=X p90_ms=X p99_ms=X max_ms=X
"""

import argparse
import os
import socket
import sys
import threading
import time


class SmtpError(Exception):
    pass


class Session:
    def __init__(self, host, port, timeout, helo):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.expect(220)
        self.command(b"EHLO " + helo.encode() + b"\r\n", 250)

    def reply(self):
        """Reads one (possibly multi-line) reply; returns (code, text)."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                data = self.sock.recv(65536)
                if not data:
                    raise SmtpError("connection closed by server")
                self.buf += data
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                break
        try:
            code = int(lines[-1][:3])
        except ValueError:
            raise SmtpError("malformed reply: %r" % lines[-1])
        return code, b"\n".join(lines).decode("utf-8", "replace")

    def expect(self, want):
        code, text = self.reply()
        if code != want:
            raise SmtpError("expected %d, got: %s" % (want, text))
        return text

    def command(self, data, want):
        self.sock.sendall(data)
        return self.expect(want)

    def send_message(self, sender, rcpt, body):
        """Sends one message; returns seconds from end-of-DATA to the reply."""
        self.command(b"MAIL FROM:<" + sender + b">\r\n", 250)
        self.command(b"RCPT TO:<" + rcpt + b">\r\n", 250)
        self.command(b"DATA\r\n", 354)
        self.sock.sendall(body)
        t0 = time.perf_counter()
        self.sock.sendall(b"\r\n.\r\n")
        code, text = self.reply()
        elapsed = time.perf_counter() - t0
        if code != 250:
            raise SmtpError("end of DATA: %s" % text)
        return elapsed

    def close(self):
        try:
            self.sock.sendall(b"QUIT\r\n")
            self.reply()
        except (OSError, SmtpError):
            pass
        self.sock.close()


def make_body(args, session_no, seq):
    """Headers + a payload of --size bytes, dot-safe, without the final CRLF.CRLF."""
    msgid = "<bench.%d.%d.%d.%d@%s>" % (os.getpid(), int(time.time()), session_no, seq, args.helo)
    headers = (
        "From: <%s>\r\n"
        "To: <%s>\r\n"
        "Subject: latency bench %d.%d\r\n"
        "Date: %s\r\n"
        "Message-ID: %s\r\n"
        "\r\n" % (args.sender, args.rcpt, session_no, seq,
                  time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()), msgid)
    ).encode()
    line = b"X" * 76 + b"\r\n"
    payload = (line * (args.size // len(line) + 1))[: args.size]
    if payload.endswith(b"\r"):
        payload = payload[:-1] + b"X"
    return headers + payload


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def worker(args, session_no, start, interval, end, results, errors, lock):
    sender, rcpt = args.sender.encode(), args.rcpt.encode()
    lat = []
    err = 0
    sess = None
    seq = 0
    # Stagger sessions evenly across one interval.
    next_at = start + interval * session_no / args.sessions
    try:
        while True:
            now = time.perf_counter()
            if next_at >= end or now >= end + args.timeout:
                break
            if next_at > now:
                time.sleep(next_at - now)
            next_at += interval
            try:
                if sess is None:
                    sess = Session(args.host, args.port, args.timeout, args.helo)
                lat.append(sess.send_message(sender, rcpt, make_body(args, session_no, seq)))
            except (OSError, SmtpError) as e:
                err += 1
                if err <= 3:
                    print("session %d: error: %s" % (session_no, e), file=sys.stderr)
                if sess is not None:
                    sess.sock.close()
                    sess = None
                if err >= args.max_errors:
                    break
            seq += 1
    finally:
        if sess is not None:
            sess.close()
        with lock:
            results.extend(lat)
            errors[0] += err


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--rate", type=float, default=1000.0, help="target msg/s, all sessions together")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds of offered load")
    ap.add_argument("--size", type=int, default=2048, help="payload bytes per message")
    ap.add_argument("--from", dest="sender", default="sender@example.org")
    ap.add_argument("--to", dest="rcpt", default="bench@desk.test")
    ap.add_argument("--helo", default="bench.example.org")
    ap.add_argument("--timeout", type=float, default=10.0, help="socket timeout, seconds")
    ap.add_argument("--max-errors", type=int, default=20, help="per session, then it stops")
    args = ap.parse_args()
    if args.sessions < 1 or args.rate <= 0 or args.duration <= 0:
        ap.error("--sessions, --rate and --duration must be positive")

    interval = args.sessions / args.rate  # seconds between messages of one session
    results, errors, lock = [], [0], threading.Lock()
    start = time.perf_counter() + 0.2  # let all threads get ready
    end = start + args.duration
    threads = [
        threading.Thread(target=worker, args=(args, i, start, interval, end, results, errors, lock), daemon=True)
        for i in range(args.sessions)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(args.duration + 4 * args.timeout + 5)
    elapsed = max(time.perf_counter() - start, 1e-9)

    with lock:
        lat = sorted(x * 1000.0 for x in results)
        n, nerr = len(lat), errors[0]
    achieved = n / elapsed
    p50, p90, p99 = percentile(lat, 50), percentile(lat, 90), percentile(lat, 99)
    mx = lat[-1] if lat else float("nan")
    print("latency: %d messages in %.2f s over %d sessions (target %.0f msg/s, achieved %.1f msg/s), %d errors"
          % (n, elapsed, args.sessions, args.rate, achieved, nerr))
    print("latency: end of DATA -> 250: p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, max %.3f ms" % (p50, p90, p99, mx))
    print("RESULT sent=%d errors=%d achieved=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f"
          % (n, nerr, achieved, p50, p90, p99, mx))
    return 0 if n > 0 and nerr == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
