"""The deployment files, checked without a container: no image registry is reachable here.

- The Dockerfile's own start command (CMD, read from the file) and its HEALTHCHECK run on this machine: an
  empty database is migrated and /healthz answers.
- deploy/compose.yaml parses and has what a two-app PostgreSQL set-up needs.
- deploy/nginx.conf runs in Debian's nginx (scripts/test installs it) in front of two real app processes on
  one database, with only its upstream, listen and cache addresses substituted: gzip, the static cache,
  the live poll unbuffered and the same whichever process answers it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlmodel import Session, col, select

from server.config import ROOT, SETTING_NAMES, Settings
from server.db import _sqlalchemy_url, alembic_config
from server.models import CheckIn, Role
from server.services import flood
from server.services.scans import code_for
from tests.browser.support import free_port, running_server
from tests.conftest import PG_URL, _admin_sql
from tests.factories import PASSWORD, make_event, make_staff, make_tree, make_venue

DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "deploy" / "compose.yaml"
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
SECRET_KEY = "test-secret-key-0123456789-abcdefghijklmnop"
DONE = "Bạn đã điểm danh thành công"
START_TIMEOUT = 60.0


# --- The Dockerfile ------------------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined and comments dropped."""
    lines = [line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    found = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def instruction(name: str) -> list[str]:
    return [rest for keyword, rest in dockerfile() if keyword == name]


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for rest in instruction("ENV"):
        for pair in shlex.split(rest):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def start_command() -> list[str]:
    (cmd,) = instruction("CMD")
    assert cmd.startswith("["), "CMD in exec form, so the app gets SIGTERM from `docker stop`"
    command: list[str] = json.loads(cmd)
    return command


def health_command() -> str:
    (check,) = instruction("HEALTHCHECK")
    _options, _, command = check.partition(" CMD ")
    assert command, check
    return command


def test_image_runs_as_its_own_user_with_a_health_check() -> None:
    users = instruction("USER")
    assert users and users[-1] not in ("root", "0", "0:0")
    run = " ".join(instruction("RUN"))
    assert f"useradd --system --uid {10001}" in run and users[-1] in run
    assert "--start-period=" in instruction("HEALTHCHECK")[0]  # `serve` migrates before it listens
    assert start_command()[:2] == ["diemdanh", "serve"]


def _container_env(tmp_path: Path, port: int, database_url: str | None) -> dict[str, str]:
    """This machine's environment as the image's: its ENV, then what `docker run -e` would set. The data
    folder and the address are this machine's (the image's /data and 0.0.0.0 are a container's)."""
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    env.update(image_env())
    env.update(
        DIEMDANH_DATA_DIR=str(tmp_path / "data"),
        DIEMDANH_HOST="127.0.0.1",
        DIEMDANH_PORT=str(port),
        DIEMDANH_SECRET_KEY=secrets.token_urlsafe(48),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",  # the venv's `diemdanh`
        PYTHONPATH=str(ROOT),
    )
    if database_url:
        env["DIEMDANH_DATABASE_URL"] = database_url
    return env


@contextmanager
def empty_database(kind: str, tmp_path: Path) -> Iterator[str | None]:
    """None: the image's default, SQLite in the data folder (not there yet); or a new PostgreSQL database."""
    if kind == "sqlite":
        yield None
        return
    head, _, name = PG_URL.rpartition("/")
    db_name = f"{name}_dd_image_{os.getpid()}"
    _admin_sql(PG_URL, f'DROP DATABASE IF EXISTS "{db_name}"')
    _admin_sql(PG_URL, f'CREATE DATABASE "{db_name}"')
    try:
        yield f"{head}/{db_name}"
    finally:
        _admin_sql(PG_URL, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def _healthy(port: int) -> bool:
    try:
        return httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx2.HTTPError:
        return False


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"] if PG_URL else ["sqlite"])
def test_start_command_migrates_an_empty_database_and_answers_healthz(kind: str, tmp_path: Path) -> None:
    port = free_port()
    with empty_database(kind, tmp_path) as database_url:
        env = _container_env(tmp_path, port, database_url)
        settings = Settings.from_env(env)
        assert not settings.is_sqlite or not (tmp_path / "data").exists()  # nothing there before the start
        log = tmp_path / "start.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                start_command(), cwd=ROOT, env=env, stdout=out, stderr=out, start_new_session=True
            )
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while not _healthy(port):
                assert process.poll() is None, f"exited with {process.returncode}:\n{log.read_text()}"
                assert time.monotonic() < deadline, f"no /healthz in {START_TIMEOUT} s:\n{log.read_text()}"
                time.sleep(0.2)
            health = subprocess.run(["sh", "-c", health_command()], env=env, capture_output=True, check=False)
            assert health.returncode == 0, health.stderr

            head = ScriptDirectory.from_config(alembic_config(settings)).get_current_head()
            engine = create_engine(_sqlalchemy_url(settings.database_url))
            try:
                with engine.connect() as conn:
                    assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head
                    assert conn.execute(text("SELECT count(*) FROM check_in")).scalar_one() == 0
            finally:
                engine.dispose()
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)
        # SIGTERM (`docker stop`) is a clean stop; uvicorn re-raises the signal once it has shut down.
        assert process.returncode in (0, -signal.SIGTERM), log.read_text()
        assert "Application shutdown complete" in log.read_text()
        stopped = subprocess.run(["sh", "-c", health_command()], env=env, capture_output=True, check=False)
        assert stopped.returncode != 0  # the health check does fail when nothing answers


# --- The compose file ----------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def _variables(value: str) -> set[str]:
    return set(re.findall(r"\$\{(\w+)", value))


def test_compose_file_runs_two_apps_on_postgresql_behind_the_proxy() -> None:
    doc = compose()
    services = doc["services"]
    assert set(services) == {"db", "migrate", "app1", "app2", "proxy"}
    apps = [services[name] for name in ("migrate", "app1", "app2")]

    for app in apps:
        build = app["build"]
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
        env = app["environment"]
        assert set(env) - {"FORWARDED_ALLOW_IPS"} <= set(SETTING_NAMES), "only settings the app reads"
        assert env["DIEMDANH_ENV"] == "production"
        # Secrets come from the environment (deploy/.env), required, never with a default in the file.
        for name in ("DIEMDANH_SECRET_KEY", "DIEMDANH_BASE_URL"):
            assert env[name] == f"${{{name}:?{env[name].split(':?', 1)[1]}", env[name]
        assert re.fullmatch(
            r"postgresql://diemdanh:\$\{POSTGRES_PASSWORD:\?[^}]+\}@db:5432/diemdanh",
            env["DIEMDANH_DATABASE_URL"],
        )
        assert "appdata:/data" in app["volumes"]
        assert "ports" not in app, "only the proxy is reachable from outside"
    assert services["migrate"]["command"] == ["diemdanh", "migrate"]
    assert services["migrate"]["restart"] == "no"
    assert "command" not in services["app1"] and "command" not in services["app2"]  # the image's CMD
    assert services["app1"]["environment"] == services["app2"]["environment"]  # one secret key for both

    ready = {"db": "service_healthy", "migrate": "service_completed_successfully"}
    for name in ("app1", "app2"):
        assert {k: v["condition"] for k, v in services[name]["depends_on"].items()} == ready
    assert {k: v["condition"] for k, v in services["proxy"]["depends_on"].items()} == {
        "app1": "service_healthy",
        "app2": "service_healthy",
    }
    # Whatever is waited for as healthy has a health check: its own here, or the image's HEALTHCHECK.
    for service in services.values():
        for target, wait in service.get("depends_on", {}).items():
            if wait["condition"] == "service_healthy":
                has_own = "test" in services[target].get("healthcheck", {})
                assert has_own or ("build" in services[target] and instruction("HEALTHCHECK")), target

    db = services["db"]
    assert db["image"].startswith("postgres:15"), "the app image's pg_dump is 15 (Dockerfile)"
    assert db["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert "pgdata:/var/lib/postgresql/data" in db["volumes"]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert set(doc["volumes"]) == {"pgdata", "appdata"}

    proxy = services["proxy"]
    assert proxy["image"].startswith("nginx:")
    mounts = {(COMPOSE.parent / v.split(":")[0]).resolve(): v.split(":")[1] for v in proxy["volumes"]}
    assert mounts == {NGINX_CONF: "/etc/nginx/conf.d/default.conf"}  # the file tested below
    assert proxy["ports"] == ["${DIEMDANH_HTTP_PORT:-80}:80"]

    example = (COMPOSE.parent / "env.example").read_text()
    required = set().union(*(_variables(v) for app in apps for v in app["environment"].values()))
    required |= _variables(db["environment"]["POSTGRES_PASSWORD"])
    assert {n for n in required if n != "DIEMDANH_TIMEZONE"} <= set(re.findall(r"^(\w+)=", example, re.M))


# --- The proxy -----------------------------------------------------------------------------------------


def test_proxy_passes_the_live_poll_through_unbuffered_and_uncached() -> None:
    """The locations of deploy/nginx.conf as nginx picks them for the live poll (the regex location)."""
    config = NGINX_CONF.read_text()
    regex_locations = dict(re.findall(r"location ~ (\S+) \{([^}]*)\}", config))
    for path in ("/events/42/live", "/api/v1/events/42/live"):
        (block,) = [body for pattern, body in regex_locations.items() if re.match(pattern, path)]
        assert "proxy_buffering off;" in block and "proxy_cache off;" in block
    for path in ("/events/42", "/events/42/live/x", "/static/app.css"):
        assert not [pattern for pattern in regex_locations if re.match(pattern, path)]


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is missing: scripts/test installs Debian's package")
        pytest.skip("nginx is not installed (scripts/test installs Debian's package)")
    return found


def render_proxy_config(upstreams: tuple[int, int], listen: int, cache: Path) -> str:
    """deploy/nginx.conf with the compose host names and paths made this machine's, and nothing else."""
    config = NGINX_CONF.read_text()
    for old, new in {
        "server app1:8000 ": f"server 127.0.0.1:{upstreams[0]} ",
        "server app2:8000 ": f"server 127.0.0.1:{upstreams[1]} ",
        "listen 80;": f"listen 127.0.0.1:{listen};",
        "/var/cache/nginx/diemdanh": str(cache),
    }.items():
        assert config.count(old) == 1, f"deploy/nginx.conf should hold {old!r} once"
        config = config.replace(old, new)
    return config


def main_config(tmp: Path, site: Path) -> str:
    """What the nginx image's own nginx.conf provides around conf.d (here: files in tmp, the log shows which
    app process answered each request)."""
    return f"""
{"user root;" if os.geteuid() == 0 else ""}
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 256; }}
http {{
    log_format upstreams '$request_method $uri $status $upstream_addr';
    access_log {tmp}/access.log upstreams;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {site};
}}
"""


@contextmanager
def running_proxy(upstreams: tuple[int, int], port: int, tmp: Path) -> Iterator[Path]:
    """Debian's nginx with deploy/nginx.conf on 127.0.0.1:port; yields its access log."""
    nginx = nginx_binary()
    tmp.mkdir()
    site = tmp / "diemdanh.conf"
    site.write_text(render_proxy_config(upstreams, port, tmp / "cache"))
    main = tmp / "nginx.conf"
    main.write_text(main_config(tmp, site))
    command = [nginx, "-e", str(tmp / "error.log"), "-c", str(main)]
    checked = subprocess.run([*command, "-t"], capture_output=True, check=False)
    assert checked.returncode == 0, checked.stderr.decode()
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not _healthy(port):
            assert process.poll() is None, (tmp / "error.log").read_text()
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.1)
        yield tmp / "access.log"
    finally:
        process.terminate()
        process.wait(timeout=10)


def served_by(access_log: Path, method: str, path: str, count: int) -> list[tuple[int, str]]:
    """(status, app address) of the requests for `path`, in order, from the proxy's access log, once it
    holds `count` of them: nginx writes a line when it has finished a request, which can be just after
    the client has its answer."""
    deadline = time.monotonic() + 5
    while True:
        found = []
        for line in access_log.read_text().splitlines():
            got_method, got_path, status, upstream = line.split(" ", 3)
            if (got_method, got_path) == (method, path):
                found.append((int(status), upstream))
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def nonce_of(page: str) -> str:
    found = re.search(r'name="nonce" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def test_proxy_config_in_front_of_two_app_processes(
    session: Session, database_url: str, tmp_path: Path
) -> None:
    proxy_port, ports = free_port(), (free_port(), free_port())
    settings = Settings(
        env="development",
        database_url=database_url,
        data_dir=tmp_path,
        base_url=f"http://127.0.0.1:{proxy_port}",  # every link and the CSRF check name the proxy
        secret_key=SECRET_KEY,
    )
    units = make_tree(session)
    event = make_event(session, make_venue(session, units["village"]))
    organizer = make_staff(session, Role.organizer, units["commune"])
    check_in_path = f"/c/{code_for(event, settings)}"
    live_path = f"/events/{event.id}/live"
    apps = {f"127.0.0.1:{port}" for port in ports}

    with ExitStack() as stack:
        for n, port in enumerate(ports):
            stack.enter_context(running_server(settings, port, tmp_path / f"app{n + 1}.log"))
        log = stack.enter_context(running_proxy(ports, proxy_port, tmp_path / "nginx"))
        phone = stack.enter_context(httpx2.Client(base_url=settings.base_url, timeout=10))
        desk = stack.enter_context(httpx2.Client(base_url=settings.base_url, timeout=10))

        # gzip on HTML (httpx2 asks for it and unpacks it).
        page = phone.get(check_in_path)
        assert page.status_code == 200 and page.headers["content-encoding"] == "gzip"
        assert "accept-encoding" in page.headers["vary"].lower()

        # A hashed static URL: kept a year by phones, and by nginx after the first request.
        # (The check-in page carries its CSS inline; its scripts are versioned files.)
        asset = re.search(r'(?:href|src)="(/static/[^"?]+\.(?:css|js)\?v=[0-9a-f]+)"', page.text)
        assert asset is not None, "the page links a versioned stylesheet or script"
        first, again = phone.get(asset.group(1)), phone.get(asset.group(1))
        for answer in (first, again):
            assert answer.status_code == 200 and answer.headers["content-encoding"] == "gzip"
            cache_control = answer.headers["cache-control"]
            assert "immutable" in cache_control and "max-age=31536000" in cache_control
        assert (first.headers["x-cache-status"], again.headers["x-cache-status"]) == ("MISS", "HIT")
        assert again.content == first.content
        unversioned = phone.get(asset.group(1).split("?")[0])
        assert unversioned.headers["x-cache-status"] == "BYPASS"
        assert "immutable" not in unversioned.headers.get("cache-control", "")

        # The organizer's page and its live poll, through the proxy.
        login = desk.post("/login", data={"username": organizer.username, "password": PASSWORD, "next": "/"})
        assert login.status_code == 303, login.text
        event_page = desk.get(f"/events/{event.id}")
        assert event_page.status_code == 200 and event_page.headers["content-encoding"] == "gzip"
        assert "x-accel-buffering" not in event_page.headers
        live = desk.get(live_path, headers={"HX-Request": "true"})
        assert live.status_code == 200 and live.headers["x-accel-buffering"] == "no"
        assert live.headers["cache-control"] == "no-store"
        before = re.search(r"live\?v=([\d.]+)", live.text).group(1)  # type: ignore[union-attr]

        # A check-in taken by one process shows in the live poll answered by the other.
        form = {"nonce": nonce_of(page.text), "age_band": "60+", "gender": "female", "consent": "yes"}
        done = phone.post(check_in_path, data=form, headers={"HX-Request": "true"})
        assert done.status_code == 200 and DONE in done.text
        ((status, stored_by),) = served_by(log, "POST", check_in_path, 1)
        assert status == 200 and stored_by in apps
        answers = [desk.get(live_path, params={"v": before}) for _ in range(2)]  # round robin: both apps
        polls = served_by(log, "GET", live_path, 3)[1:]  # the two after the first
        assert {upstream for _, upstream in polls} == apps
        for answer in answers:
            assert answer.status_code == 200 and 'id="live-visits">1<' in answer.text
            assert answer.headers["x-accel-buffering"] == "no"
        after = re.search(r"live\?v=([\d.]+)", answers[0].text).group(1)  # type: ignore[union-attr]
        idle = [desk.get(live_path, params={"v": after}) for _ in range(2)]
        assert [a.status_code for a in idle] == [204, 204]
        assert {upstream for _, upstream in served_by(log, "GET", live_path, 5)[3:]} == apps

        # The address the app counts by (flood budget, login throttle) is the proxy's peer, whatever a
        # client writes in X-Forwarded-For.
        forged = {"HX-Request": "true", "X-Forwarded-For": "198.51.100.99"}
        phone.cookies.clear()  # another phone
        second = phone.get(check_in_path)
        form = {"nonce": nonce_of(second.text), "age_band": "25-59", "gender": "male", "consent": "yes"}
        assert DONE in phone.post(check_in_path, data=form, headers=forged).text

    session.commit()
    sources = session.exec(select(CheckIn.source).where(col(CheckIn.event_id) == event.id)).all()
    assert sources == [flood.source_of(settings, "127.0.0.1")] * 2
