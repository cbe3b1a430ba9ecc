"""The official account's custom menu: the shipped file, WeChat's rules (each refusal names its
button), publishing through the local fake WeChat API with the shared access token, and
``hotline wechat menu`` (Redis is the real test server, never a fake)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as sync_redis
import yaml
from typer.testing import CliRunner

from channels.base import MENU_KEYS
from channels.wechat.api import WechatApi, WechatApiError
from channels.wechat.fakeapi import FakeWechatApi
from channels.wechat.menu import DEFAULT_FILE, HOTLINE_KEYS, MenuError, check_menu, load_menu, publish
from config.settings import Settings, get_settings
from gateway.cli import app as cli
from gateway.redis_conn import connect
from tests.channels.test_wechat import FIXTURES, MP, OA
from tests.conftest import free_port

# The shipped menu, exactly as WeChat's /cgi-bin/menu/create takes it.
SHIPPED: dict[str, Any] = {
    "button": [
        {"name": "我要反映", "type": "click", "key": "hotline:report"},
        {"name": "进度查询", "type": "click", "key": "hotline:progress"},
        {
            "name": "更多服务",
            "sub_button": [
                {"name": "常见问题", "type": "click", "key": "hotline:faq"},
                {"name": "人工客服", "type": "click", "key": "hotline:human"},
            ],
        },
    ]
}
TOKEN_KEY = f"hl:wx:token:{OA.appid}"


def write(folder: Path, text: str) -> Path:
    path = folder / "wechat_menu.yml"
    path.write_text(text, encoding="utf-8")
    return path


# --- the shipped file -----------------------------------------------------------------------------
def test_the_shipped_menu_is_valid_and_holds_the_bots_four_keys() -> None:
    assert DEFAULT_FILE == Path(__file__).parents[2] / "config" / "wechat_menu.yml"
    menu = load_menu(DEFAULT_FILE)
    assert menu == SHIPPED
    clicks = {b["key"]: b["name"] for top in menu["button"] for b in [top, *top.get("sub_button", [])] if "key" in b}
    assert clicks == MENU_KEYS  # each button says what the console shows for its tap
    assert HOTLINE_KEYS == {"hotline:report", "hotline:progress", "hotline:faq", "hotline:human"}


def test_the_shipped_examples_are_valid_once_uncommented() -> None:
    """The file's commented view and miniprogram buttons, added as the file says (remove the "# ")."""
    lines = DEFAULT_FILE.read_text(encoding="utf-8").splitlines()
    uncommented = [line.replace("# ", "", 1) if line.startswith("      # ") else line for line in lines]
    more = check_menu(yaml.safe_load("\n".join(uncommented)))["button"][2]["sub_button"]
    assert [b["type"] for b in more] == ["click", "click", "view", "miniprogram"]
    assert more[2] == {"name": "政务服务网", "type": "view", "url": "https://zwfw.example.gov.cn/"}
    assert more[3] == {"name": "掌上办事", "type": "miniprogram", "url": "https://zwfw.example.gov.cn/",
                       "appid": "wx1234567890abcdef", "pagepath": "pages/index/index"}


# --- WeChat's rules ---------------------------------------------------------------------------------
REPORT = "  - {name: 我要反映, type: click, key: 'hotline:report'}\n"
MORE = "  - name: 更多服务\n    sub_button:\n"
FAQ = "      - {name: 常见问题, type: click, key: 'hotline:faq'}\n"
KEYS = "(hotline:report, hotline:progress, hotline:faq, hotline:human)"

REFUSED = [
    # the menu
    ("button:\n" + REPORT * 4, "the menu has 4 top-level buttons: WeChat allows 1 to 3"),
    ("button: []\n", "the menu has 0 top-level buttons: WeChat allows 1 to 3"),
    ("{}\n", "button is required"),
    ("button:\n" + REPORT + "matchrule: {sex: '1'}\n", "unknown field 'matchrule'"),
    # sub-buttons
    ("button:\n" + MORE + FAQ * 6, "button 1 (更多服务): sub_button holds 6 buttons: WeChat allows 1 to 5"),
    ("button:\n  - {name: 更多服务, sub_button: []}\n", "button 1 (更多服务): sub_button holds 0 buttons: WeChat allows 1 to 5"),
    ("button:\n  - name: 更多服务\n    type: click\n    key: more\n    sub_button:\n" + FAQ,
     "button 1 (更多服务): has sub_button, so it takes no type or key of its own"),
    ("button:\n" + MORE + "      - {name: 常见问题, key: 'hotline:faq'}\n",
     "button 1 (更多服务), sub-button 1 (常见问题): needs a type (click, view or miniprogram)"),
    ("button:\n" + MORE + "      - name: 常见问题\n        sub_button: []\n",
     "button 1 (更多服务), sub-button 1 (常见问题): a sub-button cannot have sub_button: WeChat's menu has two levels"),
    # names
    ("button:\n  - {name: '', type: click, key: a}\n", "button 1: name must not be empty"),
    ("button:\n  - {name: '  ', type: click, key: a}\n", "button 1: name must not be empty"),
    ("button:\n  - {type: click, key: a}\n", "button 1: name is required"),
    ("button:\n  - {name: 12345, type: click, key: a}\n", "button 1: name: Input should be a valid string"),
    ("button:\n  - {name: 我要反映问题, type: click, key: 'hotline:report'}\n",
     "button 1 (我要反映问题): name must be at most 16 bytes of UTF-8 (a Chinese character is 3), it has 18"),
    ("button:\n" + MORE + f"      - {{name: {'办' * 21}, type: click, key: 'hotline:faq'}}\n",
     f"button 1 (更多服务), sub-button 1 ({'办' * 21}): name must be at most 60 bytes of UTF-8 "
     "(a Chinese character is 3), it has 63"),
    # types and their fields
    ("button:\n" + REPORT + "  - {name: 进度查询}\n", "button 2 (进度查询): needs a type (click, view or miniprogram) or sub_button"),
    ("button:\n  - {name: 扫一扫, type: scancode_push, key: scan}\n",
     "button 1 (扫一扫): type 'scancode_push' is not supported here (click, view or miniprogram)"),
    ("button:\n" + REPORT + "  - {name: 进度查询, type: click}\n", "button 2 (进度查询): a click button needs key"),
    ("button:\n" + REPORT + "  - {name: 进度查询, type: click, key: ''}\n", "button 2 (进度查询): a click button needs key"),
    ("button:\n" + REPORT + f"  - {{name: 进度查询, type: click, key: {'k' * 129}}}\n",
     "button 2 (进度查询): key must be at most 128 bytes, it has 129"),
    ("button:\n  - {name: 我要反映, type: click, key: 'hotline:reprot'}\n",
     f"button 1 (我要反映): key 'hotline:reprot' is not one the bot answers {KEYS}"),
    ("button:\n  - {name: 我要反映, type: click, key: 'hotline:report', url: 'https://a.example/'}\n",
     "button 1 (我要反映): url has no use on a click button"),
    ("button:\n  - {name: 政务服务, type: view}\n", "button 1 (政务服务): a view button needs url"),
    ("button:\n  - {name: 政务服务, type: view, url: 'ftp://zwfw.example.gov.cn/'}\n",
     "button 1 (政务服务): url must be an http or https address, not 'ftp://zwfw.example.gov.cn/'"),
    ("button:\n  - {name: 政务服务, type: view, url: 'https://'}\n",
     "button 1 (政务服务): url must be an http or https address, not 'https://'"),
    ("button:\n  - {name: 政务服务, type: view, url: 'https://a.example/" + "p" * 1007 + "'}\n",
     "button 1 (政务服务): url must be at most 1024 bytes, it has 1025"),
    ("button:\n  - {name: 掌上办事, type: miniprogram, appid: wx1234567890abcdef, url: 'https://a.example/'}\n",
     "button 1 (掌上办事): a miniprogram button needs pagepath"),
    ("button:\n  - {name: 掌上办事, type: miniprogram, appid: wx1234567890abcdef, pagepath: pages/index/index}\n",
     "button 1 (掌上办事): a miniprogram button needs url"),
    ("button:\n  - {name: 掌上办事, type: miniprogram, pagepath: pages/index/index, url: 'https://a.example/'}\n",
     "button 1 (掌上办事): a miniprogram button needs appid"),
    ("button:\n" + REPORT + "  - {name: 进度查询, type: click, key: 'hotline:progress', colour: red}\n",
     "button 2 (进度查询): unknown field 'colour'"),
]


@pytest.mark.parametrize(("text", "problem"), REFUSED, ids=[p for _, p in REFUSED])
def test_each_rule_is_enforced_naming_the_file_and_button(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(MenuError) as refused:
        load_menu(write(tmp_path, text))
    assert str(refused.value) == f"wechat_menu.yml: {problem}"


def test_the_limits_themselves_are_allowed(tmp_path: Path) -> None:
    text = (
        "button:\n"
        "  - {name: 热线服务1234, type: click, key: 'hotline:report'}\n"  # 16 bytes
        f"  - {{name: 进度查询, type: click, key: {'k' * 128}}}\n"  # a key of the city's own
        "  - name: 更多服务\n    sub_button:\n"
        + FAQ * 4
        + f"      - {{name: {'办' * 20}, type: view, url: 'https://a.example/{'p' * 1006}'}}\n"
    )
    menu = load_menu(write(tmp_path, text))
    assert len(menu["button"]) == 3 and len(menu["button"][2]["sub_button"]) == 5


def test_every_problem_is_named_on_a_line_of_its_own(tmp_path: Path) -> None:
    text = "button:\n  - {name: 我要反映, type: click}\n  - {name: 进度查询, type: click, key: 'hotline:progres'}\n"
    with pytest.raises(MenuError) as refused:
        load_menu(write(tmp_path, text))
    assert str(refused.value).splitlines() == [
        "wechat_menu.yml: button 1 (我要反映): a click button needs key",
        f"wechat_menu.yml: button 2 (进度查询): key 'hotline:progres' is not one the bot answers {KEYS}",
    ]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"button: [\n", "wechat_menu.yml: not valid YAML"),
        (b"- name: x\n", "wechat_menu.yml: expected a mapping with a button: list"),
        ("button: 我要反映\n".encode("gbk"), "wechat_menu.yml: not UTF-8 text"),
    ],
)
def test_a_file_that_is_no_menu_is_named(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "wechat_menu.yml"
    path.write_bytes(content)
    with pytest.raises(MenuError, match=f"^{problem}"):
        load_menu(path)
    with pytest.raises(MenuError, match="nowhere.yml: cannot be read"):
        load_menu(tmp_path / "nowhere.yml")


# --- publishing through the fake WeChat API ------------------------------------------------------------
@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Any]:
    handle = await connect(settings)
    yield handle.client
    await handle.close()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def test_publishing_sends_wechats_json_with_the_gateways_token(
    fake: FakeWechatApi, redis: Any, http: httpx.AsyncClient
) -> None:
    token = await WechatApi(http, redis, fake.url, OA).access_token()  # as the running gateway holds it
    await publish(WechatApi(http, redis, fake.url, OA), load_menu(DEFAULT_FILE))
    assert fake.menus == [SHIPPED]
    assert fake.token_calls == 1 and await redis.get(TOKEN_KEY) == token  # no second token, none invalidated
    shown = await WechatApi(http, redis, fake.url, OA).get_menu()
    assert shown["is_menu_open"] == 1
    assert shown["selfmenu_info"]["button"][2] == {"name": "更多服务", "sub_button": {"list": SHIPPED["button"][2]["sub_button"]}}


async def test_the_menu_goes_as_utf8_which_is_what_wechat_takes(fake: FakeWechatApi, redis: Any, http: httpx.AsyncClient) -> None:
    """WeChat refuses a menu whose Chinese comes as \\uXXXX escapes (40033); the fake does too."""
    token = await WechatApi(http, redis, fake.url, OA).access_token()
    escaped = await http.post(f"{fake.url}/cgi-bin/menu/create", params={"access_token": token},
                              content=json.dumps(SHIPPED), headers={"content-type": "application/json"})
    assert escaped.json()["errcode"] == 40033 and fake.menus == []
    await publish(WechatApi(http, redis, fake.url, OA), SHIPPED)
    assert fake.menus == [SHIPPED]


async def test_a_rejected_token_is_replaced_once_and_the_menu_sent(
    fake: FakeWechatApi, redis: Any, http: httpx.AsyncClient
) -> None:
    api = WechatApi(http, redis, fake.url, OA)
    await api.access_token()
    fake.revoke_tokens()  # someone else fetched a new token: ours is 40001 now
    await publish(api, SHIPPED)
    assert fake.menus == [SHIPPED] and fake.token_calls == 2
    assert await redis.get(TOKEN_KEY) == "ACCESS_TOKEN-2"


async def test_wechats_refusal_is_raised_with_its_errcode(fake: FakeWechatApi, redis: Any, http: httpx.AsyncClient) -> None:
    fake.fail_next(48001)
    with pytest.raises(WechatApiError) as refused:
        await publish(WechatApi(http, redis, fake.url, OA), SHIPPED)
    assert (refused.value.errcode, refused.value.errmsg) == (48001, "api unauthorized")
    assert fake.menus == []


async def test_a_mini_program_or_an_invalid_menu_sends_nothing(fake: FakeWechatApi, redis: Any, http: httpx.AsyncClient) -> None:
    with pytest.raises(MenuError, match="is a mini-program .*only an official account has a custom menu"):
        await publish(WechatApi(http, redis, fake.url, MP), SHIPPED)
    with pytest.raises(MenuError, match="^menu: the menu has 6 top-level buttons"):
        await publish(WechatApi(http, redis, fake.url, OA), {"button": SHIPPED["button"] * 2})
    assert fake.menus == [] and fake.token_calls == 0


# --- hotline wechat menu ----------------------------------------------------------------------------------
@pytest.fixture
def wechat_api() -> Iterator[FakeWechatApi]:
    """The fake WeChat API on a loop of its own thread: the command runs its own (asyncio.run)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    api = FakeWechatApi(fixtures=FIXTURES, secrets={OA.appid: OA.secret})
    asyncio.run_coroutine_threadsafe(api.start(), loop).result(10)
    yield api
    asyncio.run_coroutine_threadsafe(api.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


@pytest.fixture
def environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clean_redis: str, wechat_api: FakeWechatApi
) -> Iterator[pytest.MonkeyPatch]:
    """One official account ``oa`` and a mini-program ``city_mp``, the test's Redis, the fake API."""
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    monkeypatch.setenv("HOTLINE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HOTLINE_REDIS_URL", clean_redis)
    monkeypatch.setenv("HOTLINE_WECHAT_API_BASE", wechat_api.url)
    for name, account in (("OA", OA), ("CITY_MP", MP)):
        for field in ("kind", "appid", "secret", "token"):
            monkeypatch.setenv(f"HOTLINE_WECHAT_{name}_{field.upper()}", getattr(account, field))
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_check_prints_the_json_and_sends_nothing(environment: pytest.MonkeyPatch, wechat_api: FakeWechatApi,
                                                 tmp_path: Path) -> None:
    checked = CliRunner().invoke(cli, ["wechat", "menu", "--check"])
    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.stdout) == SHIPPED and "nothing sent" in checked.stderr
    wrong = write(tmp_path, "button:\n" + REPORT + "  - {name: 进度查询, type: click, key: 'hotline:progres'}\n")
    refused = CliRunner().invoke(cli, ["wechat", "menu", "--check", "--file", str(wrong)])
    assert refused.exit_code == 1 and refused.stdout == ""
    assert f"invalid menu: wechat_menu.yml: button 2 (进度查询): key 'hotline:progres' is not one the bot answers {KEYS}" in refused.stderr
    assert wechat_api.token_calls == 0 and wechat_api.menus == []


def test_the_command_publishes_with_the_gateways_token(environment: pytest.MonkeyPatch, wechat_api: FakeWechatApi,
                                                       settings: Settings) -> None:
    async def gateway_token() -> str:  # what the running gateway fetched and keeps in Redis
        handle = await connect(settings)
        try:
            async with httpx.AsyncClient() as http:
                return await WechatApi(http, handle.client, wechat_api.url, OA).access_token()
        finally:
            await handle.close()

    token = asyncio.run(gateway_token())
    published = CliRunner().invoke(cli, ["wechat", "menu"])  # the only official account: oa
    assert published.exit_code == 0, published.output
    assert wechat_api.menus == [SHIPPED] and json.loads(published.stdout) == SHIPPED
    assert f"published {DEFAULT_FILE} to the official account oa ({OA.appid})" in published.stderr
    assert wechat_api.token_calls == 1  # the gateway's token, not a new one that would invalidate it
    assert sync_redis.Redis.from_url(settings.redis_url, decode_responses=True).get(TOKEN_KEY) == token

    wechat_api.fail_next(48001)
    refused = CliRunner().invoke(cli, ["wechat", "menu", "OA"])
    assert refused.exit_code == 1 and refused.stdout == ""
    assert "WeChat did not take the menu: 48001: api unauthorized" in refused.stderr
    assert wechat_api.menus == [SHIPPED]


def test_an_unreachable_api_exits_1(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("HOTLINE_WECHAT_API_BASE", f"http://127.0.0.1:{free_port()}")
    get_settings.cache_clear()
    result = CliRunner().invoke(cli, ["wechat", "menu", "oa"])
    assert result.exit_code == 1
    assert "WeChat did not take the menu: -2: WeChat API unreachable" in result.stderr


@pytest.mark.parametrize(
    ("args", "change", "said"),
    [
        (["city_mp"], {}, "city_mp is a mini-program (HOTLINE_WECHAT_CITY_MP_KIND=mp): only an official account has a custom menu"),
        (["county"], {}, "no WeChat account 'county' (official accounts: oa); set HOTLINE_WECHAT_COUNTY_APPID"),
        ([], {"HOTLINE_WECHAT_OA_KIND": "mp"}, "no official account configured: set HOTLINE_WECHAT_<NAME>_APPID"),
        ([], {"HOTLINE_WECHAT_COUNTY_APPID": "wx0000000000county", "HOTLINE_WECHAT_COUNTY_TOKEN": "t"},
         "several official accounts (county, oa): name the one to publish to, e.g. hotline wechat menu county"),
        (["oa"], {"HOTLINE_WECHAT_OA_SECRET": ""}, "HOTLINE_WECHAT_OA_SECRET is not set: the menu API needs the AppSecret"),
    ],
)
def test_the_account_must_be_one_official_account(
    environment: pytest.MonkeyPatch, wechat_api: FakeWechatApi, args: list[str], change: dict[str, str], said: str
) -> None:
    for name, value in change.items():
        environment.setenv(name, value)
    get_settings.cache_clear()
    result = CliRunner().invoke(cli, ["wechat", "menu", *args])
    assert result.exit_code == 2 and said in result.stderr, result.output
    assert wechat_api.token_calls == 0 and wechat_api.menus == []
