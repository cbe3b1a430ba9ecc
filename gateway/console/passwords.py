"""How strong a new console password must be: ten characters at least, and not easy to guess as
zxcvbn (Dropbox's estimator of how many guesses a password takes) judges it: not a common password
(top lists, 1qaz2wsx, woaini1314), a keyboard row, a sequence or a repeat, a date, or the account's
own name, display name or unit, or words of this system (12345, hotline). NIST SP 800-63B asks the
same of a password checked against known lists; the reason is said in Chinese, so the person picks
better at once. Only new passwords are judged: an account keeps its old one until it is changed.
"""

from __future__ import annotations

from collections.abc import Iterable

from zxcvbn import zxcvbn

MIN_PASSWORD = 10
MIN_SCORE = 3  # zxcvbn's 0–4: 3 is "safely unguessable" (about 10^8 guesses and more)
# words of this system and of passwords Chinese users favour, which zxcvbn's lists do not hold
CONTEXT = ("12345", "hotline", "rexian", "zhengwu", "12345rexian", "admin", "woaini", "5201314", "1314520",
           "1314", "aini", "caonima", "dearbook", "xiazhili", "qq123456", "147258369", "789456123")
# zxcvbn's warnings, in the words the console shows
WARNINGS = {
    "Straight rows of keys are easy to guess.": "含有键盘上连续的一排按键",
    "Short keyboard patterns are easy to guess.": "含有简短的键盘图案",
    'Repeats like "aaa" are easy to guess.': "含有重复的字符（如 aaa）",
    'Repeats like "abcabcabc" are only slightly harder to guess than "abc".': "含有重复的片段（如 abcabc）",
    "Sequences like abc or 6543 are easy to guess.": "含有顺序字符（如 abc、6543）",
    "Recent years are easy to guess.": "含有年份",
    "Dates are often easy to guess.": "含有日期（如生日）",
    "This is a top-10 common password.": "是最常见的密码之一",
    "This is a top-100 common password.": "是最常见的密码之一",
    "This is a very common password.": "是常见密码",
    "This is similar to a commonly used password.": "与常见密码相似",
    "A word by itself is easy to guess.": "只是一个常用单词",
    "Names and surnames by themselves are easy to guess.": "只是一个姓名",
    "Common names and surnames are easy to guess.": "含有常见姓名",
}


class WeakPassword(ValueError):
    """A new password too short or too easy to guess; the message says why, in Chinese."""


def check_password(password: str, context: Iterable[str] = ()) -> None:
    """Raise WeakPassword unless ``password`` is long and hard enough to guess; ``context``: the
    account's own words (name, display name, unit), which must not make it up."""
    if len(password) < MIN_PASSWORD:
        raise WeakPassword(f"密码至少{MIN_PASSWORD}位")
    own = [w for w in context if w]
    found = zxcvbn(password[:100], user_inputs=[*own, *CONTEXT])  # zxcvbn slows on very long input
    if found["score"] >= MIN_SCORE:
        return
    if any(m.get("dictionary_name") == "user_inputs" and m["matched_word"] in {w.lower() for w in own}
           for m in found["sequence"]):
        why = "含有账号名、姓名或单位名称"
    elif any(m.get("dictionary_name") == "user_inputs" for m in found["sequence"]):
        why = "含有“12345”“woaini”等常见词"
    else:
        why = WARNINGS.get(found["feedback"]["warning"], "")
    raise WeakPassword(f"密码太容易被猜到{'：' + why if why else ''}。请换一个更长、更不规则的密码，例如几个不相关的词加数字和符号")
