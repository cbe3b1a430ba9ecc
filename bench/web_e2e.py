"""Benchmark the web channel end to end: N concurrent conversations, each filing tickets.

Prints throughput and p50/p95/p99 of (a) the POST acknowledgement and (b) the time from the
confirming message to the ticket number arriving in the session's event stream.

    python bench/web_e2e.py                       # spawns an embedded gateway in a temp folder
    python bench/web_e2e.py --url http://127.0.0.1:8000 --conversations 50 --rounds 3

Targets (2 cores, embedded mode): (a) p99 <= 20 ms and (b) p95 <= 300 ms at 50 conversations.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import websockets

DESCRIPTIONS = [
    "A3区联丰路米兰春天小区门口的路灯坏了一个星期了，晚上很黑",
    "K2区书院路在水一方大厦门前的人行道地砖松动了好几块",
    "L4县安坪镇中心小学门口的减速带被压坏了，车辆经过很危险",
    "A7县泉塘街道东六路与黄星大道交叉口的红绿灯不亮",
]


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def spawned_gateway() -> Iterator[str]:
    """Start `hotline serve` in embedded mode in a temporary data folder."""
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        env = {
            **os.environ,
            "HOTLINE_DATA_DIR": data,
            "HOTLINE_PORT": str(port),
            "HOTLINE_WEB_RATE_PER_MINUTE": "100000",
            "HOTLINE_WEB_SESSIONS_PER_ADDRESS_PER_HOUR": "0",  # every citizen comes from this one address
            "HOTLINE_LOG_LEVEL": "WARNING",
        }
        env.pop("HOTLINE_REDIS_URL", None)
        env.pop("HOTLINE_DATABASE_URL", None)
        proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve"], env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            else:
                raise SystemExit("gateway did not start")
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=20)


class Conversation:
    """One citizen: replies arrive over the WebSocket, as in the widget (long-poll with --long-poll)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        acks: list[float],
        to_ticket: list[float],
        long_poll: bool = False,
        think: float = 0.0,
    ) -> None:
        self.think = think
        self.client = client
        self.acks = acks
        self.to_ticket = to_ticket
        self.long_poll = long_poll
        self.cursor = ""
        self.ws: Any = None

    async def start(self) -> None:
        r = await self.client.post("/channels/web/sessions")
        r.raise_for_status()
        body = r.json()
        self.sid, self.headers = body["session_id"], {"Authorization": f"Bearer {body['token']}"}
        if not self.long_poll:
            base = str(self.client.base_url).replace("http", "ws", 1).rstrip("/")
            self.ws = await websockets.connect(f"{base}/channels/web/sessions/{self.sid}/ws?token={body['token']}")

    async def send(self, text: str) -> float:
        t0 = time.perf_counter()
        r = await self.client.post(f"/channels/web/sessions/{self.sid}/messages", json={"text": text}, headers=self.headers)
        self.acks.append((time.perf_counter() - t0) * 1000)
        if r.status_code != 202:
            raise RuntimeError(f"POST answered {r.status_code}: {r.text}")
        return t0

    async def wait_for(self, event_type: str, contains: str = "", timeout: float = 30) -> None:
        if self.ws is not None:
            async with asyncio.timeout(timeout):
                while True:
                    event = json.loads(await self.ws.recv())
                    if event["type"] == event_type and contains in event["text"]:
                        return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = await self.client.get(
                f"/channels/web/sessions/{self.sid}/events",
                params={"after": self.cursor, "wait": 10},
                headers=self.headers,
            )
            if r.status_code != 200:
                raise RuntimeError(f"events answered {r.status_code}: {r.text}")
            body = r.json()
            self.cursor = body["cursor"]
            if any(e["type"] == event_type and contains in e["text"] for e in body["events"]):
                return
        raise TimeoutError(f"no {event_type} event")

    async def run(self, rounds: int, index: int) -> None:
        await self.start()
        try:
            await self._rounds(rounds, index)
        finally:
            if self.ws is not None:
                await self.ws.close()

    async def _rounds(self, rounds: int, index: int) -> None:
        await asyncio.sleep(random.uniform(0, self.think))  # citizens do not all start at once
        for i in range(rounds):
            await self.send(DESCRIPTIONS[(index + i) % len(DESCRIPTIONS)])
            await self.wait_for("reply", "确认")
            await asyncio.sleep(self.think)  # reading the confirmation
            t0 = await self.send("确认")
            await self.wait_for("ticket_filed")
            self.to_ticket.append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(self.think)


async def bench(url: str, conversations: int, rounds: int, long_poll: bool, think: float) -> None:
    acks: list[float] = []
    to_ticket: list[float] = []
    limits = httpx.Limits(max_connections=conversations * 2 + 10, max_keepalive_connections=conversations * 2)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        await Conversation(client, [], [], long_poll).run(1, 0)  # warm up (NLU, connections)
        started = time.perf_counter()
        await asyncio.gather(
            *(Conversation(client, acks, to_ticket, long_poll, think).run(rounds, i) for i in range(conversations))
        )
        elapsed = time.perf_counter() - started
    print(f"gateway: {url}")
    print(f"conversations: {conversations} concurrent, {rounds} tickets each, {elapsed:.2f} s, "
          f"replies by {'long-poll' if long_poll else 'WebSocket'}, think time {think:g} s")
    print(f"throughput: {len(acks) / elapsed:.1f} messages/s acknowledged, {len(to_ticket) / elapsed:.1f} tickets/s")
    print(
        f"(a) POST acknowledgement ms: p50 {pct(acks, 50):.2f}  p95 {pct(acks, 95):.2f}  "
        f"p99 {pct(acks, 99):.2f}  mean {statistics.mean(acks):.2f}  (n={len(acks)}; target p99 <= 20)"
    )
    print(
        f"(b) message -> ticket number ms: p50 {pct(to_ticket, 50):.1f}  p95 {pct(to_ticket, 95):.1f}  "
        f"p99 {pct(to_ticket, 99):.1f}  (n={len(to_ticket)}; target p95 <= 300)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running gateway; default: spawn an embedded one")
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--long-poll", action="store_true", help="receive replies by long-poll, not WebSocket")
    parser.add_argument(
        "--think", type=float, default=2.0,
        help="seconds a citizen takes to read a reply before answering (0 = flood: measures capacity)",
    )
    args = parser.parse_args()
    run = (args.conversations, args.rounds, args.long_poll, args.think)
    if args.url:
        asyncio.run(bench(args.url, *run))
    else:
        with spawned_gateway() as url:
            asyncio.run(bench(url, *run))


if __name__ == "__main__":
    main()
