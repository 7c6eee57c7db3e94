#!/usr/bin/env python3
"""Interop: Python's smtplib (a client nobody here wrote) mails mxdesk.

usage: interop_smtplib.py HOST PORT CA_PEM RCPT SUBJECT

Sends two messages over STARTTLS, verifying the server certificate against
CA_PEM (the development CA):
  1. an EmailMessage with the UTF-8 SUBJECT and a small attachment;
  2. the same SUBJECT + " (SMTPUTF8)" from an internationalised address,
     which makes smtplib use the SMTPUTF8 extension.
Prints every reply to DATA; exits non-zero with a message on any failure.
Run by tests/interop.rs, which then checks the tickets through the API.
"""

import smtplib
import ssl
import sys
import traceback
from email.message import EmailMessage


class RecordingSMTP(smtplib.SMTP):
    """smtplib.SMTP that keeps the reply to DATA (send_message hides it)."""

    last_data_reply = None

    def data(self, msg):
        reply = super().data(msg)
        self.last_data_reply = reply
        return reply


def fail(message):
    print(f"interop_smtplib: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    if len(sys.argv) != 6:
        fail(__doc__)
    host, port, ca, rcpt, subject = sys.argv[1:]
    context = ssl.create_default_context(cafile=ca)

    with RecordingSMTP(host, int(port), local_hostname="client.example.org", timeout=30) as smtp:
        code, _ = smtp.ehlo()
        if code != 250:
            fail(f"EHLO got {code}")
        if not smtp.has_extn("starttls"):
            fail(f"STARTTLS not advertised: {smtp.esmtp_features}")
        code, text = smtp.starttls(context=context)
        if code != 220:
            fail(f"STARTTLS got {code} {text!r}")
        print(f"TLS: {smtp.sock.version()} {smtp.sock.cipher()[0]}")
        smtp.ehlo()
        if smtp.has_extn("starttls"):
            fail("STARTTLS still advertised after TLS")
        for extension in ("pipelining", "size", "8bitmime", "enhancedstatuscodes", "chunking", "smtputf8"):
            if not smtp.has_extn(extension):
                fail(f"{extension} not advertised: {sorted(smtp.esmtp_features)}")

        first = EmailMessage()
        first["From"] = "Zoë Reporter <zoe@example.org>"
        first["To"] = rcpt
        first["Subject"] = subject
        first["Message-ID"] = "<smtplib-interop-1@example.org>"
        first.set_content("Hallo from smtplib.\nZweite Zeile mit Umlauten: äöü.\n")
        first.add_attachment(b"%PDF-1.4 not really\x00\x01\x02", maintype="application",
                             subtype="pdf", filename="invoice.pdf")
        refused = smtp.send_message(first)
        if refused:
            fail(f"recipients refused: {refused}")
        code, text = smtp.last_data_reply
        print(f"message 1: {code} {text.decode()}")
        if code != 250:
            fail(f"message 1 got {code}")

        second = EmailMessage()
        second["From"] = "Zoë <zoë@example.org>"
        second["To"] = rcpt
        second["Subject"] = subject + " (SMTPUTF8)"
        second["Message-ID"] = "<smtplib-interop-2@example.org>"
        second.set_content("Sent with SMTPUTF8.\n")
        # A non-ASCII envelope sender makes smtplib require and use SMTPUTF8.
        refused = smtp.send_message(second, from_addr="zoë@example.org", to_addrs=[rcpt])
        if refused:
            fail(f"recipients refused: {refused}")
        code, text = smtp.last_data_reply
        print(f"message 2: {code} {text.decode()}")
        if code != 250:
            fail(f"message 2 got {code}")
    print("interop_smtplib: OK")


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except BaseException:  # report every failure, then exit non-zero
        traceback.print_exc()
        fail("unexpected exception")
