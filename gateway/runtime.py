"""Everything one gateway process holds: connections, channels, NLU, ticket client, workers.

Built in two steps: ``Runtime(settings)`` constructs the channels (so the app can mount their
routes), ``await start()`` connects to Redis and the ledger and starts the workers: on a thread with
an event loop of their own in `hotline serve`, inline in `hotline worker`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import threading
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

import httpx
import structlog
from redis.exceptions import RedisError

from bot.dialogue import Bot
from bot.texts import status_name
from channels import registry
from channels.base import Channel, ChannelContext, InboundMessage, Then
from config.settings import Settings
from gateway import metrics
from gateway.errors import StartupError
from gateway.knowledge import KnowledgeSource
from gateway.redis_conn import RedisHandle, connect
from gateway.streams import SideWrite, Streams
from nlu import get_backend
from nlu.base import NluBackend
from ticket_client import deadlines, make_client
from ticket_client.base import PlatformUnavailable, TicketClient

log = structlog.get_logger(__name__)


def run_loop(main: Coroutine[Any, Any, Any]) -> Any:
    """Run ``main`` on uvloop where it is installed (Linux, macOS): its C transports make a
    webhook's socket reads and writes several times cheaper than asyncio's own loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ctx = ChannelContext(redis=None, enqueue=self.enqueue, settings=settings)
        self.channels: list[Channel] = [c for module in registry.MODULES for c in module.build(self.ctx)]
        self.redis_handle: RedisHandle | None = None
        self.streams: Streams | None = None
        self.tickets: TicketClient | None = None
        self.nlu: NluBackend | None = None
        self.bot: Bot | None = None
        self.knowledge = KnowledgeSource(settings)  # the file's entries with the console's edits
        self.stop_event = asyncio.Event()
        self.status_kick = asyncio.Event()
        self.tasks: list[asyncio.Task[Any]] = []
        self.consumer_prefix = f"{socket.gethostname()}-{os.getpid()}"
        self.started = False
        self.worker_thread: WorkerThread | None = None

    @property
    def redis(self) -> Any:
        assert self.redis_handle is not None, "runtime not started"
        return self.redis_handle.client

    def channel_for(self, channel: str) -> Channel | None:
        return next((c for c in self.channels if c.handles(channel)), None)

    async def enqueue(
        self, msg: InboundMessage, side: tuple[str, str, int, int] | None = None, then: Then | None = None
    ) -> bool:
        """What channel routes call: de-duplicate and append to the inbound stream, with any shared
        location in the ticket platform's coordinate system (``HOTLINE_MAP_DATUM``)."""
        assert self.streams is not None
        if msg.location is not None and msg.location.datum != self.settings.map_datum:
            msg.location = msg.location.in_datum(self.settings.map_datum)
        accepted = await self.streams.enqueue(msg, SideWrite(*side) if side else None, then)
        (metrics.MESSAGES_IN if accepted else metrics.DUPLICATES).labels(msg.channel).inc()
        return accepted

    async def start(self, workers: bool | None = None, *, inline_workers: bool = False) -> None:
        """Connect, migrate, load the NLU, start channels (and workers); raises StartupError.

        Workers run on a thread of their own with its own event loop (``WorkerThread``), so a
        webhook's acknowledgement never queues behind bot turns and ticket filings on one loop;
        ``inline_workers`` runs them on this loop instead (a dedicated `hotline worker` process).
        """
        if self.started:
            return
        self.started = True
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.redis_handle = await connect(settings)
        self.ctx.redis = self.redis_handle.client
        self.ctx.http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0))
        self.streams = Streams(self.redis_handle.client, settings.dedupe_ttl_s)
        await self.streams.ensure_groups()
        self.ctx.publish = self.streams.publish
        await self.knowledge.start(self.redis_handle.client)
        self.tickets = await _ledger(settings)
        self.ctx.list_tickets = self.list_tickets
        run_workers = workers if workers is not None else settings.embedded_workers
        if inline_workers or not run_workers:
            await self.load_nlu()  # the worker thread loads its own; the web side needs none
        for channel in self.channels:
            await channel.start()
        if run_workers and inline_workers:
            self.start_workers()
        elif run_workers:
            # The GIL passes between the two loops every switch interval: 5 ms by default is a
            # webhook's whole budget, so hand it over sooner.
            sys.setswitchinterval(0.0005)
            self.worker_thread = WorkerThread(settings)
            self.worker_thread.start()
            if not await asyncio.to_thread(self.worker_thread.ready.wait, 300):
                raise StartupError("the workers did not start within 300 s")
            if self.worker_thread.error is not None:
                raise self.worker_thread.error
        log.info(
            "workers_started" if inline_workers else "gateway_started",
            redis="embedded" if settings.redis_embedded else "external",
            channels=[c.name for c in self.channels],
            workers="thread" if self.worker_thread else ("inline" if self.tasks else "none"),
        )

    async def load_nlu(self) -> None:
        if self.nlu is not None:
            return
        try:
            self.nlu = await asyncio.to_thread(get_backend, self.settings)
        except Exception as exc:  # a missing or unreadable model: say how to fix it, no traceback
            raise StartupError(f"cannot load the NLU ({self.settings.nlu_backend}): {exc}") from exc
        assert self.tickets is not None
        settings = self.settings
        self.bot = Bot(self.tickets, self.nlu, knowledge=self.knowledge.current,
                       due=lambda ticket: deadlines.due_at(ticket, settings), popular=self.knowledge.popular,
                       supplement_window=timedelta(days=settings.supplement_days),
                       urge_quiet=timedelta(hours=settings.urge_quiet_hours),
                       # open311: a withdrawal is the platform's (the console's 撤单 says so too)
                       self_withdraw=settings.self_withdraw and settings.ticket_backend == "local",
                       # open311: the platform decides whether a ticket is worked again
                       reopen_unsolved=settings.reopen_unsolved and settings.ticket_backend == "local")

    async def list_tickets(self, conversation_key: str) -> list[dict[str, Any]]:
        """A citizen's own tickets for channel pages (the mini-program, the widget)."""
        assert self.tickets is not None
        return [
            {
                "ticket_id": t.ticket_id,
                "title": t.title,
                "status": t.status,
                "status_name": status_name(t.status, t.withdrawn_at is not None),
                "created_at": t.created_at.isoformat(),
                "updated_at": t.updated_at.isoformat(),
            }
            for t in await self.tickets.list_for(conversation_key, limit=20)
        ]

    def kick_status(self) -> None:
        """A status changed: let the poller look now rather than at its next tick."""
        self.status_kick.set()
        if self.worker_thread is not None:
            self.worker_thread.kick()

    def start_workers(self, concurrency: int | None = None) -> None:
        """Worker loops on this event loop (call ``load_nlu`` first, as ``start`` does)."""
        from gateway.workers import worker_tasks

        if self.stop_event.is_set():
            self.stop_event = asyncio.Event()
        self.tasks.extend(worker_tasks(self, concurrency or self.settings.worker_concurrency))

    async def stop_workers(self, grace_s: float = 5.0) -> None:
        """Let the loops finish the entry in hand (cancelling mid-transaction would leave a
        database connection in doubt), then cancel what is still running after ``grace_s``."""
        self.stop_event.set()
        self.status_kick.set()
        if self.tasks:
            _, late = await asyncio.wait(self.tasks, timeout=grace_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()

    async def stop(self) -> None:
        await self.stop_workers()
        if self.worker_thread is not None:
            await asyncio.to_thread(self.worker_thread.stop)
            self.worker_thread = None
        for channel in self.channels:
            await channel.stop()
        if self.ctx.http is not None:
            await self.ctx.http.aclose()
        if self.tickets is not None:
            await self.tickets.close()
        await self.knowledge.stop()
        if self.redis_handle is not None:
            await self.redis_handle.close()

    async def health(self) -> dict[str, str]:
        result = {"redis": "ok", "database": "ok"}
        try:
            await self.redis.ping()
        except (RedisError, OSError, AssertionError) as exc:
            result["redis"] = f"error: {exc}"
        try:
            assert self.tickets is not None
            await self.tickets.ping()
        except (PlatformUnavailable, AssertionError) as exc:
            result["database"] = f"error: {exc}"
        return result


class WorkerThread(threading.Thread):
    """The workers of `hotline serve`: a Runtime of their own on a loop of their own."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(name="hotline-workers", daemon=True)
        self.settings = settings
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.runtime: Runtime | None = None
        self._done: asyncio.Event | None = None

    def run(self) -> None:
        run_loop(self._main())

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._done = asyncio.Event()
        self.runtime = Runtime(self.settings)
        self.runtime.consumer_prefix += "-w"
        try:
            await self.runtime.start(workers=True, inline_workers=True)
        except BaseException as exc:  # handed to the starting thread, which reports it
            self.error = exc
            self.ready.set()
            await self.runtime.stop()
            return
        self.ready.set()
        await self._done.wait()
        await self.runtime.stop()

    def kick(self) -> None:
        if self.loop is not None and self.runtime is not None:
            self.loop.call_soon_threadsafe(self.runtime.status_kick.set)

    def stop(self) -> None:
        if self.loop is not None and self._done is not None and self.is_alive():
            self.loop.call_soon_threadsafe(self._done.set)
        self.join(timeout=30)


async def _ledger(settings: Settings) -> TicketClient:
    """Migrate and open the ticket ledger (and reach the ticket platform of the open311 backend),
    or fail naming the setting to fix."""
    from ticket_client import migrate

    where = f"HOTLINE_DATABASE_URL={settings.database_url or '(embedded SQLite)'}"
    try:
        await migrate(settings.effective_database_url)
    except (PlatformUnavailable, OSError) as exc:
        raise StartupError(f"cannot open the ticket ledger at {where}: {exc}") from exc
    except Exception as exc:  # alembic/driver errors of every kind: still name the setting
        raise StartupError(f"cannot migrate the ticket ledger at {where}: {exc}") from exc
    try:
        client = make_client(settings)
    except ValueError as exc:  # the backend's settings: the message names the variable
        raise StartupError(str(exc)) from exc
    try:
        await client.ping()
    except Exception as exc:  # unreachable, misconfigured, or a driver's own error: name the setting
        await client.close()
        if settings.ticket_backend == "local":
            raise StartupError(f"cannot open the ticket ledger at {where}: {exc}") from exc
        raise StartupError(f"cannot start the {settings.ticket_backend} ticket backend: {exc}") from exc
    return client
