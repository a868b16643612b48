"""Deals from e-mail over SMTP: Python's own `smtplib` sends mail to funnel's `--smtp-listen`,
addressed `{boardId}+{secret}@...` as an admin sees it over the API; the deal shows over the REST
API, then a reply (In-Reply-To) lands on the same card once, even when it is sent twice. A wrong
secret and an unknown board are refused with 550, an oversized message with 552.

Only the standard library: smtplib, email, urllib. Every wait is bounded. The server is
`FUNNEL_BIN` (default: the workspace's debug build).
"""

import json
import os
import re
import shutil
import smtplib
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

HERE = Path(__file__).resolve().parent
FUNNEL_BIN = os.environ.get("FUNNEL_BIN", str(HERE / "../../../target/debug/funnel"))
WAIT = 15.0  # seconds: the bound of every wait
SECRET = "a python test secret, long enough for HS256"
MAX_MAIL_BYTES = 64 * 1024


class Funnel:
    """`funnel serve` with tokens and an SMTP listener, both on ephemeral loopback ports."""

    def __init__(self):
        self.data_dir = tempfile.mkdtemp(prefix="funnel-mail-")
        self.log_path = Path(self.data_dir) / "funnel.log"
        env = {**os.environ, "NO_COLOR": "1", "FUNNEL_AUTH_SECRET": SECRET}
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [
                    FUNNEL_BIN, "serve",
                    "--listen", "127.0.0.1:0",
                    "--smtp-listen", "127.0.0.1:0",
                    "--mail-domain", "crm.example.com",
                    "--max-mail-bytes", str(MAX_MAIL_BYTES),
                    "--data-dir", self.data_dir,
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=env,
            )
        deadline = time.monotonic() + WAIT
        self.port = self.smtp_port = None
        while self.port is None or self.smtp_port is None:
            text = re.sub(r"\x1b\[[0-9;]*m", "", self.log_path.read_text())
            http = re.search(r"listening on 127\.0\.0\.1:(\d+)", text)
            smtp = re.search(r"smtp on 127\.0\.0\.1:(\d+)", text)
            if http and smtp:
                self.port, self.smtp_port = int(http.group(1)), int(smtp.group(1))
            elif time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"funnel did not start: {text}")
            else:
                time.sleep(0.02)
        self.admin = self.token("root", "admin")

    def token(self, user, role):
        return subprocess.run(
            [FUNNEL_BIN, "token", "--user", user, "--role", role],
            env={**os.environ, "FUNNEL_AUTH_SECRET": SECRET},
            capture_output=True, text=True, check=True, timeout=WAIT,
        ).stdout.strip()

    def api(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
            headers={"Authorization": f"Bearer {self.admin}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=WAIT) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def smtp(self):
        return smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=WAIT)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        shutil.rmtree(self.data_dir, ignore_errors=True)


def mail(sender, to, subject, text, message_id, in_reply_to=None):
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    message.set_content(text)
    return message


class SmtpMail(unittest.TestCase):
    def setUp(self):
        self.funnel = Funnel()
        self.addCleanup(self.funnel.stop)
        status, board = self.funnel.api("POST", "/api/v1/boards", {"entity": "deal", "name": "Mail"})
        self.assertEqual(status, 201, board)
        self.board = board["id"]
        status, address = self.funnel.api("GET", f"/api/v1/boards/{self.board}/inbound-email")
        self.assertEqual(status, 200, address)
        self.assertTrue(address["smtp"], address)
        self.address = address["address"]
        self.assertTrue(self.address.startswith(f"{self.board}+"), self.address)
        self.assertTrue(self.address.endswith("@crm.example.com"), self.address)

    def cards(self):
        status, page = self.funnel.api("GET", f"/api/v1/boards/{self.board}/cards")
        self.assertEqual(status, 200, page)
        return page["cards"]

    def timeline(self, card):
        status, page = self.funnel.api("GET", f"/api/v1/boards/{self.board}/cards/{card}/timeline")
        self.assertEqual(status, 200, page)
        return page["events"]

    def test_mail_makes_a_deal_and_a_reply_lands_on_it_once(self):
        first_id = make_msgid(domain="client.example")
        first = mail("Ada Lovelace <ada@client.example>", self.address, "40 engines, please",
                     "Hello,\nwhat would 40 engines cost?\n", first_id)
        with self.funnel.smtp() as smtp:
            refused = smtp.send_message(first)
            self.assertEqual(refused, {})
        cards = self.cards()
        self.assertEqual(len(cards), 1, cards)
        deal = cards[0]
        self.assertEqual(deal["title"], "40 engines, please")
        self.assertEqual(deal["client"], "Ada Lovelace")
        self.assertEqual(deal["email"], "ada@client.example")
        self.assertEqual(deal["counter"]["incoming"], 1, deal)
        events = self.timeline(deal["id"])
        self.assertEqual(len(events), 1, events)
        self.assertEqual(events[0]["kind"], "email")
        self.assertEqual(events[0]["direction"], "incoming")
        self.assertIn("what would 40 engines cost?", events[0]["text"])
        self.assertEqual(events[0]["mail"]["subject"], "40 engines, please")
        self.assertEqual(events[0]["mail"]["from"], "ada@client.example")

        # A reply from someone else at the client, naming the first message, sent twice (a
        # retrying relay): one entry on the same card, no second deal.
        reply = mail("Grace <grace@client.example>", self.address, "Re: 40 engines, please",
                     "By March, please.\n", make_msgid(domain="client.example"),
                     in_reply_to=first_id)
        with self.funnel.smtp() as smtp:
            smtp.send_message(reply)
            smtp.send_message(reply)
        cards = self.cards()
        self.assertEqual(len(cards), 1, cards)
        self.assertEqual(cards[0]["id"], deal["id"])
        self.assertEqual(cards[0]["counter"]["incoming"], 2, cards[0])
        events = self.timeline(deal["id"])
        self.assertEqual([e["mail"]["subject"] for e in events],
                         ["Re: 40 engines, please", "40 engines, please"])

    def test_wrong_addresses_and_oversized_mail_are_refused(self):
        message = mail("ada@client.example", "x", "Hi", "hi\n", make_msgid())
        wrong_secret = f"{self.board}+00000000000000000000@crm.example.com"
        for to in [wrong_secret, f"{self.board}@crm.example.com", "no-such-board@crm.example.com"]:
            with self.funnel.smtp() as smtp:
                with self.assertRaises(smtplib.SMTPRecipientsRefused) as refused:
                    smtp.send_message(message, to_addrs=[to])
                code, _ = refused.exception.recipients[to]
                self.assertEqual(code, 550, refused.exception.recipients)
        big = mail("ada@client.example", self.address, "Big", "big", make_msgid())
        big.set_content(("y" * 76 + "\n") * (MAX_MAIL_BYTES // 76 + 10))
        with self.funnel.smtp() as smtp:
            with self.assertRaises(smtplib.SMTPDataError) as refused:
                smtp.send_message(big)
            self.assertEqual(refused.exception.smtp_code, 552)
        self.assertEqual(self.cards(), [])


if __name__ == "__main__":
    unittest.main()
