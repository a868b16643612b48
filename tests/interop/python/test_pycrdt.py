"""pycrdt clients against funnel (issue 17): a Python client that nobody here wrote speaks the
y-websocket protocol with pycrdt's own sync helpers over a plain WebSocket (`websockets`). It
joins, edits and sees others' edits; it sends back every update it receives, as pycrdt clients
do, and is not closed for it on a board of several MB; it reconnects with offline edits.

Every wait is bounded. The server is `FUNNEL_BIN` (default: the workspace's debug build).
"""

import asyncio
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest
import uuid
from pathlib import Path

import websockets
from pycrdt import (
    Doc,
    Map,
    YMessageType,
    create_sync_message,
    create_update_message,
    handle_sync_message,
)

HERE = Path(__file__).resolve().parent
FUNNEL_BIN = os.environ.get("FUNNEL_BIN", str(HERE / "../../../target/debug/funnel"))
WAIT = 15.0  # seconds: the bound of every wait


class Funnel:
    """`funnel serve` on an ephemeral loopback port with a fresh data directory."""

    def __init__(self):
        self.data_dir = tempfile.mkdtemp(prefix="funnel-pycrdt-")
        self.log_path = Path(self.data_dir) / "funnel.log"
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [FUNNEL_BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", self.data_dir],
                stdout=subprocess.DEVNULL,
                stderr=log,
                env={**os.environ, "NO_COLOR": "1"},
            )
        deadline = time.monotonic() + WAIT
        self.port = None
        while self.port is None:
            log = re.sub(r"\x1b\[[0-9;]*m", "", self.log_path.read_text())
            match = re.search(r"listening on 127\.0\.0\.1:(\d+)", log)
            if match:
                self.port = int(match.group(1))
            elif time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"funnel did not start: {log}")
            else:
                time.sleep(0.02)

    def url(self, board):
        return f"ws://127.0.0.1:{self.port}/ws/boards/{board}"

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        shutil.rmtree(self.data_dir, ignore_errors=True)


class PycrdtClient:
    """A pycrdt document synced over one socket, sending every update of its document (its own
    edits and those it received) as pycrdt's providers do."""

    def __init__(self, url, doc=None):
        self.url = url
        self.doc = doc if doc is not None else Doc()
        self.ws = None
        self.synced = asyncio.Event()
        self.closed = None  # (code, reason) once the server closed the socket
        self.sent_updates = 0
        self._outgoing = asyncio.Queue()
        self._tasks = []
        self._subscription = self.doc.observe(lambda event: self._outgoing.put_nowait(event.update))

    async def connect(self, timeout=WAIT):
        self.synced = asyncio.Event()
        self.ws = await asyncio.wait_for(websockets.connect(self.url, max_size=None), WAIT)
        await self.ws.send(create_sync_message(self.doc))
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._write())]
        await asyncio.wait_for(self.synced.wait(), timeout)

    async def _write(self):
        while True:
            update = await self._outgoing.get()
            if self.ws is None:
                continue  # offline: the next step 2 carries it
            try:
                await self.ws.send(create_update_message(update))
                self.sent_updates += 1
            except websockets.ConnectionClosed:
                return

    async def _read(self):
        try:
            async for message in self.ws:
                if message[0] != YMessageType.SYNC:
                    continue  # awareness: not needed here
                reply = handle_sync_message(message[1:], self.doc)
                if reply is not None:
                    await self.ws.send(reply)
                if message[1] == 1:  # the server's step 2: the initial sync is done
                    self.synced.set()
        except websockets.ConnectionClosed:
            pass
        close = self.ws.close_rcvd
        if close is not None:
            self.closed = (close.code, close.reason)

    async def disconnect(self):
        for task in self._tasks:
            task.cancel()
        if self.ws is not None:
            await asyncio.wait_for(self.ws.close(), WAIT)
        self.ws = None

    def cards(self):
        return self.doc.get("cards", type=Map)

    def titles(self):
        return sorted(str(card["title"]) for card in self.cards().values())

    def first_stage(self):
        stages = self.doc.get("stages", type=Map)
        return min(stages.items(), key=lambda item: (str(item[1]["pos"]), item[0]))[0]

    def add_card(self, title, pos="a0"):
        card_id = str(uuid.uuid4())
        with self.doc.transaction():
            self.cards()[card_id] = Map(
                {
                    "title": title,
                    "stage": self.first_stage(),
                    "pos": pos,
                    "amount": 0,
                    "currency": "USD",
                    "responsible": "user-pycrdt",
                    "client": "Pycrdt Ltd",
                    "createdAt": int(time.time() * 1000),
                    "fields": Map(),
                }
            )
        return card_id


async def wait_until(condition, what, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class PycrdtInterop(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        # The test loop runs in debug mode; sending a board of several MB is not slow here.
        asyncio.get_running_loop().slow_callback_duration = 30
        self.server = Funnel()
        self.clients = []

    async def asyncTearDown(self):
        for client in self.clients:
            await client.disconnect()
        self.server.stop()

    async def client(self, board, doc=None, timeout=WAIT):
        client = PycrdtClient(self.server.url(board), doc)
        self.clients.append(client)
        await client.connect(timeout)
        return client

    async def test_joins_edits_and_sees_the_others_edits(self):
        board = f"pycrdt-{uuid.uuid4()}"
        ann = await self.client(board)
        self.assertEqual(len(ann.doc.get("stages", type=Map)), 7, "the default deal stages")
        bob = await self.client(board)
        ann.add_card("from ann")
        await wait_until(lambda: bob.titles() == ["from ann"], "bob to see ann's card")
        bob.add_card("from bob", pos="a1")
        await wait_until(lambda: ann.titles() == ["from ann", "from bob"], "ann to see bob's card")
        self.assertIsNone(ann.closed)
        self.assertIsNone(bob.closed)

    async def test_echoing_everything_on_a_board_of_several_mb_is_not_closed(self):
        board = f"pycrdt-{uuid.uuid4()}"
        writer = await self.client(board)
        # About 10 MB of small cards (2 KB titles), in 50 transactions: its join answer is
        # well over a thousand pieces, more than --message-burst (1,000), and the joiner sends
        # each back.
        title = "z" * 2_000
        for batch in range(50):
            with writer.doc.transaction():
                for i in range(100):
                    writer.add_card(f"{batch:02}-{i:02} {title}", pos=f"a{batch:02}{i:02}")
            await asyncio.sleep(0.05)
        # A shared machine can take a while to send and apply 10 MB: a longer bound here.
        reader = await self.client(board, timeout=60)
        await wait_until(lambda: len(reader.titles()) == 5000, "the whole board", timeout=60)
        # The joiner has sent back every piece of the board it received; give the server time
        # to judge them all, then it must still be open and served.
        await wait_until(lambda: reader.sent_updates > 1000, "the joiner's echoes", timeout=60)
        writer.add_card("after the echoes", pos="b0")
        await wait_until(lambda: "after the echoes" in reader.titles(), "a card after the echoes")
        self.assertIsNone(reader.closed, reader.closed)
        self.assertIsNone(writer.closed, writer.closed)

    async def test_reconnects_with_offline_edits(self):
        board = f"pycrdt-{uuid.uuid4()}"
        ann = await self.client(board)
        bob = await self.client(board)
        ann.add_card("online")
        await wait_until(lambda: bob.titles() == ["online"], "bob to see the first card")
        await ann.disconnect()
        ann.add_card("offline", pos="a1")
        bob.add_card("while ann was away", pos="a2")
        await ann.connect()
        expected = ["offline", "online", "while ann was away"]
        await wait_until(lambda: ann.titles() == expected, "ann to get bob's card")
        await wait_until(lambda: bob.titles() == expected, "bob to get ann's offline card")
        fresh = await self.client(board)
        self.assertEqual(fresh.titles(), expected)
        self.assertIsNone(ann.closed)


if __name__ == "__main__":
    unittest.main()
