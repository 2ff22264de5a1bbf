"""One wrk run with bench/load.lua, and what its done() wrote: the client's count of every answer."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "load.lua"


def wrk_missing() -> str | None:
    """Why wrk cannot run here, or None."""
    return None if shutil.which("wrk") else "wrk is not installed (Debian: apt-get install wrk)"


@dataclass
class Answers:
    requests: int  # answers wrk completed (its own count, what req/s is made of)
    seconds: float
    sent: int  # requests written (load.lua's request() calls)
    answered: int
    acked: int  # 2xx carrying the scenario's success text
    refused: Counter[int] = field(default_factory=Counter)  # status -> answers that were not acknowledged
    socket_errors: int = 0  # connect, read, write errors and timeouts
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    tokens: list[str] = field(default_factory=list)  # first-time: the device token of each acknowledged one

    @property
    def unanswered(self) -> int:
        """Requests in flight when wrk stopped: the server finishes them but nobody counts the answer."""
        return self.sent - self.answered


def run_wrk(
    url: str,
    *,
    scenario: str,
    connections: int,
    seconds: int,
    threads: int,
    marker: str = "",
    paths: list[str] | None = None,
    tokens: Path | None = None,
    form: dict[str, str] | None = None,
    run: str,
) -> Answers:
    """wrk against url (127.0.0.1) for `seconds`; the scenario, its paths and tokens go to load.lua."""
    threads = max(1, min(threads, connections))
    with tempfile.TemporaryDirectory(prefix="dd-wrk-") as tmp:
        out = Path(tmp) / "answers.txt"
        env = {
            **os.environ,
            "DD_SCENARIO": scenario,
            "DD_RUN": run,
            "DD_THREADS": str(threads),
            "DD_MARKER": marker,
            "DD_PATHS": " ".join(paths or []),
            "DD_TOKENS": str(tokens or ""),
            "DD_OUT": str(out),
            **{f"DD_{key.upper()}": value for key, value in (form or {}).items()},
        }
        command = [
            *("wrk", "--threads", str(threads), "--connections", str(connections)),
            # A long timeout: slow answers are measured (wrk drops latencies above it) rather than lost.
            *("--duration", f"{seconds}s", "--timeout", "60s", "--script", str(SCRIPT), url),
        ]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 120)
        if done.returncode != 0 or not out.exists():
            raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return _parse(out.read_text())


def _parse(text: str) -> Answers:
    values: dict[str, float] = {}
    refused: Counter[int] = Counter()
    tokens = []
    for line in text.splitlines():
        key, _, rest = line.partition(" ")
        if key == "token":
            tokens.append(rest)
        elif key == "status":
            status, count = rest.split()
            refused[int(status)] += int(count)
        else:
            values[key] = float(rest)
    return Answers(
        requests=int(values["requests"]),
        seconds=values["duration_us"] / 1e6,
        sent=int(values["sent"]),
        answered=int(values["answered"]),
        acked=int(values["acked"]),
        refused=refused,
        socket_errors=int(values["socket_errors"]),
        p50_ms=values["p50_us"] / 1000,
        p99_ms=values["p99_us"] / 1000,
        tokens=tokens,
    )
