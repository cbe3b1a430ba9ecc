"""The gateway's error tree, mapped to HTTP answers in one place (``install``).

    HotlineError                      (500, generic)
    ├── StartupError                  service unreachable at start: names the setting to fix
    ├── ServiceUnavailable            503 + Retry-After: Redis or the ledger is down right now;
    │                                 the sender should retry (nothing was accepted)
    └── ApiError                      4xx with a Chinese ``detail`` the citizen or operator can read
        ├── BadInput                  400/422: empty or oversized text, malformed JSON
        ├── AuthError                 401: missing or wrong token
        ├── Forbidden                 403: valid token, not allowed
        ├── NotFound                  404: unknown session or ticket
        ├── Conflict                  409: transition not allowed
        └── RateLimited               429: too many messages from one session

The ticket client's own errors (``ticket_client.base``) are answered here too: TicketNotFound 404,
InvalidTransition 409 (StatusManagedByPlatform among them: the open311 platform owns the
workflow; NoteRefused, a progress note a closed ticket or the platform does not take, with its
own wording, and AssistRefused, a 协办意见 of a unit that is no 协办 of the ticket or on a done or
merged one, with its own; CorrectionRefused, a 改派 of a done ticket or where the platform routes, and
MergeRefused, a 并单 that would not hold or a step taken on a merged ticket, and WithdrawRefused,
a 撤单 of a done ticket, of a main others are merged into or where the platform owns the
workflow, and ExtendRefused, a 延期 of a done or merged ticket, of one without a 办理时限, to a
date not later than it has, or where the platform owns the workflow, and ExtensionRequestRefused,
a 延期申请 when one waits already or a decision when none does, with theirs too),
InvalidNote 400 (an empty or over-long progress note), PlatformUnavailable 503 +
Retry-After, PlatformRejected 502 (the ticket platform refused a filing for good: the operator's
retry would be refused again).

Channel adapters raise ``channels.base.ChannelError`` subclasses (bad signature, malformed
payload, ignored event); those carry their own status code and are mapped here too. Errors of
libraries underneath (redis, SQLAlchemy) are translated at the edge of the module using them.
"""

from __future__ import annotations

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from channels.base import ChannelError, IgnoredEvent, well_formed
from ticket_client.base import (
    AssistRefused,
    CorrectionRefused,
    ExtendRefused,
    ExtensionRequestRefused,
    InvalidNote,
    InvalidTransition,
    MergeRefused,
    NoteRefused,
    PlatformRejected,
    PlatformUnavailable,
    TicketNotFound,
    WithdrawRefused,
)

log = structlog.get_logger(__name__)


class HotlineError(Exception):
    status_code = 500

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class StartupError(HotlineError):
    pass


class ServiceUnavailable(HotlineError):
    status_code = 503


class ApiError(HotlineError):
    status_code = 400


class BadInput(ApiError):
    status_code = 400


class AuthError(ApiError):
    status_code = 401


class Forbidden(ApiError):
    status_code = 403


class NotFound(ApiError):
    status_code = 404


class Conflict(ApiError):
    status_code = 409


class RateLimited(ApiError):
    status_code = 429


def _json(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    # a detail may quote what was sent, half an emoji included: UTF-8 cannot hold that
    return JSONResponse({"detail": well_formed(detail)}, status_code=status, headers=headers)


def answer(exc: Exception) -> Response | None:
    """The HTTP answer for an error of the tree or of the layers below (None: not ours, a 500).

    Used by the app's exception handlers and by the hot webhook path, which runs before them."""
    if isinstance(exc, HotlineError):
        headers = {"Retry-After": "5"} if isinstance(exc, ServiceUnavailable) else None
        if exc.status_code >= 500:
            log.warning("request_failed", error=type(exc).__name__, detail=exc.detail)
        return _json(exc.status_code, exc.detail, headers)
    if isinstance(exc, IgnoredEvent):
        return PlainTextResponse("success", status_code=200)
    if isinstance(exc, ChannelError):
        cause = repr(exc.__cause__) if exc.__cause__ is not None else None
        log.info("channel_request_refused", error=type(exc).__name__, detail=exc.message, cause=cause)
        headers = {"Retry-After": "5"} if exc.status_code in (429, 503) else None
        return _json(exc.status_code, exc.message, headers)
    if isinstance(exc, TicketNotFound):
        return _json(404, f"工单不存在：{exc}")
    if isinstance(exc, AssistRefused):
        return _json(409, f"不能提交协办意见：{exc}")
    if isinstance(exc, NoteRefused):  # before InvalidTransition: a note changes no status
        return _json(409, f"不能添加办理进展：{exc}")
    if isinstance(exc, CorrectionRefused):
        return _json(409, f"不能改派：{exc}")
    if isinstance(exc, MergeRefused):
        return _json(409, f"并单：{exc}")
    if isinstance(exc, WithdrawRefused):
        return _json(409, f"不能撤单：{exc}")
    if isinstance(exc, ExtensionRequestRefused):  # before ExtendRefused: it is one
        return _json(409, f"延期申请：{exc}")
    if isinstance(exc, ExtendRefused):
        return _json(409, f"不能延期：{exc}")
    if isinstance(exc, InvalidTransition):
        return _json(409, f"状态变更不允许：{exc}")
    if isinstance(exc, InvalidNote):
        return _json(400, str(exc))
    if isinstance(exc, PlatformUnavailable):
        log.warning("ledger_unavailable", detail=str(exc))
        return _json(503, "工单系统暂时不可用，请稍后重试", {"Retry-After": "5"})
    if isinstance(exc, PlatformRejected):
        said = "；".join(f"{code} {text}".strip() for code, text in exc.errors) or f"HTTP {exc.status}"
        log.warning("platform_rejected", detail=str(exc))
        return _json(502, f"工单平台拒绝登记该工单：{said}")
    return None


def install(app: FastAPI) -> None:
    """Map every error of the tree (and of the layers below) to its HTTP answer."""

    async def _known(_: Request, exc: Exception) -> Response:
        response = answer(exc)
        assert response is not None  # registered only for the types ``answer`` knows
        return response

    for kind in (
        HotlineError,
        ChannelError,
        TicketNotFound,
        InvalidTransition,
        InvalidNote,
        PlatformUnavailable,
        PlatformRejected,
    ):
        app.add_exception_handler(kind, _known)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            problems.append(f"{where or '请求'}: {err.get('msg', '')}")
        return _json(422, "请求格式不正确：" + "；".join(problems))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _json(exc.status_code, str(exc.detail), getattr(exc, "headers", None))
