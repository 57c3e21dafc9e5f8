"""What a phase measures besides wrk's figures: the whole machine's CPU time, the leadstore
processes' memory, and new database connections.

- Machine CPU: the busy time of all CPUs in /proc/stat (user, nice, system, irq, softirq,
  steal) over the phase: every process, PostgreSQL backends (short-lived ones too) and Redis
  included. The load generator (wrk, on the same machine) and this harness are not the
  service: their own CPU time is subtracted (wrk's from the kernel's accounting of the child
  when it exits, the same counters /proc/<pid>/stat shows, so none of its last moments is
  missed).
  Beside it, the CPU time of the processes that serve (leadstore's, PostgreSQL's, Redis'):
  on a machine shared with other work, the difference is that work.
- Memory: VmHWM (peak resident set) of every leadstore process (the serve master, its
  workers, the SQLite writer process), reset before each phase through /proc/<pid>/clear_refs,
  so each phase reports its own peak.
- New connections: PostgreSQL counts the sessions it started per database
  (pg_stat_database.sessions, PostgreSQL 14+), short-lived ones included. SQLite has no server:
  each new connection opens the database file, so the harness counts the opens of that file
  (inotify IN_OPEN), which catches a connection however short its life.
"""

import ctypes
import ctypes.util
import os
import resource
import select
import struct
import threading
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def machine_busy_ms() -> float:
    """CPU time spent busy on all CPUs since boot."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) * TICK_MS


def own_cpu_ms() -> float:
    """This harness's CPU time (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (usage.ru_utime + usage.ru_stime) * 1000


def process_cpu_ms(pid: int, *, reaped: bool = False) -> float:
    """utime + stime of a running process (0 when it is gone); with ``reaped``, also that of
    its children that have exited and been waited for (a PostgreSQL backend that came and went
    ends up in the postmaster's figure)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])
    if reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks * TICK_MS


def tree_cpu_ms(pid: int) -> float:
    """CPU time of ``pid`` and every process under it, those that exited during the
    measurement included (differences of this figure are exact)."""
    return sum(process_cpu_ms(p, reaped=True) for p in descendants(pid))


def descendants(pid: int) -> list[int]:
    """``pid`` and every process under it (the serve master, its workers, the writer process)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        path = Path(f"/proc/{current}/task/{current}/children")
        try:
            todo.extend(int(child) for child in path.read_text().split())
        except OSError:
            continue
    return found


def reset_peak_rss(pids: list[int]) -> None:
    for pid in pids:
        # Where not allowed, the figure is the peak since the process started.
        with suppress(OSError):
            Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class FileOpens:
    """Counts the opens of one file from now on (inotify), in a thread of its own that reads
    each event as it comes: the kernel merges identical events that are not yet read, so
    without the closes between them and a reader waiting, opens in a row would count as one.
    Opens less than the reader's wake-up apart can still merge: the count is a lower bound
    when connections open in bursts, and exact when they come and go."""

    IN_OPEN = 0x20
    IN_CLOSE = 0x08 | 0x10  # after writing, after reading only

    def __init__(self, path: str) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self._fd = libc.inotify_init1(0)
        if self._fd < 0 or libc.inotify_add_watch(self._fd, path.encode(), self.IN_OPEN | self.IN_CLOSE) < 0:
            raise OSError(ctypes.get_errno(), "inotify")
        self._stop_r, self._stop_w = os.pipe()
        self.count = 0
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            ready, _, _ = select.select([self._fd, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            data = os.read(self._fd, 1 << 16)
            offset = 0
            while offset < len(data):
                _wd, mask, _cookie, size = struct.unpack_from("iIII", data, offset)
                self.count += bool(mask & self.IN_OPEN)
                offset += 16 + size

    def read(self) -> int:
        """Opens seen since the start."""
        time.sleep(0.05)  # events of the last moment
        return self.count

    def close(self) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join()
        for fd in (self._fd, self._stop_r, self._stop_w):
            os.close(fd)


class PgSessions:
    """Sessions PostgreSQL has started on one database, through one connection kept open."""

    def __init__(self, conn: Any, database: str) -> None:
        self._conn = conn
        self._database = database

    def count(self) -> int:
        # A backend reports its own new session with its statistics, within about a second
        # of starting; one that exits reports it as it exits.
        row = self._conn.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = %s", (self._database,)
        ).fetchone()
        return int(row[0])
