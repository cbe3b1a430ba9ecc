"""派单通知's address book (HOTLINE_UNIT_CONTACTS_FILE): read once at start, refused with what is
wrong, and only where mail can go out about the ledger's tickets."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from config.settings import Settings
from config.unit_contacts import UnitContactsError, load_unit_contacts

EMAIL = {"email_imap_url": SecretStr("imap://u:p@127.0.0.1:1/INBOX"), "email_smtp_url": SecretStr("smtp://127.0.0.1:1"),
         "email_address": "12345@city.gov.cn"}


def written(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "unit_contacts.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_unit_has_one_address_or_several(tmp_path: Path) -> None:
    path = written(tmp_path, "城市管理和综合执法局: CGJ-12345@City.gov.cn\n"
                             "供电公司: [dispatch@power.cn, duty@power.cn, dispatch@power.cn]\n")
    assert load_unit_contacts(path) == {"城市管理和综合执法局": ("cgj-12345@city.gov.cn",),
                                        "供电公司": ("dispatch@power.cn", "duty@power.cn")}
    assert load_unit_contacts(written(tmp_path, "# 暂无\n")) == {}


@pytest.mark.parametrize(("text", "said"), [
    ("- cgj@city.gov.cn\n", "expected a mapping of each unit"),
    ("城管局: []\n", "'城管局': expected an address or a list of addresses"),
    ("城管局: {a: b}\n", "'城管局': expected an address or a list of addresses"),
    ("城管局: [cgj@city.gov.cn, 城管局值班室]\n", "城管局: not an e-mail address: '城管局值班室'"),
    ("城管局: [a\n", "not valid YAML"),
])
def test_a_file_that_does_not_read_names_what_is_wrong(tmp_path: Path, text: str, said: str) -> None:
    with pytest.raises(UnitContactsError, match=said.replace("[", r"\[")):
        load_unit_contacts(written(tmp_path, text))


def test_the_setting_needs_the_mailbox_and_the_local_ledger(tmp_path: Path) -> None:
    path = written(tmp_path, "城管局: cgj@city.gov.cn\n")
    base = Settings(_env_file=None)  # type: ignore[call-arg]
    assert base.unit_contacts_file is None  # off by default
    assert Settings(_env_file=None, unit_contacts_file=path, **EMAIL).unit_contacts_file == path  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="needs the e-mail channel"):
        Settings(_env_file=None, unit_contacts_file=path)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="needs HOTLINE_TICKET_BACKEND=local"):
        Settings(_env_file=None, unit_contacts_file=path, ticket_backend="open311", open311_url="https://311.city.gov.cn/v2",  # type: ignore[call-arg]
                 open311_api_key=SecretStr("k-0123456789"), open311_default_service_code="other", **EMAIL)
    with pytest.raises(ValidationError, match="HOTLINE_UNIT_CONTACTS_FILE: .*nothing.yml: cannot be read"):
        Settings(_env_file=None, unit_contacts_file=tmp_path / "nothing.yml", **EMAIL)  # type: ignore[call-arg]
    assert Settings(_env_file=None, unit_contacts_file=" ").unit_contacts_file is None  # type: ignore[call-arg]
