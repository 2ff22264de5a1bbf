"""Helpers for browser tests: the real app in a uvicorn subprocess (as deployed), where artifacts go."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from server.config import ROOT, SETTING_NAMES, Settings

SCREENSHOTS = ROOT / "artifacts" / "screenshots"
APP_PARTS = ("server", "qr", "templates", "static")  # what the server runs from
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def copy_of_the_app(dest: Path) -> Path:
    """The app's source copied to dest: change a file there and serve it, and it is a new version."""
    for part in APP_PARTS:
        shutil.copytree(ROOT / part, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@contextmanager
def running_server(
    settings: Settings,
    port: int,
    log_path: Path,
    *,
    workers: int = 1,
    access_log: bool = True,
    log_level: str = "warning",
    source: Path = ROOT,
) -> Iterator[Server]:
    """uvicorn --factory server.app:app_from_env on 127.0.0.1:<port>, configured through DIEMDANH_*, running
    the app in `source` (this checkout, or a copy_of_the_app: `python -m` imports from its directory first).
    With log_level="info", its log lists every request that reached the app (uvicorn's access log).

    Also what the benchmarks run (bench/_common.py), with the access log off as in production."""
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    env.update(
        DIEMDANH_ENV=settings.env,
        DIEMDANH_DATABASE_URL=settings.database_url,
        DIEMDANH_BASE_URL=settings.base_url,
        DIEMDANH_SECRET_KEY=settings.secret_key,
        DIEMDANH_DATA_DIR=str(settings.data_dir),
        DIEMDANH_FLOOD_NEW_PER_MINUTE=str(settings.flood_new_per_minute),
        PYTHONUNBUFFERED="1",
    )
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "server.app:app_from_env",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        log_level,
        *([] if access_log else ["--no-access-log"]),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=source, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(process=process, base_url=f"http://127.0.0.1:{port}", log_path=log_path)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _healthy(server.base_url):
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}:\n{server.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the server did not answer /healthz in {START_TIMEOUT} s:\n{server.log()}"
                )
            time.sleep(0.1)
        yield server
    finally:
        server.stop()


class Server:
    def __init__(self, process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
        self.process = process
        self.base_url = base_url
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        """SIGTERM (uvicorn shuts its workers down), then SIGKILL to its own process group if it hangs."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=STOP_TIMEOUT)
        # A worker left behind by its parent is still in the group this server started: end it too.
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


class Cable:
    """The network between the browser and the app, so that "no signal" meets every requester in the browser:
    the pages, and the service worker, Background Sync included (Playwright's offline switch does not cover
    the worker, and its routes miss a worker's first requests as it starts up).

    It listens on the app's public port (the one in its base URL) and forwards each connection to the port the
    app really listens on. cut() closes it and every connection through it, as a lost signal does: a request
    fails at once, nothing reaches the app. mend() opens it again."""

    def __init__(self, port: int, target: int) -> None:
        self.port, self.target = port, target
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self.mend()

    def mend(self) -> None:
        with self._lock:
            if self._listener is not None:
                return
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(128)
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            connections, self._open = self._open, set()
        if listener is not None:
            with suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() below
            listener.close()
        for connection in connections:
            _close(connection)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
                upstream.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                if self._listener is not listener:
                    _close(client)
                    _close(upstream)
                    continue
                self._open |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open -= {source, sink}
            _close(source)
            _close(sink)


def _close(connection: socket.socket) -> None:
    with suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)
    connection.close()


ACCESS = re.compile(r'"(GET|POST|HEAD) (\S+) HTTP/[\d.]+" (\d{3})')


class AccessLog:
    """The requests the app received (uvicorn's access log), from where the last read stopped."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset = path, 0

    def take(self) -> list[str]:
        with self.path.open("rb") as log:
            log.seek(self.offset)
            text = log.read().decode("utf-8", "replace")
            self.offset = log.tell()
        return [f"{m[1]} {m[2]} {m[3]}" for m in ACCESS.finditer(text) if m[2] != "/healthz"]
