"""The hot webhook path: matching, body limits, error answers, fall-through to the framework."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.responses import PlainTextResponse, Response

from channels.base import BadRequest, HookRequest, Webhook
from gateway.app import GatewayApp
from gateway.errors import ServiceUnavailable
from gateway.webhooks import HotPath


async def echo(request: HookRequest) -> Response:
    if request.param == "boom":
        raise RuntimeError("a bug")
    if request.param == "bad":
        raise BadRequest("格式不正确")
    if request.param == "down":
        raise ServiceUnavailable("服务暂时繁忙，请稍后重试")
    text = f"{request.param}|{request.query.get('a', '')}|{request.header('X-Test') or ''}|{len(request.body)}"
    return PlainTextResponse(text)


@pytest.fixture
async def hot_client() -> AsyncIterator[httpx.AsyncClient]:
    app = GatewayApp()

    @app.get("/channels/demo/{name}/more")
    async def more(name: str) -> dict[str, str]:
        return {"framework": name}

    app.hot = HotPath([Webhook("POST", "/demo/", echo, 1000, "/channels/demo/{name}")], max_body_bytes=500)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_hook_sees_param_query_headers_and_body(hot_client: httpx.AsyncClient) -> None:
    r = await hot_client.post("/channels/demo/oa?a=1", content=b"x" * 10, headers={"X-Test": "yes"})
    assert (r.status_code, r.text) == (200, "oa|1|yes|10")


async def test_only_its_method_and_depth_are_hot(hot_client: httpx.AsyncClient) -> None:
    assert (await hot_client.get("/channels/demo/oa/more")).json() == {"framework": "oa"}
    assert (await hot_client.get("/channels/demo/oa")).status_code in (404, 405)
    assert (await hot_client.post("/channels/demo/")).status_code == 404


async def test_body_limit_is_the_smaller_one(hot_client: httpx.AsyncClient) -> None:
    assert (await hot_client.post("/channels/demo/oa", content=b"x" * 500)).status_code == 200
    assert (await hot_client.post("/channels/demo/oa", content=b"x" * 501)).status_code == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(6):
            yield b"x" * 100

    assert (await hot_client.post("/channels/demo/oa", content=chunks())).status_code == 413


async def test_errors_answered_as_everywhere(hot_client: httpx.AsyncClient) -> None:
    r = await hot_client.post("/channels/demo/bad")
    assert (r.status_code, r.json()) == (400, {"detail": "格式不正确"})
    r = await hot_client.post("/channels/demo/down")
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    assert (await hot_client.post("/channels/demo/boom")).status_code == 500
