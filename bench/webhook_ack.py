"""WeChat webhook acknowledgement benchmark.

Fires signed (and, with an AES key, encrypted) WeChat text pushes at a running gateway and at a bare
FastAPI endpoint it starts itself in a subprocess: maximum throughput of each in alternating rounds
(the median ratio is the figure), then the acknowledgement latency at a fixed rate (p50/p99).
Compare throughput against `hotline serve --no-workers`: workers behind the gateway would still be
busy with its pushes during the bare endpoint's next round.

    HOTLINE_WECHAT_OA_TOKEN=… HOTLINE_WECHAT_OA_AES_KEY=… HOTLINE_WECHAT_OA_APPID=wx… \\
        .venv/bin/python bench/webhook_ack.py http://127.0.0.1:8000 --rate 500 --duration 10

Targets (issue 5): p99 ≤ 20 ms at 500 requests/s, and at least 40% of the bare endpoint's throughput.
Every push has a fresh MsgId, so each one is really verified, decrypted, parsed and enqueued.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from channels.wechat.crypto import sign_push  # noqa: E402

BARE_APP = """
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

app = FastAPI()

@app.post("/channels/wechat/{account}", response_class=PlainTextResponse)
async def push(account: str, request: Request) -> PlainTextResponse:
    await request.body()
    return PlainTextResponse("success")
"""


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed: float = 0.0
    kinds: dict[str, int] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.latencies)

    def pct(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    @property
    def rate(self) -> float:
        return self.count / self.elapsed if self.elapsed else 0.0


class Pushes:
    """Pre-signed pushes (signing and AES cost nothing during the measurement)."""

    def __init__(self, token: str, aes_key: str, appid: str, n: int) -> None:
        base = time.time_ns() // 1000
        now = int(time.time())
        self.items: list[tuple[dict[str, str], bytes]] = []
        for i in range(n):
            body = (
                "<xml><ToUserName><![CDATA[gh_bench]]></ToUserName>"
                f"<FromUserName><![CDATA[oBench{i % 1000:04d}]]></FromUserName><CreateTime>{now}</CreateTime>"
                "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[小区门口的路灯坏了，晚上很黑]]></Content>"
                f"<MsgId>{base + i}</MsgId></xml>"
            )
            query, data = sign_push(token, body, aes_key=aes_key, appid=appid, timestamp=now)
            self.items.append((query, data.encode()))
        self.i = 0

    def next(self) -> tuple[dict[str, str], bytes]:
        item = self.items[self.i % len(self.items)]
        self.i += 1
        return item


async def one(session: aiohttp.ClientSession, url: str, pushes: Pushes, result: Result) -> None:
    query, body = pushes.next()
    started = time.perf_counter()
    try:
        async with session.post(url, params=query, data=body, headers={"content-type": "text/xml"}) as resp:
            text = await resp.text()
            ok = resp.status == 200 and text == "success"
    except (aiohttp.ClientError, TimeoutError) as exc:
        ok, text = False, type(exc).__name__
    if ok:
        result.latencies.append(time.perf_counter() - started)
    else:
        result.errors += 1
        result.kinds[text[:40]] = result.kinds.get(text[:40], 0) + 1


async def fixed_rate(session: aiohttp.ClientSession, url: str, pushes: Pushes, rate: float, duration: float) -> Result:
    """Open loop: a request every 1/rate s whatever the answers do (no coordinated omission)."""
    result = Result()
    tasks = []
    total = int(rate * duration)
    t0 = time.perf_counter()
    for i in range(total):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(session, url, pushes, result)))
    await asyncio.gather(*tasks)
    result.elapsed = time.perf_counter() - t0
    return result


async def max_throughput(session: aiohttp.ClientSession, url: str, pushes: Pushes, concurrency: int,
                         duration: float) -> Result:
    """Closed loop: ``concurrency`` clients sending back to back for ``duration`` seconds."""
    result = Result()
    stop = time.perf_counter() + duration

    async def client() -> None:
        while time.perf_counter() < stop:
            await one(session, url, pushes, result)

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - t0
    return result


async def burst(url: str, args: argparse.Namespace, pushes: Pushes) -> Result:
    connector = aiohttp.TCPConnector(limit=max(args.concurrency, 200))
    async with aiohttp.ClientSession(connector=connector) as session:
        await max_throughput(session, url, pushes, 8, 0.5)  # warm up
        return await max_throughput(session, url, pushes, args.concurrency, args.throughput_duration)


async def steady(label: str, url: str, args: argparse.Namespace, pushes: Pushes) -> Result:
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(connector=connector) as session:
        await max_throughput(session, url, pushes, 8, 0.5)  # warm up
        result = await fixed_rate(session, url, pushes, args.rate, args.duration)
    print(
        f"{label:<8} at {args.rate:.0f}/s: sent {result.count + result.errors} in {result.elapsed:.1f}s, "
        f"errors {result.errors}, p50 {result.pct(50):.1f} ms, p99 {result.pct(99):.1f} ms, "
        f"max {max(result.latencies, default=0) * 1000:.1f} ms",
        flush=True,
    )
    report_errors(result)
    return result


def report_errors(result: Result) -> None:
    for kind, n in result.kinds.items():
        print(f"  error {kind!r}: {n}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_bare(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    (workdir / "bare_app.py").write_text(BARE_APP)
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bare_app:app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning", "--no-access-log", "--app-dir", str(workdir)],
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the bare FastAPI endpoint did not start")


def wait_healthy(base: str) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"the gateway at {base} is not healthy")


def main() -> None:
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", nargs="?", default="http://127.0.0.1:8000", help="the running gateway")
    parser.add_argument("--account", default="oa")
    parser.add_argument("--token", default=env.get("HOTLINE_WECHAT_OA_TOKEN", ""))
    parser.add_argument("--aes-key", default=env.get("HOTLINE_WECHAT_OA_AES_KEY", ""))
    parser.add_argument("--appid", default=env.get("HOTLINE_WECHAT_OA_APPID", ""))
    parser.add_argument("--rate", type=float, default=500.0, help="requests per second of the fixed-rate phase")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of the fixed-rate phase")
    parser.add_argument("--concurrency", type=int, default=32, help="clients of the max-throughput phase")
    parser.add_argument("--throughput-duration", type=float, default=4.0, help="seconds of each throughput round")
    parser.add_argument("--rounds", type=int, default=5, help="alternating bare/gateway throughput rounds")
    parser.add_argument("--bare-port", type=int, default=0, help="port of the bare endpoint (default: free)")
    args = parser.parse_args()
    if not args.token:
        raise SystemExit("give --token (or HOTLINE_WECHAT_OA_TOKEN); with safe mode also --aes-key and --appid")

    wait_healthy(args.url.rstrip("/"))
    import tempfile

    gateway = f"{args.url.rstrip('/')}/channels/wechat/{args.account}"
    # The gateway gets a fresh MsgId every time (up to 8,000/s); the bare endpoint may see repeats.
    n = int(args.rate * args.duration + 8000 * (args.throughput_duration + 0.5) * args.rounds) + 8000
    pushes = Pushes(args.token, args.aes_key, args.appid, n)
    bare_pushes = Pushes(args.token, args.aes_key, args.appid, 5000)
    port = args.bare_port or free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc = start_bare(port, Path(tmp))
        bare = f"http://127.0.0.1:{port}/channels/wechat/{args.account}"
        try:
            # Throughput: bare and gateway in alternating rounds, so a machine whose speed drifts
            # (shared cores, frequency) affects both alike; the median ratio is the figure.
            ratios, gw_rates, bare_rates, gw_errors = [], [], [], 0
            for r in range(1, args.rounds + 1):
                b = asyncio.run(burst(bare, args, bare_pushes))
                g = asyncio.run(burst(gateway, args, pushes))
                ratios.append(g.rate / b.rate if b.rate else float("nan"))
                gw_rates.append(g.rate)
                bare_rates.append(b.rate)
                gw_errors += g.errors
                print(f"round {r}: max throughput ({args.concurrency} clients) bare {b.rate:.0f}/s "
                      f"(p99 {b.pct(99):.1f} ms), gateway {g.rate:.0f}/s (p99 {g.pct(99):.1f} ms, "
                      f"errors {g.errors}) = {ratios[-1]:.0%}", flush=True)
                report_errors(g)
            # Latency at a fixed rate; the gateway last: workers behind it may stay busy afterwards.
            asyncio.run(steady("bare", bare, args, bare_pushes))
        finally:
            proc.terminate()
            proc.wait(10)
    gw_steady = asyncio.run(steady("gateway", gateway, args, pushes))

    ratio = statistics.median(ratios)
    p99 = gw_steady.pct(99)
    print(f"\nack p99 at {args.rate:.0f}/s: {p99:.1f} ms (target ≤ 20 ms) {'OK' if p99 <= 20 else 'MISSED'}")
    print(f"throughput: gateway {statistics.median(gw_rates):.0f}/s vs bare {statistics.median(bare_rates):.0f}/s "
          f"(medians of {args.rounds} rounds); median ratio {ratio:.0%}, range {min(ratios):.0%}–{max(ratios):.0%} "
          f"(target ≥ 40%) {'OK' if ratio >= 0.4 else 'MISSED'}")
    if gw_steady.latencies:
        print(f"gateway latency mean {statistics.mean(gw_steady.latencies) * 1000:.1f} ms, "
              f"errors {gw_steady.errors + gw_errors}")


if __name__ == "__main__":
    main()
