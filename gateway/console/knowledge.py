"""知识库维护: supervisors keep the knowledge base's answers from the console (docs/knowledge.md).

Everyone logged in reads the list, with where each entry comes from (the file, added in the
console, a file entry edited there, or 停用, and whether the file holds the edit already:
已并入文件); supervisors add and replace entries, 停用 a file entry or delete one the console
added, restore the file's version, export the whole as YAML for IT to fold into the file, and
clear the edits folded into it at once. The edits live in Redis (``gateway.knowledge``) and reach
the bot in every process within seconds. Every write (and each export) lands in the audit log.
While the knowledge base is turned off (``HOTLINE_KNOWLEDGE_FILE`` empty) nothing is listed or
written: the tab says so, and the edits kept in Redis wait for it to be turned on again.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from pydantic import ValidationError

from gateway.console import audit
from gateway.console.auth import SupervisorDep, UserDep
from gateway.console.routes import BEIJING, ConsoleState
from gateway.errors import BadInput, Conflict
from gateway.knowledge import OFF, KnowledgeSource, Row, effective, export_header, to_yaml
from nlu.knowledge import Entry

router = APIRouter(prefix="/api/console", tags=["console"])

MAX_ALSO = 50  # 相似问 of one entry; the shipped entries have 5-7
# what the editor calls each key, in the messages it reads
FIELDS = {"id": "编号", "question": "标准问", "also": "相似问", "answer": "答复口径", "source": "来源",
          "updated": "更新日期", "keywords": "关键词"}
EDITABLE = ("question", "also", "answer", "source", "keywords")
_MESSAGES = {
    "missing": "不能为空",
    "string_type": "应是文字",
    "list_type": "应是列表（每行一条）",
    "date_from_datetime_parsing": "应是日期（YYYY-MM-DD）",
    "date_parsing": "应是日期（YYYY-MM-DD）",
    "date_type": "应是日期（YYYY-MM-DD）",
}


def _source(request: Request) -> tuple[ConsoleState, KnowledgeSource]:
    console: ConsoleState = request.app.state.console
    return console, console.rt.knowledge


def readable(exc: ValidationError) -> str:
    """Pydantic's errors as the editor reads them: "答复口径：答复不能为空；相似问第2条：…"."""
    problems: list[str] = []
    for err in exc.errors():
        loc = [str(part) for part in err["loc"]]
        key = loc[0] if loc else ""
        field = FIELDS.get(key, key or "条目")
        if len(loc) > 1 and loc[1].isdigit():
            field += f"第{int(loc[1]) + 1}条"
        if err["type"] == "extra_forbidden":
            allowed = "、".join(f"{FIELDS[k]}（{k}）" for k in EDITABLE)
            problems.append(f"{key}：不认识的项（可填：{allowed}）")
            continue
        message = _MESSAGES.get(err["type"]) or str(err["msg"]).removeprefix("Value error, ")
        if err["type"] not in _MESSAGES and not err["type"].startswith("value_error"):
            message = "格式不正确"
        # the model's own message may name the field already ("第2个相似问：问法…为空")
        problems.append(message if message.startswith("第") else f"{field}：{message}")
    return "；".join(dict.fromkeys(problems))


def parse_entry(entry_id: str, body: dict[str, Any], today: date) -> Entry:
    """The entry a PUT describes (its id from the path, ``updated`` today), or BadInput naming
    what is wrong in Chinese."""
    if str(body.get("id", entry_id)) != entry_id:
        raise BadInput("编号与地址中的编号不一致")
    data = {k: v for k, v in body.items() if k not in ("id", "updated")}
    if isinstance(data.get("also"), list) and len(data["also"]) > MAX_ALSO:
        raise BadInput(f"相似问：最多{MAX_ALSO}条")
    try:
        return Entry.model_validate({"id": entry_id, **data, "updated": today})
    except ValidationError as exc:
        raise BadInput(readable(exc)) from exc


def _row(row: Row) -> dict[str, Any]:
    e = row.entry
    return {
        "id": e.id, "question": e.question, "also": e.also, "answer": e.answer, "source": e.source,
        "updated": e.updated.isoformat() if e.updated else "", "keywords": e.keywords, "origin": row.origin,
        "edited_by": row.edit.by if row.edit else "", "edited_at": row.edit.at if row.edit else None,
        "folded": row.folded,
    }


@router.get("/knowledge/entries")
async def knowledge_entries(user: UserDep, request: Request) -> dict[str, Any]:
    """Every entry, the disabled ones last; ``error`` says why the console's edits are not in use
    (they conflict with the file), ``file_error`` why the file is not (missing, invalid),
    ``editable`` whether this user may change them, ``folded`` how many edits the file holds
    already. ``enabled`` False: the knowledge base is turned off, no entries, ``kept`` edits wait."""
    console, source = _source(request)
    listing = await source.listing()
    path = console.rt.settings.knowledge_file
    return {
        "enabled": listing.enabled,
        "file": path.name if path is not None else "",
        "file_error": listing.file_error,
        "editable": user.is_supervisor and listing.enabled,
        "error": source.error if listing.enabled else "",
        "kept": listing.kept,
        "folded": sum(r.folded for r in listing.rows),
        "entries": [_row(r) for r in listing.rows],
    }


@router.put("/knowledge/entries/{entry_id}")
async def knowledge_put(
    entry_id: str, user: SupervisorDep, request: Request, body: Annotated[dict[str, Any], Body()],
    new: Annotated[bool, Query()] = False,
) -> dict[str, Any]:
    """Add (``new=true`` refuses an id in use) or replace an entry: question, also, answer, source,
    keywords; ``updated`` is today (Beijing). Returns it with warnings the editor should read."""
    console, source = _source(request)
    entry = parse_entry(entry_id, body, datetime.now(BEIJING).date())
    saved = await source.edit(entry, user.name, new=new)
    await audit.record(console.redis, user.name, "knowledge.create" if saved.created else "knowledge.update",
                       entry.id, question=entry.question[:60], fields=saved.changed, origin=saved.row.origin)
    return {"entry": _row(saved.row), "created": saved.created, "warnings": saved.warnings}


@router.delete("/knowledge/entries/{entry_id}")
async def knowledge_delete(entry_id: str, user: SupervisorDep, request: Request) -> dict[str, Any]:
    """停用 a file entry (until restored) or delete an entry the console added."""
    console, source = _source(request)
    outcome = await source.remove(entry_id, user.name)
    await audit.record(console.redis, user.name, "knowledge.disable" if outcome == "disabled" else "knowledge.delete",
                       entry_id)
    return {"ok": True, "outcome": outcome}


@router.post("/knowledge/entries/{entry_id}/restore")
async def knowledge_restore(entry_id: str, user: SupervisorDep, request: Request) -> dict[str, Any]:
    """Back to the file's version: the console's edit or 停用 of a file entry is dropped."""
    console, source = _source(request)
    row = await source.restore(entry_id, user.name)
    await audit.record(console.redis, user.name, "knowledge.restore", entry_id)
    return {"entry": _row(row) if row is not None else None}


@router.post("/knowledge/clear-folded")
async def knowledge_clear_folded(user: SupervisorDep, request: Request) -> dict[str, Any]:
    """清除已并入文件的修改: every edit the file now holds (compared at this moment), at once;
    ``cleared`` says how many, ``ids`` which."""
    console, source = _source(request)
    ids = await source.clear_folded(user.name)
    await audit.record(console.redis, user.name, "knowledge.clear_folded", "", count=len(ids), ids=ids[:100])
    return {"cleared": len(ids), "ids": ids}


@router.get("/knowledge.yml")
async def knowledge_export(user: SupervisorDep, request: Request) -> Response:
    """The effective entries as a file in config/knowledge.yml's format, for IT to check and put
    in place of HOTLINE_KNOWLEDGE_FILE (the console's edits then match the file)."""
    console, source = _source(request)
    if not source.enabled:
        raise Conflict(OFF + "，不能导出")
    entries = effective(await source.entries())
    now = datetime.now(BEIJING)
    await audit.record(console.redis, user.name, "knowledge.export", "", entries=len(entries))
    return Response(to_yaml(entries, export_header(now)), media_type="application/yaml; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="knowledge-{now:%Y%m%d-%H%M}.yml"',
                             "Cache-Control": "no-store"})
