"""CPU time and resident memory of a server: the uvicorn process and its workers, read from /proc (Linux)."""

from __future__ import annotations

import os
import time
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
PROC = Path("/proc")


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses)."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text.rsplit(")", 1)[1].split()


def tree(pid: int) -> list[int]:
    """pid and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        queue += children.get(current, [])
    return found


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of the process tree so far."""
    total = 0
    for member in tree(pid):
        if (fields := _stat(member)) is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / CLOCK_TICKS


def rss_mb(pid: int) -> list[float]:
    """Resident memory of each process of the tree, in MB (10^6 bytes), largest first."""
    sizes = []
    for member in tree(pid):
        try:
            resident = int((PROC / str(member) / "statm").read_text().split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue
        sizes.append(resident * PAGE_BYTES / 1e6)
    return sorted(sizes, reverse=True)


def wait_idle(pid: int, *, timeout: float = 30.0) -> None:
    """Until the tree's CPU time stops growing: the requests still in flight when the client stopped are
    done (their check-ins stored or not) before the database is read and the CPU time taken."""
    deadline = time.monotonic() + timeout
    last, quiet = cpu_seconds(pid), 0
    while quiet < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
        now = cpu_seconds(pid)
        quiet = quiet + 1 if now - last < 0.005 else 0
        last = now
