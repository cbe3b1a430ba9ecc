"""``GET /media/{ref}``: a signed link opens one attachment until it expires, without a token."""

from __future__ import annotations

import time
from typing import Any

import httpx

from channels.media import MediaRecord, save_record, write_file
from tests.conftest import photo
from ticket_client import media_link


async def test_a_signed_link_opens_one_file_until_it_expires(app: Any, client: httpx.AsyncClient) -> None:
    rt = app.state.runtime
    settings = rt.settings
    content = photo()
    path = settings.media_folder / "upload" / "ab" / "abc.jpg"
    write_file(path, content)
    await save_record(
        rt.redis, "upload:abc", MediaRecord(path=str(path), mime="image/jpeg", size=len(content)), 1
    )
    key = media_link.key_from(settings.ensure_admin_token())

    url = httpx.URL(media_link.link("http://test", key, "upload:abc", 60))
    r = await client.get(url.path, params=dict(url.params))  # no Authorization header
    assert r.status_code == 200 and r.content == content and r.headers["content-type"] == "image/jpeg"

    expires, sig = url.params["expires"], url.params["sig"]
    for ref, params in [
        ("upload:abc", {"expires": expires, "sig": "0" * 64}),  # forged
        ("upload:abc", {"expires": str(int(expires) + 3600), "sig": sig}),  # its expiry pushed out
        ("upload:other", {"expires": expires, "sig": sig}),  # another file with the same signature
        ("upload:abc", {}),
    ]:
        r = await client.get(f"/media/{ref}", params=params)
        assert r.status_code == 403 and r.json()["detail"] == "链接无效或已过期", (ref, params)
    stale = httpx.URL(media_link.link("http://test", key, "upload:abc", 60, now=time.time() - 120))
    assert (await client.get(stale.path, params=dict(stale.params))).status_code == 403
    gone = httpx.URL(media_link.link("http://test", key, "upload:gone", 60))
    assert (await client.get(gone.path, params=dict(gone.params))).status_code == 404
    other_key = media_link.key_from("another-installation")
    theirs = httpx.URL(media_link.link("http://test", other_key, "upload:abc", 60))
    assert (await client.get(theirs.path, params=dict(theirs.params))).status_code == 403
