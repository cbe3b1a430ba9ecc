"""Links a ticket platform can fetch a ticket's photos by, without the admin token.

Open311's ``media_url`` is one URL the platform fetches on its own; it cannot send our bearer
token. So the link carries its own proof: ``<public URL>/media/<ref>?expires=<unix>&sig=<hex>``,
the signature an HMAC-SHA256 over the reference and the expiry with a key derived from the admin
token. It opens that one file until it expires, nothing else; the gateway checks it
(``gateway/routes/media.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote


def key_from(admin_token: str) -> bytes:
    """The links' own key, so a leaked link says nothing about the admin token."""
    return hmac.new(admin_token.encode(), b"hotline media link", hashlib.sha256).digest()


def signature(key: bytes, ref: str, expires: int) -> str:
    return hmac.new(key, f"{ref}\n{expires}".encode(), hashlib.sha256).hexdigest()


def link(public_url: str, key: bytes, ref: str, valid_s: float, now: float | None = None) -> str:
    """A link to ``ref`` that works for ``valid_s`` seconds."""
    expires = int((time.time() if now is None else now) + valid_s)
    sig = signature(key, ref, expires)
    return f"{public_url.rstrip('/')}/media/{quote(ref, safe='')}?expires={expires}&sig={sig}"


def valid(key: bytes, ref: str, expires: int, sig: str, now: float | None = None) -> bool:
    """Whether ``sig`` was made for ``ref`` and ``expires``, and ``expires`` has not passed."""
    if expires < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(signature(key, ref, expires), sig.lower())
