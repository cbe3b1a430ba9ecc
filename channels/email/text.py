"""The words of an e-mail: charsets, HTML to text, and the quoted earlier mail cut off (pure).

Chinese mail is mostly declared ``gb2312`` while its writers' clients use GBK (镕, 堃, 喆 are not in
GB 2312): every GB charset is decoded as GB 18030, their superset. A charset that is unknown or
wrong never raises: the text is decoded by the next guess, and at worst with U+FFFD.
"""

from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser

# Declared charsets decoded as a superset (what the writer's client really used).
_SUPERSETS = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "cp936": "gb18030",
    "ms936": "gb18030",
    "windows-936": "gb18030",
    "euc-cn": "gb18030",
    "x-euc-cn": "gb18030",
    "csgb2312": "gb18030",
    "gb_2312-80": "gb18030",
    "x-gbk": "gb18030",
    "chinese": "gb18030",
    "big5": "big5hkscs",
    "iso-8859-1": "cp1252",  # what "Latin-1" mail from Windows really is
    "us-ascii": "utf-8",  # 8-bit text declared ASCII is mostly UTF-8
    "ascii": "utf-8",
}


def codec(charset: str | None) -> str | None:
    """The Python codec for a declared charset (a superset where one is known), or None."""
    if not charset:
        return None
    name = charset.strip().strip('"').lower()
    name = _SUPERSETS.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_bytes(data: bytes, charset: str | None) -> str:
    """``data`` as text: the declared charset, then UTF-8, then GB 18030, then with U+FFFD."""
    tried: list[str] = []
    for name in (codec(charset), "utf-8", "gb18030"):
        if name is None or name in tried:
            continue
        tried.append(name)
        try:
            return data.decode(name)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode(tried[0], errors="replace")


# --- HTML ----------------------------------------------------------------------------------------
_BLOCKS = {
    "p",
    "div",
    "br",
    "li",
    "tr",
    "table",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "pre",
    "section",
    "article",
    "header",
    "footer",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "hr",
    "address",
    "center",
}
_SKIPPED = {"script", "style", "head", "title", "template", "noscript", "svg", "object", "iframe"}


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0  # depth inside script/style/… and quoted replies (blockquote)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED or tag == "blockquote":
            self.skipping += 1
        elif tag in _BLOCKS:
            self.out.append("\n")
        elif tag == "td":
            self.out.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED or tag == "blockquote":
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCKS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.out.append(re.sub(r"[ \t\r\n]+", " ", data))


def html_to_text(html: str) -> str:
    """The text a reader sees in an HTML mail: no markup, scripts or styles, paragraphs as lines;
    a quoted earlier mail (``<blockquote>``) is left out."""
    parser = _Text()
    parser.feed(html)
    parser.close()
    lines = [line.strip() for line in "".join(parser.out).splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# --- the reply without the quoted mail -----------------------------------------------------------
# A line that opens the quoted earlier mail: everything from it on is cut.
_QUOTE_OPENERS = [
    re.compile(
        r"^-{2,}\s*(原始邮件|原始郵件|Original Message|Original)\s*-{2,}\s*$", re.I
    ),  # Foxmail, QQ, Outlook
    re.compile(r"^_{10,}\s*$"),  # Outlook's rule above its From:/Sent: block
    re.compile(r"^On\b.{0,300}\bwrote:\s*$", re.I),  # Gmail, Apple Mail, Thunderbird
]
# "在 2026年11月27日 上午10:12，张三 <a@b.cn> 写道：": Gmail and Apple Mail in Chinese, maybe on two lines
_WROTE = re.compile(r"^(在|於|于).{0,200}写道\s*[:：]?\s*$|^.{0,200}\s写道\s*[:：]\s*$")
# Outlook's, Foxmail's, QQ's header block: From, then at least one more of these within a few lines
_FROM = re.compile(r"^\**\s*(发件人|寄件者|From)\s*\**\s*[:：]", re.I)
_HEADER_LINE = re.compile(
    r"^\**\s*(发送时间|发件时间|日期|时间|收件人|抄送|主题|寄件日期|收件者|主旨|Sent|Date|To|Cc|Subject)\s*\**\s*[:：]",
    re.I,
)
# one line a phone's mail app signs with; dropped, the rest kept
_DEVICE_SIGNATURE = re.compile(
    r"^(发自我的|来自我的|Sent from my |Get Outlook for |来自网易邮箱大师|来自 ?QQ ?邮箱|来自139邮箱|发自网易邮箱).{0,40}$",
    re.I,
)


def strip_quoted(text: str) -> str:
    """The words the writer wrote this time: without the earlier mail quoted below them, the
    ``>`` lines, the signature after ``-- `` and a phone's "发自我的iPhone"."""
    lines = (
        text.replace("\r\n", "\n")
        .replace("\r", "\n")
        .replace("\u00a0", " ")
        .replace("\u3000", " ")
        .split("\n")
    )
    kept: list[str] = []
    for i, line in enumerate(lines):
        bare = line.strip()
        if line.rstrip("\n") == "-- " or bare == "--":  # RFC 3676 signature separator
            break
        if any(p.match(bare) for p in _QUOTE_OPENERS):
            break
        if _WROTE.match(bare) or (
            bare.startswith(("在", "于"))
            and i + 1 < len(lines)
            and re.match(r"^.{0,120}写道\s*[:：]?\s*$", lines[i + 1].strip())
        ):
            break
        if _FROM.match(bare) and sum(bool(_HEADER_LINE.match(n.strip())) for n in lines[i + 1 : i + 6]) >= 1:
            break
        if bare.startswith(">"):
            continue
        if _DEVICE_SIGNATURE.match(bare):
            continue
        kept.append(bare)
    out = "\n".join(kept).strip()
    return re.sub(r"\n{3,}", "\n\n", out)
