"""Citizens' photos: what is kept of an upload, and who may use or see it again."""

from __future__ import annotations

import asyncio
import io
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from PIL import Image

from channels.base import BadRequest, ChannelContext
from channels.media import (
    THUMB_SIDE,
    THUMB_SUFFIX,
    MediaFetcher,
    MediaRecord,
    Uploads,
    find,
    media_roots,
    normalise_image,
    prune,
    save_record,
    thumbnail,
    write_file,
)
from config.settings import Settings
from tests.conftest import photo

ORIENTATION, GPS_INFO = 0x0112, 0x8825


def exif_rotated_with_gps() -> bytes:
    """What a phone writes when held upright: pixels stored sideways, EXIF saying 'rotate 90°',
    and where the phone was."""
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif[GPS_INFO] = {1: "N", 2: (30.0, 15.0, 20.5), 3: "E", 4: (120.0, 9.0, 1.25)}
    return photo(800, 600, exif=exif.tobytes())


def opened(data: bytes) -> Any:
    return Image.open(io.BytesIO(data))


def test_a_phone_photo_is_turned_upright_and_loses_its_exif() -> None:
    content, mime = normalise_image(exif_rotated_with_gps(), max_side=2560)
    image = opened(content)
    assert mime == "image/jpeg" and image.format == "JPEG"
    assert image.size == (600, 800)  # turned as the phone meant
    assert image.getpixel((580, 20))[0] < 40  # the dark corner is now at the top right
    assert not image.getexif()  # no GPS position, no orientation left to apply twice


HEIC = Path(__file__).parent / "fixtures" / "media" / "rotated_gps.heic"


def test_an_iphone_heic_photo_becomes_an_upright_jpeg_without_its_exif() -> None:
    content, mime = normalise_image(HEIC.read_bytes(), max_side=2560)
    image = opened(content)
    assert mime == "image/jpeg" and image.format == "JPEG"
    assert image.size == (300, 400)  # turned as the phone meant (HEIF's irot)
    assert image.getpixel((280, 10))[0] < 60  # the dark corner is now at the top right
    assert not image.getexif()


def test_a_heic_cut_off_in_transit_is_refused() -> None:
    with pytest.raises(BadRequest, match="损坏|不支持"):
        normalise_image(HEIC.read_bytes()[:20000], max_side=2560)


def test_a_large_photo_is_shrunk_and_keeps_its_proportions() -> None:
    content, _ = normalise_image(photo(4000, 3000), max_side=1600)
    assert opened(content).size == (1600, 1200)


def test_transparency_is_kept_as_png() -> None:
    image = Image.new("RGBA", (300, 200), (255, 0, 0, 0))
    out = io.BytesIO()
    image.save(out, "PNG")
    content, mime = normalise_image(out.getvalue(), max_side=2560)
    assert mime == "image/png" and opened(content).mode == "RGBA"


def test_webp_and_gif_become_jpeg() -> None:
    for fmt in ("WEBP", "GIF"):
        content, mime = normalise_image(photo(320, 240, fmt=fmt), max_side=2560)
        assert (mime, opened(content).format) == ("image/jpeg", "JPEG")


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", "不支持"),
        (b"<html><script>alert(1)</script></html>", "不支持"),
        (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "不支持"),
        (b"%PDF-1.7\n" + b"0" * 100, "不支持"),
        (photo(800, 600)[:3000], "损坏"),  # a photo cut off in transit
    ],
    ids=["empty", "html", "svg", "pdf", "truncated"],
)
def test_what_is_not_a_whole_photo_is_refused_in_chinese(data: bytes, error: str) -> None:
    with pytest.raises(BadRequest, match=error):
        normalise_image(data, max_side=2560)


def test_an_image_of_too_many_pixels_is_refused_before_it_is_decoded() -> None:
    out = io.BytesIO()
    Image.new("1", (9000, 9000)).save(out, "PNG")  # 81 MP in a file of a few KB
    assert len(out.getvalue()) < 100_000
    with pytest.raises(BadRequest, match="尺寸过大"):
        normalise_image(out.getvalue(), max_side=2560)


@pytest.fixture
async def redis(clean_redis: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(clean_redis, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def uploads(settings: Settings, redis: aioredis.Redis) -> Uploads:
    return Uploads(settings, redis)


async def test_an_upload_is_stored_and_claimed_by_its_own_conversation_only(
    uploads: Uploads, redis: aioredis.Redis, settings: Settings
) -> None:
    attachment = await uploads.save(photo(), owner="web:citizen-a")
    assert attachment.kind == "image" and attachment.ref.startswith("upload:")
    found = await find(redis, attachment.ref, media_roots(settings), owner="web:citizen-a")
    assert found is not None and found[1] == "image/jpeg"
    assert opened(found[0].read_bytes()).size == (800, 600)
    assert await uploads.claim([attachment.ref], "web:citizen-a") == [attachment]
    assert await find(redis, attachment.ref, media_roots(settings), owner="web:citizen-b") is None
    for refs, owner in (
        ([attachment.ref], "web:citizen-b"),  # another citizen's photo
        (["upload:" + "0" * 32], "web:citizen-a"),  # never uploaded
        (["wechat:oa:2Zq7o9WqkB3x_MEDIA_ID_EXAMPLE"], "web:citizen-a"),  # not an upload at all
        (["../../etc/passwd"], "web:citizen-a"),
    ):
        with pytest.raises(BadRequest, match="图片不存在或已过期"):
            await uploads.claim(refs, owner)


async def test_a_record_pointing_outside_the_media_folders_is_not_served(
    redis: aioredis.Redis, settings: Settings, tmp_path: Path
) -> None:
    secret = tmp_path / "admin_token"
    secret.write_text("do-not-serve")
    await save_record(redis, "upload:" + "1" * 32, MediaRecord(path=str(secret), mime="image/jpeg"), 1)
    assert await find(redis, "upload:" + "1" * 32, media_roots(settings)) is None
    inside = (settings.data_dir / "media" / "upload" / "x.jpg").resolve()
    inside.parent.mkdir(parents=True)
    inside.write_bytes(photo())
    await save_record(redis, "upload:" + "2" * 32, MediaRecord(path=str(inside), mime="image/jpeg"), 1)
    assert await find(redis, "upload:" + "2" * 32, media_roots(settings)) == (inside, "image/jpeg")


def test_files_older_than_the_keeping_time_are_deleted(tmp_path: Path) -> None:
    old, new = tmp_path / "upload" / "ab" / "old.jpg", tmp_path / "wechat" / "oa" / "new_media"
    for path in (old, new):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"x")
    now = old.stat().st_mtime
    os.utime(old, (now - 91 * 86400, now - 91 * 86400))
    assert prune(tmp_path, keep_days=90, now=now) == 1
    assert not old.exists() and new.exists()
    assert prune(tmp_path, keep_days=90, now=now) == 0


async def test_a_fetched_file_stays_inside_its_folder_whatever_the_platform_id(
    settings: Settings, redis: aioredis.Redis, tmp_path: Path
) -> None:
    async def fetch(ref: str) -> tuple[bytes, str]:
        return b"content", "image/jpeg"

    async def enqueue(*_: Any, **__: Any) -> bool:
        return True

    folder = tmp_path / "media" / "x"
    fetcher = MediaFetcher(
        ChannelContext(redis=redis, enqueue=enqueue, settings=settings),
        queue="q",
        retry="r",
        folder=folder,
        fetch=fetch,
        first_retry_s=lambda: 1.0,
    )
    await fetcher.fetch_one("x:..:../../etc/passwd")
    found = await find(redis, "x:..:../../etc/passwd", [folder.resolve()])
    assert found is not None and found[0].parent.parent == folder.resolve()


async def test_the_fetch_loop_stops_whenever_it_is_stopped(settings: Settings, redis: aioredis.Redis) -> None:
    """redis-py swallows a cancel that lands while it opens a connection: the loop went on and
    shutdown waited out its five seconds. Stopped at every step of its first round, it ends."""

    async def fetch(ref: str) -> None:
        return None

    fetcher = MediaFetcher(
        ChannelContext(redis=redis, enqueue=None, settings=settings),
        queue="q",
        retry="r",
        folder=settings.media_folder,
        fetch=fetch,
        first_retry_s=lambda: 1.0,
    )
    for steps in range(1, 12):
        await redis.connection_pool.disconnect()  # the next command opens a connection
        fetcher.start()
        task = fetcher.task
        for _ in range(steps):
            await asyncio.sleep(0)
        started = time.monotonic()
        await fetcher.stop()
        assert task is not None and task.done(), f"still running when stopped after {steps} steps"
        assert time.monotonic() - started < 2, f"ran on, stopped after {steps} steps"  # 5 s before the fix


def test_a_thumbnail_is_made_once_beside_the_photo_and_only_of_a_photo(tmp_path: Path) -> None:
    """附件查看's small copy: a JPEG of THUMB_SIDE at most, kept beside the photo and made again
    only when the photo is newer (a PNG for a transparent image); a voice note or a broken file has none."""
    shot = tmp_path / "a.jpg"
    write_file(shot, photo(1600, 1200))
    made = thumbnail(shot, "image/jpeg")
    assert made is not None and made[0].name == "a.jpg" + THUMB_SUFFIX and made[1] == "image/jpeg"
    assert Image.open(made[0]).size == (THUMB_SIDE, THUMB_SIDE * 3 // 4)
    before = made[0].stat().st_mtime_ns
    assert thumbnail(shot, "image/jpeg") == made and made[0].stat().st_mtime_ns == before  # kept
    voice = tmp_path / "v.amr"
    write_file(voice, b"#!AMR\n" + b"\0" * 100)
    clear = tmp_path / "c.png"
    write_file(clear, _transparent())
    broken = tmp_path / "b.jpg"
    write_file(broken, b"\xff\xd8 not really")
    assert thumbnail(voice, "audio/amr") is None
    see_through = thumbnail(clear, "image/png")
    assert see_through is not None and see_through == (clear.with_name("c.png.thumb.png"), "image/png")
    with Image.open(see_through[0]) as small:
        assert small.mode == "RGBA" and max(small.size) == THUMB_SIDE and small.getpixel((0, 0))[3] == 0
    assert thumbnail(clear, "image/png") == see_through  # kept
    assert thumbnail(broken, "image/jpeg") is None and not broken.with_name("b.jpg" + THUMB_SUFFIX).exists()


def _transparent() -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (640, 640), (255, 0, 0, 0)).save(out, "PNG")
    return out.getvalue()
