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
result for IT to fold back. Once IT has, an edit equal to the file's entry (and a tombstone of an
entry the file no longer has) is *folded* (已并入文件): it changes nothing, and
:meth:`KnowledgeSource.clear_folded` removes exactly those. Edits and a changed file that no longer
hold together (the file gained a phrasing a console entry has too) are refused like an invalid
file: the last good base stays in use, the error is logged and shown in the console.

``HOTLINE_KNOWLEDGE_FILE`` empty turns the knowledge base off entirely: the bot answers nothing
from it, the console's entries included (they stay in Redis, and apply again once it is turned
on), and the console neither searches nor edits it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import structlog
import yaml
from redis.exceptions import RedisError, WatchError

from config.workdays import BEIJING
from gateway import keys
from gateway.errors import BadInput, Conflict, NotFound, ServiceUnavailable
from nlu.knowledge import Entry, KnowledgeBase, knowledge_for, knowledge_state, near_duplicates, problems

if TYPE_CHECKING:
    from config.settings import Settings

log = structlog.get_logger(__name__)

REFRESH_S = 2.0  # how often a process looks for other processes' edits and a changed file
USAGE_DAYS = 30  # the 班长视图's 知识库答复, and the days 常见问题 is ranked over
RANK_S = 600.0  # how often a process ranks the entries by use again (常见问题's order)
SIBLINGS_WAIT_S = 2.0  # a save waits at most this long for this process's other sources to use it
STOP_GRACE_S = 2.0  # a refresh still running at shutdown (Redis unreachable) is then cancelled

Origin = Literal["file", "console", "edited", "disabled"]
_WHERE = re.compile(r"^第\d+条（id: ([^）]*)）：")  # problems()' "第3条（id: x）：" → "x："
# what an edit changes: every key but the id and ``updated`` (a stamp the console sets on each save)
CONTENT = tuple(k for k in Entry.model_fields if k not in ("id", "updated"))
OFF = "知识库已关闭（HOTLINE_KNOWLEDGE_FILE 为空）"
OFF_NO_EDIT = OFF + "，不能修改；控制台原有的修改仍保留，信息部门重新开启知识库后继续生效"


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
    # the edit is in the file already (an edited entry equal to the file's, or a 停用 of an entry
    # the file no longer has): it changes nothing, and 清除已并入文件的修改 removes it
    folded: bool = False


@dataclass(frozen=True)
class Listing:
    """What the console's 知识库 tab shows."""

    rows: list[Row]
    enabled: bool  # False: HOTLINE_KNOWLEDGE_FILE is empty, the knowledge base is off (no rows)
    file_error: str  # why the file as it is now is not used ("" when it is): missing, invalid
    kept: int  # the console's edits kept in Redis (reported while the knowledge base is off)


@dataclass(frozen=True)
class Named:
    """How the 班长视图 names an entry the bot answered with."""

    question: str  # its question now, the file's (停用), the last one known, or a label
    state: Literal["active", "disabled", "deleted", "unknown"]


@dataclass(frozen=True)
class Saved:
    row: Row
    created: bool  # a new id: neither the file nor the console had it
    changed: list[str]  # the keys that differ from the version replaced (all of them when created)
    warnings: list[str]  # advice: no 相似问, phrasings another entry would also answer


def same_content(a: Entry, b: Entry) -> bool:
    """The two say the same (question, 相似问, answer, source, keywords; not the date)."""
    return all(getattr(a, k) == getattr(b, k) for k in CONTENT)


def folded(edit: Edit, in_file: Entry | None) -> bool:
    """The edit is in the file already: an entry equal to the file's of its id, or a tombstone of
    an id the file no longer has. Removing it changes nothing the bot answers."""
    if edit.entry is None:
        return in_file is None
    return in_file is not None and same_content(edit.entry, in_file)


def gone_label(entry_id: str) -> str:
    return f"（已删除的条目 {entry_id}）"


def merge(
    base: Sequence[Entry], edits: Mapping[str, Edit], *, file_known: bool = True,
    questions: Mapping[str, str] | None = None,
) -> list[Row]:
    """Every entry with its origin: the file's order, then the console's additions (oldest first),
    then the disabled file entries (not in the effective base, listed so they can be re-enabled),
    then the tombstones of ids the file no longer has (folded, named by ``questions``: the last
    known question of each). ``file_known`` False (the file could not be read): nothing is folded,
    and such tombstones are not listed (the file may still have their entries)."""
    rows: list[Row] = []
    disabled: list[Row] = []
    for entry in base:
        edit = edits.get(entry.id)
        if edit is None:
            rows.append(Row(entry, "file", None))
        elif edit.entry is None:
            disabled.append(Row(entry, "disabled", edit))
        else:
            rows.append(Row(edit.entry, "edited", edit, file_known and same_content(edit.entry, entry)))
    in_base = {e.id for e in base}
    added = sorted((e for i, e in edits.items() if i not in in_base and e.entry is not None), key=lambda e: e.at)
    rows += [Row(e.entry, "console", e) for e in added if e.entry is not None]
    gone: list[Row] = []
    if file_known:
        named = questions or {}
        for entry_id, edit in sorted(edits.items(), key=lambda item: item[1].at):
            if edit.entry is None and entry_id not in in_base:  # nothing to show but its question
                placeholder = Entry.model_construct(id=entry_id, question=named.get(entry_id) or gone_label(entry_id),
                                                    answer="")
                gone.append(Row(placeholder, "disabled", edit, True))
    return rows + disabled + gone


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


async def usage(redis: Any, days: int = USAGE_DAYS) -> dict[str, dict[str, int]]:
    """Per entry id, how often over the last ``days`` Beijing days the bot answered with it and
    citizens said it solved the matter or not (the workers count each turn's, per day)."""
    today = datetime.now(BEIJING).date()
    async with redis.pipeline(transaction=False) as pipe:
        for back in range(days):
            pipe.hgetall(keys.knowledge_day((today - timedelta(days=back)).strftime("%Y%m%d")))
        per_day = await pipe.execute()
    counts: dict[str, dict[str, int]] = {}
    for day in per_day:
        for name, n in day.items():
            entry, _, outcome = name.rpartition("|")
            counts.setdefault(entry, {"answered": 0, "solved": 0, "unsolved": 0})
            if outcome in counts[entry]:
                counts[entry][outcome] += int(n)
    return counts


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
        # HOTLINE_KNOWLEDGE_FILE empty: off, the console's entries included (they wait in Redis)
        self.enabled = settings.knowledge_file is not None
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
        self._recorded: dict[str, str] = {}  # the questions this process has written to Redis
        self._remembered: tuple[KnowledgeBase | None, KnowledgeBase | None] | None = None  # for (kb, base)
        self._popular: tuple[str, ...] = ()
        self._ranked_at: float | None = None  # time.monotonic() of the last ranking
        self._asked = False  # popular() was asked: this process has a bot showing the menu

    # --- the bot's side ---------------------------------------------------------------------------
    def popular(self) -> tuple[str, ...]:
        """Entry ids by use over the last USAGE_DAYS, most useful first (answered and not said
        unsolved; ranked every RANK_S): the order of the menu's 常见问题. No I/O. A process that
        never asks (a web process without a bot) never ranks: the first ask is answered from the
        file's order, and the next refresh ranks."""
        self._asked = True
        return self._popular

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
            if version != self._version or base is not self._base:
                await self._rebuild(version, base)
            await self._remember()
        if self.enabled and self._asked and (self._ranked_at is None or time.monotonic() - self._ranked_at >= RANK_S):
            await self.rank()

    async def rank(self) -> None:
        """Order the entries by how useful citizens found them lately (see :meth:`popular`)."""
        counts = await usage(self.redis)
        useful = {entry: c["answered"] - c["unsolved"] for entry, c in counts.items()}
        self._popular = tuple(sorted((e for e, n in useful.items() if n > 0), key=lambda e: (-useful[e], e)))
        self._ranked_at = time.monotonic()

    async def _rebuild(self, version: int, base: KnowledgeBase | None) -> None:
        if not self.enabled:  # turned off: nothing to answer from, whatever the console holds
            self._install(version, None, None)
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

    async def _remember(self) -> None:
        """Keep each entry's last known question in Redis (id → question; the file's and the
        effective base's), so the 班长视图 can name an entry answered in its 30 days after it was
        deleted, in the console or from the file. Written when this process's base changed, and
        only what changed; the hash holds one short field per id ever used."""
        using = (self._kb, self._base)
        if self._remembered is not None and self._remembered[0] is using[0] and self._remembered[1] is using[1]:
            return
        known: dict[str, str] = {}
        for kb in (self._base, self._kb):  # the effective base last: an edited question wins
            if kb is not None:
                known.update((e.id, e.question) for e in kb.entries)
        changed = {i: q for i, q in known.items() if self._recorded.get(i) != q}
        if changed:
            await self.redis.hset(keys.KNOWLEDGE_QUESTIONS, mapping=changed)
            self._recorded.update(changed)
        self._remembered = using

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
    async def listing(self) -> Listing:
        """Every entry as it is now in Redis and the file (the list supervisors edit); none while
        the knowledge base is turned off (``kept`` counts the edits that wait meanwhile)."""
        state = await asyncio.to_thread(knowledge_state, self.settings)
        base = state.kb.entries if state.kb is not None else []
        file_known = not (state.error and state.kb is None)  # unreadable from the start: unknown
        try:
            if not self.enabled:
                return Listing([], False, "", int(await self.redis.hlen(keys.KNOWLEDGE_EDITS)))
            edits = self._parse(await self.redis.hgetall(keys.KNOWLEDGE_EDITS), -1)
            in_base = {e.id for e in base}
            gone = [i for i, e in edits.items() if e.entry is None and i not in in_base] if file_known else []
            named = await self.redis.hmget(keys.KNOWLEDGE_QUESTIONS, gone) if gone else []
        except (RedisError, OSError) as exc:
            raise ServiceUnavailable("知识库暂时无法读取，请稍后重试") from exc
        questions = {i: q for i, q in zip(gone, named, strict=True) if q}
        return Listing(merge(base, edits, file_known=file_known, questions=questions), True, state.error, 0)

    async def entries(self) -> list[Row]:
        return (await self.listing()).rows

    async def names(self, ids: Sequence[str]) -> dict[str, Named]:
        """How the 班长视图 names each entry: its question in the base in use; else the file's (an
        entry switched off in the console); else its last known question (deleted, in the console
        or from the file); else a label with its id."""
        kb = self.current()
        base = await asyncio.to_thread(knowledge_for, self.settings)
        active = {e.id: e.question for e in kb.entries} if kb is not None else {}
        in_file = {e.id: e.question for e in base.entries} if base is not None else {}
        out = {i: Named(active[i], "active") for i in ids if i in active}
        out |= {i: Named(in_file[i], "disabled") for i in ids if i not in out and i in in_file}
        rest = [i for i in ids if i not in out]
        if rest:
            for entry_id, question in zip(rest, await self.redis.hmget(keys.KNOWLEDGE_QUESTIONS, rest), strict=True):
                out[entry_id] = Named(question, "deleted") if question else Named(gone_label(entry_id), "unknown")
        return out

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
        changed = [k for k in CONTENT if previous is None or getattr(previous, k) != getattr(entry, k)]
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

    async def restore(self, entry_id: str, by: str) -> Row | None:
        """Drop the console's edit or tombstone of a file entry: the file's version again (None:
        a tombstone of an entry the file no longer has, gone with it)."""

        def decide(edits: Mapping[str, Edit], base: Mapping[str, Entry]) -> _Change:
            if entry_id not in base:
                had = edits.get(entry_id)
                if had is not None and had.entry is None:
                    return _Change("drop")  # 停用 of an entry IT has since deleted from the file
                if had is not None:
                    raise Conflict("该条目是在控制台新增的，没有文件版本可恢复；不再需要时请删除")
                raise NotFound(f"知识库文件中没有编号为 {entry_id} 的条目")
            return _Change("drop") if entry_id in edits else _Change("none")

        await self._write(entry_id, decide, refuse="恢复后知识库无法使用")
        return next((r for r in await self.entries() if r.entry.id == entry_id), None)

    async def clear_folded(self, by: str) -> list[str]:
        """清除已并入文件的修改: remove every edit the file now holds (an edited entry equal to the
        file's, a 停用 of an entry the file no longer has), compared with the file as it is at this
        moment (looked at now, not as of the last 2-second check) and with the edits as stored
        when they are removed (WATCH: an edit another supervisor saves meanwhile is compared
        again, never removed unseen). Returns their ids.
        The base the bot answers from stays the same (but for the entries' dates)."""
        if not self.enabled:
            raise Conflict(OFF_NO_EDIT)
        state = await asyncio.to_thread(knowledge_state, self.settings, fresh=True)
        if state.error:
            first = state.error.splitlines()[0][:200]
            raise Conflict(f"知识库文件现在无法使用，无法判断哪些修改已并入文件；请信息部门先修正文件（{first}）")
        in_file = {e.id: e for e in state.kb.entries} if state.kb is not None else {}
        ids: list[str] = []

        async def plan(edits: Mapping[str, Edit]) -> Callable[[Any], object] | None:
            nonlocal ids
            ids = [i for i, e in edits.items() if folded(e, in_file.get(i))]
            return (lambda pipe: pipe.hdel(keys.KNOWLEDGE_EDITS, *ids)) if ids else None

        version = await self._transaction(plan)
        if version is None:
            return []
        log.info("knowledge_folded_cleared", by=by, ids=ids, version=version)
        with contextlib.suppress(RedisError, OSError):  # committed: the loop catches up if this fails
            await self.refresh()
        await _wake_others(self, version)
        return sorted(ids)

    async def _transaction(
        self, plan: Callable[[Mapping[str, Edit]], Awaitable[Callable[[Any], object] | None]]
    ) -> int | None:
        """``plan`` reads the edits as stored and says what to write (None: nothing); that is
        written with the version bump in one transaction, or planned again if another process
        changed the edits meanwhile (WATCH). The new version, or None when nothing was written."""
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                while True:
                    try:
                        await pipe.watch(keys.KNOWLEDGE_VERSION, keys.KNOWLEDGE_EDITS)
                        write = await plan(self._parse(await pipe.hgetall(keys.KNOWLEDGE_EDITS), -1))
                        if write is None:
                            await pipe.unwatch()
                            return None
                        pipe.multi()
                        write(pipe)
                        pipe.incr(keys.KNOWLEDGE_VERSION)
                        return int((await pipe.execute())[-1])
                    except WatchError:
                        continue
        except (RedisError, OSError) as exc:
            raise ServiceUnavailable("知识库暂时无法保存，请稍后重试") from exc

    async def _write(
        self, entry_id: str, decide: Callable[[Mapping[str, Edit], Mapping[str, Entry]], _Change],
        refuse: str | None,
    ) -> list[str]:
        """One edit, checked against the edits it was decided on (WATCH: two supervisors saving at
        once are applied one after the other, each checked), and taken into use here at once.
        ``refuse``: the start of the 400 for an edit that would leave the base unusable (None:
        commit anyway, and keep the last good base as a refresh would). Returns the warnings."""
        if not self.enabled:
            raise Conflict(OFF_NO_EDIT)
        base = await asyncio.to_thread(knowledge_for, self.settings)
        by_id = {e.id: e for e in base.entries} if base else {}
        kb: KnowledgeBase | None = None
        errors: list[str] = []
        warnings: list[str] = []
        trial: dict[str, Edit] = {}

        async def plan(edits: Mapping[str, Edit]) -> Callable[[Any], object] | None:
            nonlocal kb, errors, warnings, trial
            change = decide(edits, by_id)
            if change.kind == "none":
                return None
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
            edit = change.edit
            if edit is not None:
                return lambda pipe: pipe.hset(keys.KNOWLEDGE_EDITS, entry_id, edit.dumps())
            return lambda pipe: pipe.hdel(keys.KNOWLEDGE_EDITS, entry_id)

        version = await self._transaction(plan)
        if version is None:
            return []
        async with self._lock:
            if version >= self._version:
                if errors:
                    self._refuse(version, base, errors)
                else:
                    self._install(version, base, kb if trial else base)
            with contextlib.suppress(RedisError, OSError):  # saved: the refresh loop writes it later
                await self._remember()
        await _wake_others(self, version)
        return warnings


def export_header(now: datetime) -> str:
    """The export's header: what the file holds and how to use it (read by the city's IT)."""
    return (
        f"知识库导出：知识库文件的条目加上坐席控制台的修改（新增、修改、停用），{now:%Y-%m-%d %H:%M}（北京时间）\n"
        "先用 `hotline knowledge check 本文件` 检查，再替换 HOTLINE_KNOWLEDGE_FILE 指向的文件；\n"
        "替换后，控制台“知识库”页将与文件一致的修改标为“已并入文件”，班长点“清除已并入文件的修改”即可一次清除。"
    )
