"""派单通知's address book: the e-mail addresses each 承办单位 is told at when a ticket is sent to it
(``HOTLINE_UNIT_CONTACTS_FILE``). A YAML mapping of the unit, written as tickets name it in 承办部门,
to one address or a list of them:

    城市管理和综合执法局: cgj-12345@city.gov.cn
    供电公司: [dispatch@power.example.cn, duty@power.example.cn]

Read once at start; a file that does not read stops the start, naming what is wrong.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ADDRESS = re.compile(r"[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+")
MAX_ADDRESSES = 10  # per unit: a duty mailbox and a few people, not a mailing list


class UnitContactsError(ValueError):
    """The contacts file cannot be used: the message names the file and the entry."""


def load_unit_contacts(path: Path) -> dict[str, tuple[str, ...]]:
    """The file's units and their addresses (lower-cased, each once); UnitContactsError otherwise."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UnitContactsError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    except yaml.YAMLError as exc:
        raise UnitContactsError(f"{path}: not valid YAML ({exc})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UnitContactsError(f"{path}: expected a mapping of each unit to its e-mail address(es)")
    contacts: dict[str, tuple[str, ...]] = {}
    for unit, given in data.items():
        name = str(unit).strip()
        listed = [given] if isinstance(given, str) else given
        if not name or not isinstance(listed, list) or not listed:
            raise UnitContactsError(f"{path}: {unit!r}: expected an address or a list of addresses")
        addresses = [str(a).strip().lower() for a in listed]
        wrong = [a for a in addresses if not ADDRESS.fullmatch(a)]
        if wrong:
            raise UnitContactsError(f"{path}: {name}: not an e-mail address: {wrong[0]!r}")
        if len(set(addresses)) > MAX_ADDRESSES:
            raise UnitContactsError(f"{path}: {name}: at most {MAX_ADDRESSES} addresses")
        contacts[name] = tuple(dict.fromkeys(addresses))
    return contacts
