"""Whether the city's own mail server vouches for a mail's From address (pure: no I/O).

A From line is whatever the sender typed. The gateway believes it in two cases only; this module
is the second one (the first, a reply in one of the gateway's own threads, is ``Threads.replying``):

The receiving server that the city runs or rents (its *authserv-id*, ``HOTLINE_EMAIL_AUTHSERV_ID``,
e.g. ``mx.12345.gov.cn``) checks SPF, DKIM and DMARC on arrival and writes what it found in an
``Authentication-Results`` header (RFC 8601). Only headers that carry exactly that id count: any
other server's, or one the sender wrote himself, are ignored (RFC 8601 §5; the MX must strip
incoming headers that carry its own id). Of the results that count:

- ``dmarc=pass`` (for the From domain): verified; ``dmarc=fail`` (or any other DMARC result but
  ``none``): not verified, whatever else is there;
- no DMARC result (a server that checks DKIM only), or ``dmarc=none`` (the From domain publishes
  no DMARC policy): verified by a ``dkim=pass`` whose signing domain (``header.d``, else the domain
  of ``header.i``) is aligned with the From domain: the same, or one a subdomain of the other
  (relaxed alignment, with "a subdomain" standing in for "the same organisational domain").

A mail with more than one From address is never verified here: DMARC judges one of them.
"""

from __future__ import annotations

from email.message import Message
from email.utils import getaddresses
from typing import Any

import authres
import authres.dmarc

_CONTEXT = authres.FeatureContext(authres.dmarc)


def own_results(msg: Message, authserv_id: str) -> list[Any]:
    """The results of every ``Authentication-Results`` header written by ``authserv_id``."""
    wanted = authserv_id.strip().lower()
    found: list[Any] = []
    for raw in msg.get_all("Authentication-Results") or []:
        value = " ".join(str(raw).split())  # unfolded
        try:
            header = _CONTEXT.parse_value(value)
        except Exception:  # noqa: BLE001  (a header the parser trips on vouches for nothing)
            continue
        if wanted and header.authserv_id == wanted:
            found.extend(header.results)
    return found


def _property(result: Any, ptype: str, name: str) -> str:
    for prop in result.properties:
        if prop.type == ptype and prop.name == name:
            return str(prop.value or "").strip().lower()
    return ""


def aligned(signer: str, domain: str) -> bool:
    """Relaxed alignment, simply: the same domain, or one a subdomain of the other."""
    signer, domain = signer.strip(".").lower(), domain.strip(".").lower()
    if "." not in signer or "." not in domain:
        return False
    return signer == domain or domain.endswith("." + signer) or signer.endswith("." + domain)


def _dkim_domain(result: Any) -> str:
    return _property(result, "header", "d") or _property(result, "header", "i").rpartition("@")[2]


def authenticated(msg: Message, sender: str, authserv_id: str) -> bool:
    """True when the server ``authserv_id`` vouches for ``sender``, the mail's From address."""
    if not authserv_id.strip() or "@" not in sender:
        return False
    froms = [a for _, a in getaddresses([str(v) for v in msg.get_all("From") or []]) if "@" in a]
    if len(froms) != 1:
        return False
    domain = sender.rpartition("@")[2].lower()
    results = own_results(msg, authserv_id)
    dmarc = [r for r in results if r.method == "dmarc"]
    if any(_property(r, "header", "from") not in ("", domain) for r in dmarc):
        return False  # a verdict on another From than the one read: something is off
    verdicts = {str(r.result).lower() for r in dmarc} - {"none"}
    if verdicts:
        return verdicts == {"pass"}
    return any(
        r.method == "dkim" and str(r.result).lower() == "pass" and aligned(_dkim_domain(r), domain)
        for r in results
    )
