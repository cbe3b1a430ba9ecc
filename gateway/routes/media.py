"""``GET /media/{ref}``: a ticket's attachment for whoever holds a signed link (the ticket
platform's ``media_url``); 403 for a link that is forged, altered or expired, 404 once the file is
gone (``HOTLINE_MEDIA_KEEP_DAYS``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from channels.media import file_response, find, media_roots
from gateway.deps import RuntimeDep
from gateway.errors import Forbidden, NotFound
from ticket_client import media_link

router = APIRouter(tags=["media"])


@router.get("/media/{ref}")
async def signed_media(
    ref: str,
    rt: RuntimeDep,
    expires: Annotated[int, Query()] = 0,
    sig: Annotated[str, Query(max_length=128)] = "",
) -> FileResponse:
    if len(ref) > 300 or not media_link.valid(
        media_link.key_from(rt.settings.ensure_admin_token()), ref, expires, sig
    ):
        raise Forbidden("链接无效或已过期")
    found = await find(rt.redis, ref, media_roots(rt.settings))
    if found is None:
        raise NotFound("附件尚未取到或已过期")
    return file_response(*found)
