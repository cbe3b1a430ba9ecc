"""Whose From the e-mail channel believes: the Authentication-Results of the city's own mail server
(``HOTLINE_EMAIL_AUTHSERV_ID``), read with authres, on mails in each provider's shape
(``fixtures/email/authres/``). Replies in the gateway's own threads are tested with Dovecot in
``test_email.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from channels.email.parse import parse_mail
from channels.email.verify import aligned

FIXTURES = Path(__file__).parent / "fixtures" / "email"
OWN = "mayor@city.gov.cn"
CITY_MX = "mx.12345.gov.cn"


def eml(name: str) -> bytes:
    return (FIXTURES / "authres" / f"{name}.eml").read_bytes()


def believed(raw: bytes, authserv_id: str) -> bool:
    return parse_mail(raw, OWN, authserv_id=authserv_id).authenticated


# (fixture, the authserv-id the city configured, whether From is believed)
VERDICTS = [
    ("gmail__qq_dmarc_pass", "mx.google.com", True),
    ("gmail__qq_dmarc_pass", "MX.Google.COM", True),  # ids compare without case
    ("gmail__qq_dmarc_pass", CITY_MX, False),  # Google's verdict, not the city's server's
    ("gmail__qq_dmarc_pass", "", False),  # nothing configured: no header counts
    ("gmail__qq_forged_dmarc_fail", "mx.google.com", False),
    ("exmail__163_dmarc_pass", "mx.exmail.qq.com", True),
    # Exchange Online's header names no authserv-id (RFC 8601 wants one); its ARC copy does, but
    # that is a record for the next hop, not the receiving server's verdict
    ("outlook365__gmail_no_authserv_id", "mx.microsoft.com", False),
    ("outlook365__gmail_no_authserv_id", "protection.outlook.com", False),
    ("netease163__gmail_dkim_pass_no_dmarc", "mx28.163.com", True),  # no DMARC result: aligned DKIM
    ("postfix__163_opendkim_opendmarc", CITY_MX, True),  # OpenDKIM's and OpenDMARC's headers
    ("rspamd__163_forged_misaligned_dkim", CITY_MX, False),  # signed, by someone else's domain
]


@pytest.mark.parametrize(("name", "authserv_id", "verified"), VERDICTS)
def test_only_the_city_servers_verdict_counts(name: str, authserv_id: str, verified: bool) -> None:
    assert believed(eml(name), authserv_id) is verified


def test_every_fixture_has_a_verdict() -> None:
    assert {p.stem for p in (FIXTURES / "authres").glob("*.eml")} == {name for name, _, _ in VERDICTS}


def test_the_fixtures_are_ratings_from_their_writers() -> None:
    mail = parse_mail(eml("postfix__163_opendkim_opendmarc"), OWN, authserv_id=CITY_MX)
    assert (mail.sender, mail.text, mail.ignored) == ("wangkun1987@163.com", "满意", "")


def test_a_mail_without_authentication_results_is_not_believed() -> None:
    raw = (FIXTURES / "letter__gb2312_declared_gbk_chars.eml").read_bytes()
    assert b"Authentication-Results" not in raw and not believed(raw, CITY_MX)


POSTFIX_DMARC = b"Authentication-Results: mx.12345.gov.cn; dmarc=pass (p=none dis=none) header.from=163.com"


def with_dmarc(line: bytes) -> bytes:
    """The city's Postfix mail with OpenDMARC's header replaced by ``line`` (OpenDKIM's stays:
    dkim=pass for 163.com)."""
    raw = eml("postfix__163_opendkim_opendmarc")
    assert POSTFIX_DMARC in raw
    return raw.replace(POSTFIX_DMARC, line)


@pytest.mark.parametrize(
    ("line", "verified"),
    [
        # DMARC failed: a passing DKIM signature does not overrule it
        (
            b"Authentication-Results: mx.12345.gov.cn; dmarc=fail (p=reject dis=reject) header.from=163.com",
            False,
        ),
        (b"Authentication-Results: mx.12345.gov.cn; dmarc=temperror header.from=163.com", False),
        # no DMARC policy published: the aligned DKIM signature decides
        (b"Authentication-Results: mx.12345.gov.cn; dmarc=none (p=none dis=none) header.from=163.com", True),
        # a verdict on another From domain than the mail's
        (b"Authentication-Results: mx.12345.gov.cn; dmarc=pass header.from=qq.com", False),
        # a header the parser cannot read vouches for nothing (OpenDKIM's still does)
        (b"Authentication-Results: mx.12345.gov.cn; dmarc=", True),
        (b"X-Nothing: here", True),
    ],
)
def test_dmarc_decides_and_dkim_only_without_it(line: bytes, verified: bool) -> None:
    assert believed(with_dmarc(line), CITY_MX) is verified


@pytest.mark.parametrize(
    ("signer", "verified"),
    [
        (b"163.com", True),
        (b"mail.163.com", True),  # a subdomain of the From domain
        (b"evil163.com", False),  # a longer name is no subdomain
        (b"163.com.evil.cn", False),
        (b"com", False),
    ],
)
def test_dkim_must_align_with_from(signer: bytes, verified: bool) -> None:
    raw = with_dmarc(b"X-Nothing: here").replace(b"header.d=163.com header.i=@163.com", b"header.d=" + signer)
    assert believed(raw, CITY_MX) is verified


def test_a_mail_with_two_from_addresses_is_not_believed() -> None:
    raw = eml("postfix__163_opendkim_opendmarc")
    assert believed(raw, CITY_MX)
    two = raw.replace(b"\r\nTo: mayor@city.gov.cn", b"\r\nFrom: someone@163.com\r\nTo: mayor@city.gov.cn", 1)
    assert two.count(b"\r\nFrom: ") == 2
    assert not believed(two, CITY_MX)
    both = raw.replace(b"<wangkun1987@163.com>\r\nTo:", b"<wangkun1987@163.com>, x@163.com\r\nTo:", 1)
    assert both != raw and not believed(both, CITY_MX)


def test_alignment_is_the_same_domain_or_a_subdomain() -> None:
    assert (
        aligned("163.com", "163.com") and aligned("163.com", "vip.163.com") and aligned("m.qq.com", "qq.com")
    )
    assert not aligned("163.com", "126.com") and not aligned("cn", "gov.cn") and not aligned("", "qq.com")
