"""Citizens' media (photos, voice notes): checked, stored once, and found again by reference.

A channel stores what a citizen sent and puts a reference on the message's attachment:
``upload:<32 hex>`` for a photo posted to the web API (the widget, the mini-program),
``wechat:<account>:<MediaId>`` and ``telegram:<bot>:<file_id>`` for those fetched from the
platforms in the background (``MediaFetcher``). Redis holds one record per reference
(``hl:media:<ref>``: where the file is, its type, size and owner, or why a fetch failed) as long
as the file is kept (``HOTLINE_MEDIA_KEEP_DAYS``); the console reads it to show an operator the
photo, the admin API to hand it to the ticket platform, and workers delete older files.

An upload is decoded and saved again (turned upright, shrunk, without EXIF), so what is kept is a
plain image whatever was sent: no script hiding in a file that claims to be a picture, no GPS
position of the citizen's phone, no image that decodes to gigabytes.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import shutil
import time
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog
from fastapi.responses import FileResponse
from pi_heif import register_heif_opener
from PIL import Image, ImageOps, UnidentifiedImageError
from pydantic import BaseModel, ValidationError
from redis.exceptions import RedisError

from channels.base import Attachment, BadRequest, ChannelContext, Unavailable, new_id, stop_task
from config.settings import Settings

log = structlog.get_logger(__name__)
register_heif_opener()  # Pillow opens HEIC/HEIF (decoding only; applies the photo's rotation)

FAILED_KEEP_S = 7 * 24 * 3600  # a fetch that failed is remembered this long
MAX_PIXELS = 60_000_000  # a 108 MP phone camera is 12000 x 9000: larger is not a photo
# MPO: the JPEG some phones write; HEIF: an iPhone's HEIC, which a desktop browser cannot shrink
# and so uploads as it is (decoded by pi-heif, registered below)
FORMATS = {"JPEG", "PNG", "WEBP", "GIF", "BMP", "MPO", "HEIF"}
UPLOAD_REF = re.compile(r"upload:[0-9a-f]{32}")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")
_NOT_AN_IMAGE = "不支持的图片格式，请发送 JPG、PNG、WebP、GIF 或 HEIC 图片"
_TOO_MANY_PIXELS = "图片尺寸过大，请发送手机拍摄的普通照片"


class MediaRecord(BaseModel):
    """What Redis keeps about one reference."""

    path: str = ""
    mime: str = ""
    size: int = 0
    owner: str = ""  # the conversation that uploaded it (uploads only)
    error: str = ""  # why it could not be fetched (WeChat's media API refused, …)


def record_key(ref: str) -> str:
    return f"hl:media:{ref}"


async def save_record(redis: Any, ref: str, record: MediaRecord, keep_days: float) -> None:
    ttl = FAILED_KEEP_S if record.error else int(keep_days * 24 * 3600)
    await redis.set(record_key(ref), record.model_dump_json(exclude_defaults=True), ex=max(ttl, 1))


async def load_record(redis: Any, ref: str) -> MediaRecord | None:
    raw = await redis.get(record_key(ref))
    if raw is None:
        return None
    try:
        return MediaRecord.model_validate(json.loads(raw))
    except (ValueError, ValidationError):
        return None


def media_roots(settings: Settings) -> list[Path]:
    """The folders media files are kept in (and may be served from), none inside another."""
    roots = [settings.media_folder.resolve()]
    wechat = settings.wechat_media_folder.resolve()
    return roots if wechat.is_relative_to(roots[0]) else [*roots, wechat]


async def find(redis: Any, ref: str, roots: list[Path], owner: str | None = None) -> tuple[Path, str] | None:
    """The stored file of ``ref`` and its mime, if it was fetched, lies inside one of ``roots`` and
    (when ``owner`` is given) belongs to that conversation; else None."""
    try:
        record = await load_record(redis, ref)
    except (RedisError, OSError) as exc:
        raise Unavailable("服务暂时繁忙，请稍后重试") from exc
    if record is None or not record.path or (owner is not None and record.owner != owner):
        return None
    path = await asyncio.to_thread(_inside, Path(record.path), roots)
    return (path, record.mime) if path is not None else None


def _inside(path: Path, roots: list[Path]) -> Path | None:
    """``path`` resolved, if it is a file inside one of ``roots`` (a record pointing elsewhere is refused)."""
    path = path.resolve()
    if not any(path.is_relative_to(root) for root in roots) or not path.is_file():
        return None
    return path


def normalise_image(data: bytes, max_side: int) -> tuple[bytes, str]:
    """``data`` decoded and encoded again: (bytes, mime). JPEG, or PNG when it has transparency.

    Raises BadRequest (in Chinese, for the citizen) for anything that is not a whole image of a
    known format, or is larger than ``MAX_PIXELS``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data))
            if opened.format not in FORMATS:
                raise BadRequest(_NOT_AN_IMAGE)
            if opened.width * opened.height > MAX_PIXELS:
                raise BadRequest(_TOO_MANY_PIXELS)
            opened.load()
            image = ImageOps.exif_transpose(opened)
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadRequest(
            _NOT_AN_IMAGE if isinstance(exc, UnidentifiedImageError) else _TOO_MANY_PIXELS
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
        raise BadRequest("图片已损坏或不完整，请重新发送") from exc
    image.thumbnail((max_side, max_side))
    transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    out = io.BytesIO()
    if transparent:
        image.convert("RGBA").save(out, "PNG", optimize=True)
        return out.getvalue(), "image/png"
    image.convert("RGB").save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue(), "image/jpeg"


class Uploads:
    """Photos citizens post to the web API, kept under ``<media_dir>/upload``."""

    def __init__(self, settings: Settings, redis: Any) -> None:
        self.base = settings.media_folder / "upload"
        self.max_side = settings.media_max_side
        self.keep_days = settings.media_keep_days
        self.min_free = settings.media_min_free_mb * 1024 * 1024
        self.redis = redis

    async def save(self, data: bytes, owner: str) -> Attachment:
        """Check and store one photo of conversation ``owner``; the attachment to send with a message."""
        if await asyncio.to_thread(_free_bytes, self.base) < self.min_free:
            log.error("media_disk_full", folder=str(self.base), min_free_mb=self.min_free // (1024 * 1024))
            raise Unavailable("图片暂时无法接收，请稍后重试，或先用文字描述问题")
        content, mime = await asyncio.to_thread(normalise_image, data, self.max_side)
        ident = new_id()
        ref = f"upload:{ident}"
        path = self.base / ident[:2] / f"{ident}.{'png' if mime == 'image/png' else 'jpg'}"
        await asyncio.to_thread(write_file, path, content)
        try:
            record = MediaRecord(path=str(path), mime=mime, size=len(content), owner=owner)
            await save_record(self.redis, ref, record, self.keep_days)
        except (RedisError, OSError) as exc:
            path.unlink(missing_ok=True)
            raise Unavailable("服务暂时繁忙，请稍后重试") from exc
        return Attachment(kind="image", mime=mime, ref=ref)

    async def claim(self, refs: list[str], owner: str) -> list[Attachment]:
        """The stored attachments behind ``refs``, each uploaded by ``owner`` (nothing else is taken
        from the client: a reference to another citizen's photo, or a made-up one, is refused)."""
        out: list[Attachment] = []
        for ref in refs:
            record = None
            if UPLOAD_REF.fullmatch(ref):
                try:
                    record = await load_record(self.redis, ref)
                except (RedisError, OSError) as exc:
                    raise Unavailable("服务暂时繁忙，请稍后重试") from exc
            if record is None or record.owner != owner:
                raise BadRequest("图片不存在或已过期，请重新上传")
            out.append(Attachment(kind="image", mime=record.mime, ref=ref))
        return out


class FetchFailed(Exception):
    """A platform did not hand over a file; ``transient`` (busy, token, network) is tried again."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


Fetch = Callable[[str], Awaitable[tuple[bytes, str] | None]]
"""``fetch(ref)`` → (content, mime), None for a reference this process cannot fetch (an account
no longer configured), or raises ``FetchFailed``."""


class MediaFetcher:
    """Fetches the media a platform keeps only for a while (WeChat three days, Telegram's files by
    ``file_id``) in the background: references are queued with their message (``queue``, pushed
    in the same round trip as the enqueue), a fetch failing for a passing reason is tried again
    after ``first_retry_s()`` seconds, doubling up to an hour apart, ``attempts`` times
    (``retry``: ``<attempt>|<ref>`` scored by when), and the file is written under ``folder``
    (``<kind>:<a>:<b>`` → ``folder/a/b``) and recorded for the console and the admin API."""

    def __init__(
        self,
        ctx: ChannelContext,
        *,
        queue: str,
        retry: str,
        folder: Path,
        fetch: Fetch,
        first_retry_s: Callable[[], float],
        attempts: int = 12,
    ) -> None:
        self.ctx, self.queue, self.retry, self.folder = ctx, queue, retry, folder
        self.fetch, self.first_retry_s, self.attempts = fetch, first_retry_s, attempts
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        task, self.task = self.task, None
        if task is None:
            return
        if not await stop_task(task, 5):  # a fetch in flight must not hold up shutdown
            log.warning("media_fetch_loop_not_stopped", queue=self.queue)
        elif not task.cancelled() and task.exception() is not None:
            log.warning("media_fetch_loop_ended", queue=self.queue, error=str(task.exception()))

    async def run(self) -> None:
        while True:
            try:
                redis = self.ctx.redis
                item = await redis.lpop(self.queue) if redis is not None else None
                if not item:
                    if redis is not None:
                        await self._due_retries()
                    await asyncio.sleep(1.0)
                    continue
                await self.fetch_one(str(item))
            except (RedisError, OSError) as exc:
                task = asyncio.current_task()
                if task is not None and task.cancelling():  # a cancel the client turned into an error
                    raise asyncio.CancelledError from exc
                log.warning("media_fetch_loop", queue=self.queue, error=str(exc))
                await asyncio.sleep(2.0)

    async def _due_retries(self) -> None:
        """Move retries whose time has come back to the queue (ZREM decides which process does)."""
        redis = self.ctx.redis
        for item in await redis.zrangebyscore(self.retry, 0, time.time(), start=0, num=50):
            if await redis.zrem(self.retry, item):
                await redis.rpush(self.queue, item)

    async def fetch_one(self, item: str) -> None:
        """``item`` is a ref as queued, or ``<attempts so far>|<ref>`` for a retry."""
        done, _, ref = item.rpartition("|")
        attempt = (int(done) if done.isdigit() else 0) + 1
        keep_days = self.ctx.settings.media_keep_days
        try:
            fetched = await self.fetch(ref)
        except FetchFailed as exc:
            if exc.transient and attempt < self.attempts:
                delay = min(3600.0, self.first_retry_s() * 2 ** (attempt - 1))
                log.info("media_fetch_retry", ref=ref, error=str(exc), attempt=attempt, in_s=delay)
                await self.ctx.redis.zadd(self.retry, {f"{attempt}|{ref}": time.time() + delay})
                return
            log.warning("media_fetch_failed", ref=ref, error=str(exc), attempt=attempt)
            await save_record(self.ctx.redis, ref, MediaRecord(error=str(exc)), keep_days)
            return
        if fetched is None:
            return
        content, mime = fetched
        path = self.folder.joinpath(*(_safe_part(part) for part in ref.split(":")[1:]))
        await asyncio.to_thread(write_file, path, content)
        await save_record(
            self.ctx.redis, ref, MediaRecord(path=str(path), mime=mime, size=len(content)), keep_days
        )


def _free_bytes(folder: Path) -> int:
    """Free space where ``folder`` is (or will be: its nearest existing parent)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


def _safe_part(part: str) -> str:
    """One path component made of a platform's id: no separators, never ``..``."""
    safe = _SAFE_NAME.sub("_", part)
    return safe if safe.strip(".") else "_"


def write_file(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` whole: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    part.write_bytes(content)
    os.replace(part, path)


def file_response(path: Path, mime: str) -> FileResponse:
    """A stored file for a browser: shown inline only if it is an image, never run as a page."""
    inline = mime.startswith("image/") and mime != "image/svg+xml"
    return FileResponse(
        path,
        media_type=mime if inline else "application/octet-stream",
        content_disposition_type="inline" if inline else "attachment",
        headers={
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, max-age=86400",
        },
    )


THUMB_SIDE = 320  # a thumbnail's longest side: 工单查询's and the 工作台's 附件查看 show photos this small
THUMB_SUFFIX = ".thumb.jpg"  # beside the photo, pruned with it
# a thumbnail's file by its kind: a photo's JPEG, a transparent image's PNG (its see-through parts kept)
THUMBS = {"image/jpeg": THUMB_SUFFIX, "image/png": ".thumb.png"}


def thumbnail(path: Path, mime: str) -> tuple[Path, str] | None:
    """A small copy of the stored image at ``path`` (made once, kept beside it, made again if the
    image is newer), for a page that shows many: a phone's photo is kept at up to
    ``HOTLINE_MEDIA_MAX_SIDE``, about a megabyte. A JPEG, or a PNG for an image with transparency
    (a screenshot, a drawing). None for what is not an image that decodes."""
    if not mime.startswith("image/") or mime == "image/svg+xml":
        return None
    try:
        for kind, suffix in THUMBS.items():
            small = path.with_name(path.name + suffix)
            if small.is_file() and small.stat().st_mtime >= path.stat().st_mtime:
                return small, kind
        data, kind = normalise_image(path.read_bytes(), THUMB_SIDE)
    except (BadRequest, OSError):
        return None
    small = path.with_name(path.name + THUMBS[kind])
    try:
        write_file(small, data)
    except OSError:  # another request made it at the same moment (its .part moved first), or a full disk
        if not small.is_file():
            return None
    return small, kind


def prune(folder: Path, keep_days: float, now: float) -> int:
    """Delete files under ``folder`` last written more than ``keep_days`` before ``now``; their
    records have expired with them. Returns how many were deleted."""
    cutoff = now - keep_days * 24 * 3600
    deleted = 0
    for dirpath, _, filenames in os.walk(folder):
        for filename in filenames:
            path = Path(dirpath) / filename
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    deleted += 1
            except FileNotFoundError:  # another worker deleted it first
                continue
    return deleted
