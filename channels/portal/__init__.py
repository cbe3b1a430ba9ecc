"""Government portal sources (政府网站留言板, 市长信箱, 社情民意): posts in, the writer's news out.

``post`` is the wire (signing both ways, a post's shape, one post onto the inbound stream),
``pull`` asks a source that cannot push for its new posts, ``channel`` is the adapter: the push
route, attachments, and the replies POSTed back to each source.
"""

from __future__ import annotations

from channels.portal.channel import PortalChannel, build
from channels.portal.post import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Post,
    inbound,
    sign,
    verify,
)

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Post",
    "PortalChannel",
    "build",
    "inbound",
    "sign",
    "verify",
]
