"""The knowledge base the bot answers from: the file's entries with the console's edits applied.

Supervisors (knowledge editors) change answers in the console every day; IT keeps the file
(``HOTLINE_KNOWLEDGE_FILE``). The console's edits live in Redis, which every gateway and worker
process shares (they need not share a file system): a hash, entry id → the entry as edited or a
tombstone (停用), and a version counter bumped in the same transaction. Each process keeps its
effective base in a :class:`KnowledgeSource`, rebuilt when the version or the file changed: a
loop looks every :data:`REFRESH_S`, and an edit made in this process is in use in all of this
process's sources (the web side's and the worker thread's) before the save is answered.

Merge rules (:func:`merge`): an edit replaces the file's entry of its id, in place, or is added
after the file's entries (oldest first) when the file has no such id; a tombstone removes the
file's entry. The file itself is never written: ``GET /api/console/knowledge.yml`` exports the
result for IT to fold back. Edits and a changed file that no longer hold together (the file
gained a phrasing a console entry has too) are refused like an invalid file: the last good base
stays in use, the error is logged and shown in the console.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import structlog
import yaml
from redis.exceptions import RedisError, WatchError

from gateway import keys
from gateway.errors import BadInput, Conflict, NotFound, ServiceUnavailable
from nlu.knowledge import Entry, KnowledgeBase, knowledge_for, near_duplicates, problems

if TYPE_CHECKING:
    from config.settings import Settings

log = structlog.get_logger(__name__)

REFRESH_S = 2.0  # how often a process looks for other processes' edits and a changed file
SIBLINGS_WAIT_S = 2.0  # a save waits at most this long for this process's other sources to use it
STOP_GRACE_S = 2.0  # a refresh still running at shutdown (Redis unreachable) is then cancelled

Origin = Literal["file", "console", "edited", "disabled"]
_WHERE = re.compile(r"^第\d+条（id: ([^）]*)）：")  # problems()' "第3条（id: x）：" → "x："


@dataclass(frozen=True)
class Edit:
    """The console's change to one entry: the entry as edited, or None for a tombstone (停用)."""

    entry: Entry | None
    by: str  # the supervisor
    at: float  # epoch seconds

    def dumps(self) -> str:
        entry = self.entry.model_dump(mode="json") if self.entry is not None else None
        return json.dumps({"entry": entry, "by": self.by, "at": self.at}, ensure_ascii=False)

    @classmethod
    def loads(cls, raw: str) -> Edit:
        """Raises ValueError (a pydantic ValidationError among them) for what is not an edit."""
        data = json.loads(raw)
        entry = data.get("entry")
        return cls(Entry.model_validate(entry) if entry is not None else None, str(data.get("by", "")),
                   float(data.get("at", 0)))


@dataclass(frozen=True)
class Row:
    """One entry as the console lists it, with where it comes from."""

    entry: Entry
    origin: Origin  # file; console (added there); edited (a file entry overridden); disabled (停用)
    edit: Edit | None  # the console's, for every origin but file


@dataclass(frozen=True)
class Saved:
    row: Row
    created: bool  # a new id: neither the file nor the console had it
    changed: list[str]  # the keys that differ from the version replaced (all of them when created)
    warnings: list[str]  # advice: no 相似问, phrasings another entry would also answer


def merge(base: Sequence[Entry], edits: Mapping[str, Edit]) -> list[Row]:
    """Every entry with its origin: the file's order, then the console's additions (oldest first),
    then the disabled file entries (not in the effective base, listed so they can be re-enabled).
    A tombstone of an id the file no longer has is ignored."""
    rows: list[Row] = []
    disabled: list[Row] = []
    for entry in base:
        edit = edits.get(entry.id)
        if edit is None:
            rows.append(Row(entry, "file", None))
        elif edit.entry is None:
            disabled.append(Row(entry, "disabled", edit))
        else:
            rows.append(Row(edit.entry, "edited", edit))
    in_base = {e.id for e in base}
    added = sorted((e for i, e in edits.items() if i not in in_base and e.entry is not None), key=lambda e: e.at)
    rows += [Row(e.entry, "console", e) for e in added if e.entry is not None]
    return rows + disabled


def effective(rows: Sequence[Row]) -> list[Entry]:
    return [r.entry for r in rows if r.origin != "disabled"]


def _plain(message: str) -> str:
    return _WHERE.sub(r"\1：", message)


def _checked(
    entries: list[Entry], threshold: float, entry_id: str | None = None
) -> tuple[KnowledgeBase | None, list[str], list[str]]:
    """(the base, errors, warnings about ``entry_id``). Slow for a large base: run it in a thread."""
    found = problems(entries)
    errors = [_plain(p.message) for p in found if p.level == "error"]
    if errors:
        return None, errors, []
    kb = KnowledgeBase(entries, threshold, checked=True) if entries else None
    warnings: list[str] = []
    if kb is not None and entry_id is not None:
        index = next(i for i, e in enumerate(entries) if e.id == entry_id)
        warnings = [_plain(p.message) for p in found if p.level == "warning" and p.index == index]
        warnings += [p.message for p in near_duplicates(kb, ids={entry_id})]
    return kb, errors, warnings


def to_yaml(entries: Sequence[Entry], header: str = "") -> str:
    """The entries in the file's format (config/knowledge.yml), ``header`` as comment lines on top."""
    parts = [f"# {line}".rstrip() + "\n" for line in header.splitlines()]
    for entry in entries:
        item: dict[str, Any] = {"id": entry.id, "question": entry.question}
        if entry.also:
            item["also"] = list(entry.also)
        item["answer"] = entry.answer
        if entry.source:
            item["source"] = entry.source
        if entry.updated:
            item["updated"] = entry.updated
        if entry.keywords:
            item["keywords"] = list(entry.keywords)
        dumped = yaml.safe_dump([item], allow_unicode=True, sort_keys=False, width=1_000_000)
        parts.append(("\n" if parts else "") + dumped)
    return "".join(parts)


# Every source of this process, so an edit made through one refreshes the others at once (the web
# side's and the worker thread's runtime each have one, on event loops of their own).
_sources: weakref.WeakSet[KnowledgeSource] = weakref.WeakSet()
_sources_lock = threading.Lock()


async def _wake_others(source: KnowledgeSource, version: int) -> None:
    """Have this process's other sources (the worker thread's: the bot's) take ``version`` now,
    and wait until they have, so that a saved edit is what the bot answers with here at once."""
    with _sources_lock:
        others = [s for s in _sources if s is not source]
    for other in others:
        other.wake()
    for other in others:  # each on a loop of its own: wait on a thread, not on this loop
        await asyncio.to_thread(other.wait_for, version, SIBLINGS_WAIT_S)


@dataclass(frozen=True)
class _Change:
    kind: Literal["set", "drop", "none"]
    edit: Edit | None = None


class KnowledgeSource:
    """The process's effective knowledge base, and the console's edits of it."""

    def __init__(self, settings: Settings, interval_s: float = REFRESH_S) -> None:
        self.settings = settings
        self.interval_s = interval_s
        self.threshold = float(settings.knowledge_threshold)
        self.error = ""  # why the console's edits are not in use now ("" when they are)
        self._redis: Any = None
        self._kb: KnowledgeBase | None = None
        self._version = -1  # of the edits in use; -1 before the first refresh
        self._base: KnowledgeBase | None = None  # the file's, as merged
        self._failed: tuple[int, int] | None = None  # (version, id(base)) last refused: logged once
        self._lock = asyncio.Lock()
        self._installed = threading.Condition()  # notified with each version taken into use
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    # --- the bot's side ---------------------------------------------------------------------------
    def current(self) -> KnowledgeBase | None:
        """What the bot answers from now: no I/O, called in every bot turn. Before the first
        refresh, the file's base alone."""
        if self._version < 0:
            return knowledge_for(self.settings)
        return self._kb

    async def start(self, redis: Any) -> None:
        """Read the edits once and keep them fresh in the background until :meth:`stop`."""
        self._redis = redis
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stopping = False
        try:
            await self.refresh()
        except (RedisError, OSError) as exc:  # Redis answered a moment ago: the loop retries
            log.warning("knowledge_refresh_failed", error=str(exc))
        self._task = asyncio.create_task(self._run(), name="knowledge-refresh")
        with _sources_lock:
            _sources.add(self)

    async def stop(self) -> None:
        with _sources_lock:
            _sources.discard(self)
        self._stopping = True
        task, self._task = self._task, None
        if task is None:
            return
        if self._wake is not None:
            self._wake.set()
        _, late = await asyncio.wait({task}, timeout=STOP_GRACE_S)
        for t in late:
            t.cancel()
        await asyncio.gather(task, return_exceptions=True)

    def wake(self) -> None:
        """Refresh now rather than at the next tick; callable from any thread."""
        loop, event = self._loop, self._wake
        if loop is None or event is None:
            return
        with contextlib.suppress(RuntimeError):  # its loop has closed
            loop.call_soon_threadsafe(event.set)

    async def _run(self) -> None:
        assert self._wake is not None
        failing = False
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval_s)
            self._wake.clear()
            if self._stopping:
                break
            try:
                await self.refresh()
            except (RedisError, OSError) as exc:  # keep answering from the last base meanwhile
                if not failing:
                    kept = len(self._kb.entries) if self._kb is not None else 0
                    log.warning("knowledge_refresh_failed", error=str(exc), kept_entries=kept)
                failing = True
                continue
            if failing:
                log.info("knowledge_refresh_recovered")
                failing = False

    async def refresh(self) -> None:
        """Rebuild the effective base if the edits' version or the file's base changed (raises
        RedisError when Redis cannot be reached)."""
        base = await asyncio.to_thread(knowledge_for, self.settings)
        async with self._lock:
            version = int(await self.redis.get(keys.KNOWLEDGE_VERSION) or 0)
            if version == self._version and base is self._base:
                return
            async with self.redis.pipeline(transaction=True) as pipe:  # the version and its edits
                pipe.get(keys.KNOWLEDGE_VERSION)
                pipe.hgetall(keys.KNOWLEDGE_EDITS)
                raw_version, raw = await pipe.execute()
            version = int(raw_version or 0)
            edits = self._parse(raw, version)
            if not edits:
                self._install(version, base, base)
                return
            entries = effective(merge(base.entries if base else [], edits))
            kb, errors, _ = await asyncio.to_thread(_checked, entries, self.threshold)
            if errors:
                self._refuse(version, base, errors)
                return
            self._install(version, base, kb)

    def _install(self, version: int, base: KnowledgeBase | None, kb: KnowledgeBase | None) -> None:
        if self._version >= 0 and (version, base) != (self._version, self._base):
            log.info("knowledge_merged", version=version, entries=len(kb.entries) if kb else 0)
        with self._installed:
            self._kb, self._version, self._base, self.error = kb, version, base, ""
            self._installed.notify_all()

    def _refuse(self, version: int, base: KnowledgeBase | None, errors: list[str]) -> None:
        """Edits that do not hold together with the file: the last good base stays (the file's
        alone if there was none), as an invalid file does in ``knowledge_for``."""
        kept = self._kb if self._version >= 0 else base
        if self._failed != (version, id(base)):
            log.error("knowledge_edits_invalid", version=version, errors=errors,
                      kept_entries=len(kept.entries) if kept else 0)
        self._failed = (version, id(base))
        with self._installed:
            self._kb, self._version, self._base = kept, version, base
            self.error = "；".join(errors)
            self._installed.notify_all()

    def _parse(self, raw: Mapping[str, str], version: int) -> dict[str, Edit]:
        edits: dict[str, Edit] = {}
        for entry_id, value in raw.items():
            try:
                edit = Edit.loads(value)
            except (ValueError, TypeError, AttributeError) as exc:  # written by hand, or by an older rule
                log.error("knowledge_edit_unreadable", id=entry_id, version=version, error=str(exc)[:300])
                continue
            if edit.entry is None or edit.entry.id == entry_id:
                edits[entry_id] = edit
        return edits

    def wait_for(self, version: int, timeout: float) -> bool:
        """Block until the edits' ``version`` (or a later one) is in use; callable from any thread."""
        with self._installed:
            return self._installed.wait_for(lambda: self._version >= version, timeout)

    @property
    def redis(self) -> Any:
        assert self._redis is not None, "knowledge source not started"
        return self._redis

    # --- the console's side -----------------------------------------------------------------------
    async def entries(self) -> list[Row]:
        """Every entry as it is now in Redis and the file (the list supervisors edit)."""
        base = await asyncio.to_thread(knowledge_for, self.settings)
        try:
            raw = await self.redis.hgetall(keys.KNOWLEDGE_EDITS)
        except (RedisError, OSError) as exc:
            raise ServiceUnavailable("知识库暂时无法读取，请稍后重试") from exc
        return merge(base.entries if base else [], self._parse(raw, -1))

    async def edit(self, entry: Entry, by: str, *, new: bool = False) -> Saved:
        """Add or replace an entry; ``new`` refuses an id already used (409). An entry that would
        make the base unusable (a phrasing another entry has) is refused with the reason (400)."""
        previous: Entry | None = None
        created = False

        def decide(edits: Mapping[str, Edit], base: Mapping[str, Entry]) -> _Change:
            nonlocal previous, created
            had = edits.get(entry.id)
            if new and (entry.id in base or had is not None):
                raise Conflict(f"编号 {entry.id} 已被使用，请换一个编号（或在列表中打开该条修改）")
            previous = had.entry if had is not None and had.entry is not None else base.get(entry.id)
            created = entry.id not in base and had is None
            return _Change("set", Edit(entry, by, time.time()))

        warnings = await self._write(entry.id, decide, refuse="保存后知识库无法使用")
        changed = [k for k in Entry.model_fields if k not in ("id", "updated")
                   and (previous is None or getattr(previous, k) != getattr(entry, k))]
        row = next(r for r in await self.entries() if r.entry.id == entry.id)
        return Saved(row, created, changed, warnings)

    async def remove(self, entry_id: str, by: str) -> Literal["disabled", "removed"]:
        """停用 a file entry (a tombstone, until restored) or delete one the console added."""
        outcome: Literal["disabled", "removed"] = "disabled"

        def decide(edits: Mapping[str, Edit], base: Mapping[str, Entry]) -> _Change:
            nonlocal outcome
            had = edits.get(entry_id)
            if entry_id in base:
                if had is not None and had.entry is None:
                    return _Change("none")  # already 停用
                return _Change("set", Edit(None, by, time.time()))
            if had is not None and had.entry is not None:
                outcome = "removed"
                return _Change("drop")
            raise NotFound(f"知识库中没有编号为 {entry_id} 的条目")

        await self._write(entry_id, decide, refuse=None)  # fewer entries never conflict
        return outcome

    async def restore(self, entry_id: str, by: str) -> Row:
        """Drop the console's edit or tombstone of a file entry: the file's version again."""

        def decide(edits: Mapping[str, Edit], base: Mapping[str, Entry]) -> _Change:
            if entry_id not in base:
                if entry_id in edits:
                    raise Conflict("该条目是在控制台新增的，没有文件版本可恢复；不再需要时请删除")
                raise NotFound(f"知识库文件中没有编号为 {entry_id} 的条目")
            return _Change("drop") if entry_id in edits else _Change("none")

        await self._write(entry_id, decide, refuse="恢复后知识库无法使用")
        return next(r for r in await self.entries() if r.entry.id == entry_id)

    async def _write(
        self, entry_id: str, decide: Callable[[Mapping[str, Edit], Mapping[str, Entry]], _Change],
        refuse: str | None,
    ) -> list[str]:
        """One edit, checked against the edits it was decided on (WATCH: two supervisors saving at
        once are applied one after the other, each checked), and taken into use here at once.
        ``refuse``: the start of the 400 for an edit that would leave the base unusable (None:
        commit anyway, and keep the last good base as a refresh would). Returns the warnings."""
        base = await asyncio.to_thread(knowledge_for, self.settings)
        by_id = {e.id: e for e in base.entries} if base else {}
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                while True:
                    try:
                        await pipe.watch(keys.KNOWLEDGE_VERSION, keys.KNOWLEDGE_EDITS)
                        edits = self._parse(await pipe.hgetall(keys.KNOWLEDGE_EDITS), -1)
                        change = decide(edits, by_id)
                        if change.kind == "none":
                            await pipe.unwatch()
                            return []
                        trial = dict(edits)
                        if change.edit is not None:
                            trial[entry_id] = change.edit
                        else:
                            trial.pop(entry_id, None)
                        entries = effective(merge(base.entries if base else [], trial))
                        wanted = entry_id if change.edit is not None and change.edit.entry is not None else None
                        kb, errors, warnings = await asyncio.to_thread(_checked, entries, self.threshold, wanted)
                        if errors and refuse is not None:
                            raise BadInput(f"{refuse}：" + "；".join(errors))
                        pipe.multi()
                        if change.edit is not None:
                            pipe.hset(keys.KNOWLEDGE_EDITS, entry_id, change.edit.dumps())
                        else:
                            pipe.hdel(keys.KNOWLEDGE_EDITS, entry_id)
                        pipe.incr(keys.KNOWLEDGE_VERSION)
                        version = int((await pipe.execute())[-1])
                        break
                    except WatchError:
                        continue
        except (RedisError, OSError) as exc:
            raise ServiceUnavailable("知识库暂时无法保存，请稍后重试") from exc
        async with self._lock:
            if version >= self._version:
                if errors:
                    self._refuse(version, base, errors)
                else:
                    self._install(version, base, kb if trial else base)
        await _wake_others(self, version)
        return warnings


def export_header(now: datetime) -> str:
    """The export's header: what the file holds and how to use it (read by the city's IT)."""
    return (
        f"知识库导出：知识库文件的条目加上坐席控制台的修改（新增、修改、停用），{now:%Y-%m-%d %H:%M}（北京时间）\n"
        "先用 `hotline knowledge check 本文件` 检查，再替换 HOTLINE_KNOWLEDGE_FILE 指向的文件；\n"
        "替换后，控制台“知识库”页中标为“已修改”的条目与文件一致，可逐条“恢复为文件版本”清除控制台的修改。"
    )
