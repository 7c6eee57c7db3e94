"""An SMTP sink for mxdesk's outbound-mail tests: a real SMTP server
(aiosmtpd) on an ephemeral loopback port that stores every message it
accepts as <dir>/<n>.eml with the envelope in <dir>/<n>.json.

Usage: python sink.py DIR [PORT]
Prints "sink listening on 127.0.0.1:PORT" once ready, then runs until stdin
closes or it is killed. With --reject-rcpt, every RCPT gets 550 5.1.1.
"""
import asyncio
import json
import os
import sys
import threading

from aiosmtpd.smtp import SMTP


class Store:
    def __init__(self, directory, reject):
        self.directory = directory
        self.reject = reject
        self.count = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject:
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            n = self.count
        base = os.path.join(self.directory, "%06d" % n)
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        with open(base + ".json", "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos}, f)
        os.rename(base + ".eml.tmp", base + ".eml")
        return "250 2.0.0 stored"


async def serve(directory, port, reject):
    handler = Store(directory, reject)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, hostname="sink.test"), "127.0.0.1", port)
    actual = server.sockets[0].getsockname()[1]
    print("sink listening on 127.0.0.1:%d" % actual, flush=True)
    # Run until stdin closes (the test process ends) or we are killed.
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    reject = "--reject-rcpt" in sys.argv
    directory = args[0]
    port = int(args[1]) if len(args) > 1 else 0
    os.makedirs(directory, exist_ok=True)
    asyncio.run(serve(directory, port, reject))


if __name__ == "__main__":
    main()
