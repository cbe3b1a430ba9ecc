"""The command line in front of a wrong environment: one line per wrong variable, exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from config.settings import get_settings
from gateway.cli import app

SECRET = "短密钥-x9"  # under 16 characters: refused, and never echoed


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    monkeypatch.setenv("HOTLINE_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


@pytest.mark.parametrize("command", [["settings"], ["serve"], ["admin", "token"], ["admin", "dead-letters"]])
def test_wrong_settings_are_named_not_a_traceback(environment: pytest.MonkeyPatch, command: list[str]) -> None:
    environment.setenv("HOTLINE_PORT", "八千")
    environment.setenv("HOTLINE_PORTAL__LIUYANBAN__SECRET", SECRET)
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2, result.output
    lines = result.output.replace("\n  ", "\0").replace("\n", " ").split("\0")
    assert lines[0].startswith("设置有误 / invalid settings:")
    assert any(line.startswith("HOTLINE_PORT: Input should be a valid integer") for line in lines)
    assert any(line.startswith("HOTLINE_PORTAL__LIUYANBAN__SECRET: HOTLINE_PORTAL__<SOURCE>__SECRET must") for line in lines)
    assert any(line.startswith("HOTLINE_PORTAL__LIUYANBAN__REPLY_URL: Field required") for line in lines)
    assert SECRET not in result.output and "Traceback" not in result.output and "八千" not in result.output


def test_a_backend_missing_its_settings_names_them(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("HOTLINE_TICKET_BACKEND", "open311")
    result = CliRunner().invoke(app, ["settings"])
    assert result.exit_code == 2
    assert "HOTLINE_OPEN311_URL" in result.output and "HOTLINE_OPEN311_API_KEY" in result.output


def test_right_settings_still_print(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("HOTLINE_PORT", "8080")
    result = CliRunner().invoke(app, ["settings"])
    assert result.exit_code == 0, result.output
    assert '"port": 8080' in result.output


def test_time_limits_by_request_type_are_named_when_wrong_and_printed_when_right(
    environment: pytest.MonkeyPatch,
) -> None:
    environment.setenv("HOTLINE_RESOLVE_DAYS_BY_TYPE", "咨询=3,投拆=15")
    result = CliRunner().invoke(app, ["settings"])
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())  # as wrapped to the terminal's width
    assert ("HOTLINE_RESOLVE_DAYS_BY_TYPE: HOTLINE_RESOLVE_DAYS_BY_TYPE names an unknown request type '投拆'; "
            "the types are 投诉、举报、求助、咨询、建议、表扬") in said
    assert "Traceback" not in result.output

    environment.setenv("HOTLINE_RESOLVE_DAYS_BY_TYPE", "咨询=3,表扬=0")
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["settings"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["resolve_days_by_type"] == {"咨询": 3, "表扬": 0} and printed["resolve_days"] == 15
    assert '"咨询": 3' in result.output  # readable, not \u54a8\u8be2
