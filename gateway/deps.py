"""FastAPI dependencies as ``Annotated`` aliases."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Request

from gateway.errors import AuthError, ServiceUnavailable
from gateway.runtime import Runtime
from ticket_client.base import TicketClient


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_tickets(rt: RuntimeDep) -> TicketClient:
    if rt.tickets is None:
        raise ServiceUnavailable("工单系统尚未就绪，请稍后重试")
    return rt.tickets


TicketsDep = Annotated[TicketClient, Depends(get_tickets)]


def require_admin(rt: RuntimeDep, authorization: Annotated[str | None, Header()] = None) -> None:
    """The admin API takes ``Authorization: Bearer $HOTLINE_ADMIN_TOKEN``."""
    expected = rt.settings.admin_token
    given = authorization[7:].strip() if authorization and authorization.lower().startswith("bearer ") else ""
    if not given or not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise AuthError("需要管理令牌（Authorization: Bearer $HOTLINE_ADMIN_TOKEN）")


AdminDep = Annotated[None, Depends(require_admin)]
