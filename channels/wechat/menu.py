"""An official account's custom menu (自定义菜单): a YAML file checked against WeChat's rules for
``/cgi-bin/menu/create``, then published through the account's API client (``hotline wechat menu``).

The rules are checked here, before anything is sent, because WeChat's own refusal names neither the
file nor the button (``40018 invalid button name size``), and WeChat cannot know that
``hotline:reprot`` is a button the bot will never answer. The file mirrors WeChat's JSON, so what
``load_menu`` returns is exactly the body WeChat receives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

import config
from channels.base import MENU_KEYS
from channels.wechat.api import WechatApi

DEFAULT_FILE = Path(config.__file__).resolve().parent / "wechat_menu.yml"

# The click keys the bot answers (bot/dialogue.py). Any other ``hotline:`` key is a typo: a button
# that opens the chat and gets no answer.
HOTLINE_KEYS: frozenset[str] = frozenset(MENU_KEYS)

# WeChat's limits (menu/create). Lengths are bytes of UTF-8: a Chinese character is three.
MAX_BUTTONS, MAX_SUB_BUTTONS = 3, 5
MAX_NAME_BYTES, MAX_SUB_NAME_BYTES = 16, 60
MAX_KEY_BYTES, MAX_URL_BYTES = 128, 1024
# What each supported type needs; the other action fields have no use on it and are refused, as
# they usually mean a wrong type. (WeChat has more types, scancode_push…; the bot answers none.)
NEEDS: dict[str, tuple[str, ...]] = {"click": ("key",), "view": ("url",), "miniprogram": ("appid", "pagepath", "url")}
ACTION_FIELDS = ("key", "url", "appid", "pagepath")
TYPES = "click, view or miniprogram"


class MenuError(ValueError):
    """The menu cannot be published as it is, or not to that account; nothing was sent. The
    message names the file and the button, one line per problem."""


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


class SubButton(BaseModel):
    """A button that acts when tapped: any sub-button, and a top-level button without sub-buttons."""

    model_config = ConfigDict(extra="forbid")

    max_name_bytes: ClassVar[int] = MAX_SUB_NAME_BYTES

    name: str
    type: str | None = None
    key: str | None = None
    url: str | None = None
    appid: str | None = None
    pagepath: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _two_levels(cls, data: Any) -> Any:
        if cls is SubButton and isinstance(data, dict) and "sub_button" in data:
            raise ValueError("a sub-button cannot have sub_button: WeChat's menu has two levels")
        return data

    @model_validator(mode="after")
    def _wechat_rules(self) -> Self:
        if not self.name.strip():
            raise ValueError("name must not be empty")
        if _size(self.name) > self.max_name_bytes:
            raise ValueError(
                f"name must be at most {self.max_name_bytes} bytes of UTF-8 (a Chinese character is 3), "
                f"it has {_size(self.name)}"
            )
        self._check_action()
        return self

    def _check_action(self) -> None:
        if self.type is None:
            raise ValueError(f"needs a type ({TYPES})")
        if self.type not in NEEDS:
            raise ValueError(f"type {self.type!r} is not supported here ({TYPES})")
        for field in ACTION_FIELDS:
            value = getattr(self, field)
            if field in NEEDS[self.type] and not value:
                raise ValueError(f"a {self.type} button needs {field}")
            if field not in NEEDS[self.type] and value is not None:
                raise ValueError(f"{field} has no use on a {self.type} button")
        if self.key is not None:
            if _size(self.key) > MAX_KEY_BYTES:
                raise ValueError(f"key must be at most {MAX_KEY_BYTES} bytes, it has {_size(self.key)}")
            if self.key.startswith("hotline:") and self.key not in HOTLINE_KEYS:
                raise ValueError(f"key {self.key!r} is not one the bot answers ({', '.join(MENU_KEYS)})")
        if self.url is not None:
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"url must be an http or https address, not {self.url!r}")
            if _size(self.url) > MAX_URL_BYTES:
                raise ValueError(f"url must be at most {MAX_URL_BYTES} bytes, it has {_size(self.url)}")


class Button(SubButton):
    """A top-level button: either a menu of 1-5 sub-buttons (and no action of its own) or an action."""

    max_name_bytes: ClassVar[int] = MAX_NAME_BYTES

    sub_button: list[SubButton] | None = None

    def _check_action(self) -> None:
        if self.sub_button is None:
            if self.type is None:
                raise ValueError(f"needs a type ({TYPES}) or sub_button")
            super()._check_action()
            return
        if not 1 <= len(self.sub_button) <= MAX_SUB_BUTTONS:
            raise ValueError(
                f"sub_button holds {len(self.sub_button)} buttons: WeChat allows 1 to {MAX_SUB_BUTTONS}"
            )
        if present := [f for f in ("type", *ACTION_FIELDS) if getattr(self, f) is not None]:
            raise ValueError(f"has sub_button, so it takes no {' or '.join(present)} of its own")


class Menu(BaseModel):
    """The whole menu, as ``/cgi-bin/menu/create`` takes it: ``{"button": [...]}``."""

    model_config = ConfigDict(extra="forbid")

    button: list[Button]

    @field_validator("button")
    @classmethod
    def _count(cls, value: list[Button]) -> list[Button]:
        if not 1 <= len(value) <= MAX_BUTTONS:
            raise ValueError(f"the menu has {len(value)} top-level buttons: WeChat allows 1 to {MAX_BUTTONS}")
        return value


def _describe(error: ErrorDetails, data: Any, source: str) -> str:
    """One pydantic error as ``<file>: button 3 (更多服务), sub-button 2 (人工客服): <problem>``."""
    where: list[str] = []
    rest = list(error["loc"])
    node = data
    while rest and rest[0] in ("button", "sub_button") and len(rest) > 1 and isinstance(rest[1], int):
        level, index = rest[0], int(rest[1])
        rest = rest[2:]
        items = node.get(level) if isinstance(node, dict) else None
        node = items[index] if isinstance(items, list) and index < len(items) else None
        name = node.get("name") if isinstance(node, dict) else None
        label = f"{'button' if level == 'button' else 'sub-button'} {index + 1}"
        where.append(f"{label} ({name})" if isinstance(name, str) and name.strip() else label)
    field = ".".join(str(part) for part in rest)
    if error["type"] == "value_error":  # ours: the message names its field
        problem = error["msg"].removeprefix("Value error, ")
    elif error["type"] == "extra_forbidden":
        problem = f"unknown field {field!r}"
    elif error["type"] == "missing":
        problem = f"{field} is required"
    else:
        problem = f"{field}: {error['msg']}" if field else error["msg"]
    return ": ".join([source, *([", ".join(where)] if where else []), problem])


def check_menu(data: Any, source: str = "menu") -> dict[str, Any]:
    """``data`` (the file's YAML, or a dict) checked against WeChat's rules: the JSON body for
    ``/cgi-bin/menu/create``. Raises ``MenuError`` with one line per problem, each naming ``source``
    and the button."""
    if not isinstance(data, dict):
        raise MenuError(f"{source}: expected a mapping with a button: list (WeChat's menu JSON as YAML)")
    try:
        menu = Menu.model_validate(data)
    except ValidationError as exc:
        raise MenuError("\n".join(_describe(error, data, source) for error in exc.errors())) from exc
    return menu.model_dump(exclude_none=True)


def load_menu(path: Path | str) -> dict[str, Any]:
    """Read and check a menu file (``config/wechat_menu.yml``): the JSON body WeChat will receive."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MenuError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise MenuError(f"{path.name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except yaml.YAMLError as exc:
        raise MenuError(f"{path.name}: not valid YAML ({exc})") from exc
    return check_menu(data, path.name)


async def publish(api: WechatApi, menu: dict[str, Any]) -> None:
    """Replace the official account's whole menu with ``menu`` (checked again: WeChat's refusal
    would not say which button). The access token is the one the running gateway keeps in Redis,
    so publishing does not invalidate it.

    Raises ``MenuError`` for a mini-program account or an invalid menu (nothing sent), and
    ``WechatApiError`` when WeChat refuses the menu or cannot be reached."""
    if api.account.kind != "oa":
        raise MenuError(
            f"account {api.account.appid} is a mini-program (kind {api.account.kind}): "
            "only an official account has a custom menu"
        )
    await api.create_menu(check_menu(menu))
