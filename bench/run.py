"""``make bench``: the bulk update as users run it, against the database's own best at the same
work, in one run.

For each database, in the deployment docs/deployment.md describes (SQLite: one ``leadstore
serve``, which starts its writer process; PostgreSQL: ``leadstore serve --workers 2`` with
Redis for the shared rate limit), and each size (1,000,000 leads: the everyday, client and
mixed workloads; 10,000 leads: everyday only, for the scaling figure), on a database that
already holds a few million history rows (bench/dataset.py):

  raw      the everyday call's work through the bare driver, the database's best
           (bench/raw.py), before the service phases and again after them;
  peak     sustained phases driven by wrk (bench/bulk.lua) at 16 connections (and 64 for the
           everyday workload at 1M): leads/s, the machine's CPU a call, new database
           connections, the slowest 10-second window, the leadstore processes' peak memory;
  paced    the same workload at half its peak rate: p50 and p99 per call.

Prints a table, the targets line by line, then one JSON line with every figure. See
bench/README.md.
"""

import argparse
import json
import os
import random
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import suppress
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis
from sqlalchemy import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import probes, raw  # noqa: E402
from bench.dataset import HISTORY_ROWS, Prepared, email, prepare  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/leadstore_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
LUA = ROOT / "bench" / "bulk.lua"
BULK = "/v2/LeadManagement.svc/Lead/Bulk/UpdateV2"
REVERT = "/v2/LeadManagement.svc/Lead/Bulk/Revert"
BULK_CREATE_OR_UPDATE = "/v2/LeadManagement.svc/Lead/Bulk/CreateOrUpdate"
LONE_ROUNDS = 100
PG_WORKERS = 2
CONNECTIONS = 16
EVERYDAY_EXTRA_CONNECTIONS = 64  # at the largest size only
PACED_CONNECTIONS = 8
TRIAL_SECONDS = 4
WARMUP_SECONDS = 3
WINDOW_SECONDS = 10
WORKLOADS = ("everyday", "client", "mixed")

# Informational targets, printed beside the figures.
TARGET_RATIO = 0.7  # of raw, at the largest size
TARGET_VS_EVERYDAY = 0.8  # client and mixed, of everyday's leads/s
TARGET_P99_MS = 20.0
TARGET_NEW_CONNECTIONS = 0.05  # a second: none in steady state (one opened as load grows is 0.02)
TARGET_WINDOW = 0.5
TARGET_RSS_MB = 150.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the server ------------------------------------------------------------------------------


class Server:
    """``leadstore serve`` as deployed for ``database``; its log (warnings and the access log)
    goes to ``log_path``."""

    def __init__(self, database: str, url: str, log_path: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "LEADSTORE_DATABASE_URL": url}
        workers = 1
        if database == "postgresql":
            env["LEADSTORE_REDIS_URL"] = REDIS_URL
            workers = PG_WORKERS
        leadstore = Path(sys.executable).parent / "leadstore"
        command = [str(leadstore), "serve", "--port", str(self.port), "--workers", str(workers)]
        with log_path.open("wb") as sink:
            self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=sink)
        self.workers = workers
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/ready", timeout=2).status_code == 200:
                    return
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"leadstore serve did not start; see {log_path}")

    def pids(self) -> list[int]:
        """The serve process and every process under it (workers, the SQLite writer process)."""
        return probes.descendants(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- wrk -------------------------------------------------------------------------------------


def wrk(
    target: str,
    leads: int,
    workload: str,
    seconds: float,
    connections: int,
    owners: list[str],
    delay_ms: float = 0,
    stop_after: int = 0,
) -> dict[str, Any]:
    """One wrk run; its figures (bench/bulk.lua's BENCH_RESULT) and its own CPU time."""
    env = {
        **os.environ,
        "BENCH_LEADS": str(leads),
        "BENCH_WORKLOAD": workload,
        "BENCH_OWNERS": ",".join(owners),
        "BENCH_RUN": uuid.uuid4().hex[:8],
        "BENCH_DELAY_MS": f"{delay_ms:.3f}",
        "BENCH_STOP_AFTER": str(stop_after),
    }
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "30s"]
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen([*command, "-s", str(LUA), target], env=env, stdout=out, stderr=subprocess.STDOUT)
        # wait4 gives the child's own CPU time as it exits (the kernel's counters behind
        # /proc/<pid>/stat), so none of it is missed.
        _pid, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    found = re.search(r"^BENCH_RESULT (.*)$", text, re.MULTILINE)
    if process.returncode != 0 or found is None:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{text}")
    result: dict[str, Any] = json.loads(found.group(1))
    result["wrk_cpu_ms"] = (usage.ru_utime + usage.ru_stime) * 1000
    result["seconds"] = result["duration_us"] / 1e6
    result["leads_per_s"] = result["ok_leads"] / result["seconds"] if result["seconds"] else 0.0
    result["calls_per_s"] = result["requests"] / result["seconds"] if result["seconds"] else 0.0
    return result


def _changed(answer: Any) -> int:
    """How many leads a call's answer says it wrote: UpdateV2 and revert in SuccessCount,
    Lead/Bulk/CreateOrUpdate one object per lead."""
    if isinstance(answer, list):
        return sum(1 for row in answer if row.get("LeadUpdated") or row.get("LeadCreated"))
    return int(answer["Status"]["SuccessCount"])


def min_window_ratio(per_second: list[list[int]]) -> float:
    """The slowest WINDOW_SECONDS of the phase (sliding, by whole seconds of the wall clock) over
    the phase's mean, from the leads updated each second; the first and last seconds, partial,
    are left out."""
    if not per_second:
        return 0.0
    counts = {second: leads for second, leads in per_second}
    first, last = min(counts) + 1, max(counts) - 1
    series = [counts.get(second, 0) for second in range(first, last + 1)]
    if not series:
        return 1.0
    mean = sum(series) / len(series)
    width = min(WINDOW_SECONDS, len(series))
    slowest = min(sum(series[i : i + width]) for i in range(len(series) - width + 1)) / width
    return slowest / mean if mean else 0.0


# --- one phase -------------------------------------------------------------------------------


class Phases:
    """Runs the phases of one database and size against one server, with its probes."""

    def __init__(self, database: str, url: str, server: Server, prepared: Prepared, leads: int) -> None:
        self.database = database
        self.server = server
        self.leads = leads
        self.owners = [prepared.admin_id, prepared.other_user_id]
        self.target = f"{server.base}{BULK}?accessKey={prepared.access_key}&secretKey={prepared.secret_key}"
        self.redis = redis.Redis.from_url(REDIS_URL) if database == "postgresql" else None
        parsed = make_url(url)
        if database == "postgresql":
            self.pg: Any = psycopg.connect(
                host=parsed.host, port=parsed.port, user=parsed.username, dbname=parsed.database, autocommit=True
            )
            self.sessions: Any = probes.PgSessions(self.pg, str(parsed.database))
            self.opens = None
            directory = self.pg.execute("SHOW data_directory").fetchone()[0]  # type: ignore[index]
            postmaster = int((Path(directory) / "postmaster.pid").read_text().split()[0])
            self.database_pids = [postmaster, int(self.redis.info("server")["process_id"])]  # type: ignore[union-attr]
        else:
            # Opened before the watch starts, so that its own open is not counted.
            self.sqlite = sqlite3.connect(parsed.database or "")
            self.opens = probes.FileOpens(parsed.database or "")
            self.database_pids = []

    def close(self) -> None:
        if self.database == "postgresql":
            self.pg.close()
        else:
            self.sqlite.close()
            self.opens.close()  # type: ignore[union-attr]

    def _newest_change(self) -> int:
        conn = self.pg if self.database == "postgresql" else self.sqlite
        return int(conn.execute("SELECT max(id) FROM lead_changes").fetchone()[0] or 0)

    def _connections(self) -> int:
        return self.sessions.count() if self.database == "postgresql" else self.opens.read()  # type: ignore[union-attr]

    def _fresh(self) -> None:
        if self.redis is not None:
            self.redis.flushdb()  # the rate limit's windows start empty

    def check(self, workload: str) -> None:
        """One real call of ``workload`` updates its 25 leads: the phases measure work, not errors."""
        self._fresh()
        result = wrk(self.target, self.leads, workload, 10, 1, self.owners, stop_after=1)
        if result["answers"] < 1 or result["non2xx"] or result["calls_with_failures"] or result["ok_leads"] != 25:
            raise RuntimeError(f"the {workload} check call did not update 25 leads: {result['failure']}")

    def warm_up(self) -> None:
        self._fresh()
        wrk(self.target, self.leads, "everyday", WARMUP_SECONDS, CONNECTIONS, self.owners)

    def run(self, workload: str, seconds: float, connections: int, delay_ms: float = 0) -> dict[str, Any]:
        self._fresh()
        pids = self.server.pids()
        probes.reset_peak_rss(pids)
        newest = self._newest_change()
        connections_before = self._connections()
        server_before = probes.tree_cpu_ms(self.server.process.pid)
        database_before = sum(probes.tree_cpu_ms(pid) for pid in self.database_pids)
        own_before, busy_before = probes.own_cpu_ms(), probes.machine_busy_ms()
        result = wrk(self.target, self.leads, workload, seconds, connections, self.owners, delay_ms)
        busy, own = probes.machine_busy_ms() - busy_before, probes.own_cpu_ms() - own_before
        server_cpu = probes.tree_cpu_ms(self.server.process.pid) - server_before
        database_cpu = sum(probes.tree_cpu_ms(pid) for pid in self.database_pids) - database_before
        new_connections = self._connections() - connections_before
        history = self._newest_change() - newest
        calls = max(1, result["requests"])
        return {
            "workload": workload,
            "connections": connections,
            "paced": delay_ms > 0,
            "seconds": round(result["seconds"], 1),
            "leads_per_s": round(result["leads_per_s"]),
            "calls_per_s": round(result["calls_per_s"], 1),
            "p50_ms": round(result["p50_us"] / 1000, 2),
            "p99_ms": round(result["p99_us"] / 1000, 2),
            "machine_cpu_ms_per_call": round((busy - result["wrk_cpu_ms"] - own) / calls, 2),
            "server_cpu_ms_per_call": round(server_cpu / calls, 2),
            "database_cpu_ms_per_call": round(database_cpu / calls, 2) if self.database_pids else None,
            "wrk_cpu_ms_per_call": round(result["wrk_cpu_ms"] / calls, 2),
            "new_connections": new_connections,
            "new_connections_per_s": round(new_connections / result["seconds"], 2),
            "min_window_ratio": round(min_window_ratio(result["per_second"]), 2),
            "peak_rss_mb": round(max((probes.peak_rss_mb(pid) for pid in pids), default=0.0), 1),
            "history_rows_per_call": round(history / calls, 1),
            "errors": result["non2xx"],
            "socket_errors": result["socket_errors"],
            "failed_leads": result["failed_leads"],
            "failure": result["failure"] or None,
        }

    def lone_costs(self, rounds: int) -> dict[str, Any]:
        """On one connection, call after call: a 25-lead everyday call (Update Leads in Bulk v2),
        the revert of that call, and the same 25 leads updated through Lead/Bulk/CreateOrUpdate;
        each one's latency with nothing to wait for, side by side."""
        self._fresh()
        revert_target = self.target.replace(BULK, REVERT)
        create_or_update_target = self.target.replace(BULK, BULK_CREATE_OR_UPDATE)
        times: dict[str, list[float]] = {"bulk": [], "revert": [], "create_or_update": []}
        with httpx.Client(timeout=30) as http:
            for r in range(rounds):
                first = random.randrange(self.leads - 25)
                fields = {"FirstName": f"Rev{r}", "LastName": f"Ert{r}", "JobTitle": f"Revert {r}"}
                leads = [
                    [{"Attribute": "EmailAddress", "Value": email(first + i)}]
                    + [{"Attribute": k, "Value": v} for k, v in fields.items()]
                    for i in range(25)
                ]
                request_id = f"bench-lone-{uuid.uuid4().hex}"
                again = [[*lead[:1], {"Attribute": "JobTitle", "Value": f"Again {r}"}] for lead in leads]
                calls = (
                    (
                        "bulk",
                        self.target,
                        {"SearchByKey": "EmailAddress", "LeadPropertiesList": [{"Fields": f} for f in leads]},
                    ),
                    ("revert", revert_target, {"RequestId": request_id}),
                    ("create_or_update", create_or_update_target, again),
                )
                for name, url, payload in calls:
                    start = time.perf_counter()
                    answer = http.post(url, json=payload, headers={"X-Request-Id": request_id})
                    times[name].append((time.perf_counter() - start) * 1000)
                    if answer.status_code != 200 or _changed(answer.json()) != 25:
                        raise RuntimeError(f"the {name} call of round {r} did not change 25 leads: {answer.text[:300]}")
        return {"rounds": rounds, **{f"{name}_p50_ms": round(statistics.median(t), 2) for name, t in times.items()}}

    def paced(self, workload: str, seconds: float, rate: float) -> dict[str, Any]:
        """The workload at ``rate`` calls/s, from PACED_CONNECTIONS connections each pausing a
        random time between calls. Each connection runs call, pause, call ...: rate =
        connections / (latency + pause); the latency at that rate is not known beforehand (the
        peak phase's is inflated by queueing), so a short trial run measures it and the pause
        is set from that."""
        cycle_ms = PACED_CONNECTIONS * 1000 / rate
        trial_delay = cycle_ms / 2
        self._fresh()
        trial = wrk(self.target, self.leads, workload, TRIAL_SECONDS, PACED_CONNECTIONS, self.owners, trial_delay)
        latency_ms = PACED_CONNECTIONS * 1000 / max(trial["calls_per_s"], 1e-9) - trial_delay
        delay = max(0.001, cycle_ms - latency_ms)  # 0 would mean no pacing at all
        return self.run(workload, seconds, PACED_CONNECTIONS, delay)


# --- one database and size ---------------------------------------------------------------------


def measure(database: str, leads: int, workloads: list[str], args: argparse.Namespace) -> dict[str, Any]:
    url = f"sqlite:///{RESULTS / f'bench-{leads}.db'}" if database == "sqlite" else PG_URL
    label = f"[{database} {leads:,}]"
    log(f"{label} preparing {leads:,} leads and {args.history:,} history rows ...")
    prepared = prepare(url, leads, args.history)
    log(
        f"{label} prepared in {prepared.seconds:.0f}s (leads {prepared.leads_seconds:.0f}s, "
        f"history {prepared.history_seconds:.0f}s); raw ..."
    )
    raw_before = raw.run(url, leads, args.raw_seconds, prepared.admin_id)
    server = Server(database, url, RESULTS / f"server-{database}-{leads}.log")
    phases = Phases(database, url, server, prepared, leads)
    by_workload: dict[str, list[dict[str, Any]]] = {}
    lone: dict[str, Any] | None = None
    try:
        phases.warm_up()
        for workload in workloads:
            phases.check(workload)
            counts = [CONNECTIONS]
            if workload == "everyday" and leads == args.largest:
                counts.append(EVERYDAY_EXTRA_CONNECTIONS)
            runs = []
            for connections in counts:
                log(f"{label} {workload}, {connections} connections, {args.seconds:.0f}s ...")
                runs.append(phases.run(workload, args.seconds, connections))
            peak = max(run["calls_per_s"] for run in runs)
            log(f"{label} {workload} at half peak ({peak / 2:.0f} calls/s) ...")
            runs.append(phases.paced(workload, args.seconds, peak / 2))
            by_workload[workload] = runs
        if leads == args.largest:
            log(f"{label} a 25-lead call, its revert and a Lead/Bulk/CreateOrUpdate call, {LONE_ROUNDS} times ...")
            lone = phases.lone_costs(LONE_ROUNDS)
    finally:
        phases.close()
        server.stop()
    # The raw figure brackets the service's: this machine's speed drifts by tens of per cent
    # within minutes, and the database grows with every phase.
    log(f"{label} raw again ...")
    if database == "postgresql":
        raw_after = raw.run_postgresql(url, leads, args.raw_seconds, prepared.admin_id, raw_before["clients"])
    else:
        raw_after = raw.run(url, leads, args.raw_seconds, prepared.admin_id)["leads_per_s"]
    raw_lps = (raw_before["leads_per_s"] + raw_after) / 2
    rows = [summarize(database, leads, workload, runs, raw_lps) for workload, runs in by_workload.items()]
    for row in rows:
        row["raw_setting"] = raw_before["setting"]
        row["raw_before_after"] = [round(raw_before["leads_per_s"]), round(raw_after)]
        if raw_before["by_setting"]:
            row["raw_leads_per_s_by_clients"] = {k: round(v) for k, v in raw_before["by_setting"].items()}
    preparation = {
        "database": database,
        "leads": leads,
        "history_rows": prepared.history_rows,
        "seconds": round(prepared.seconds, 1),
        "leads_seconds": round(prepared.leads_seconds, 1),
        "history_seconds": round(prepared.history_seconds, 1),
    }
    if lone is not None:
        lone.update(database=database, leads=leads)
    return {"rows": rows, "preparation": preparation, "lone": lone}


def summarize(database: str, leads: int, workload: str, runs: list[dict[str, Any]], raw_lps: float) -> dict[str, Any]:
    """One result entry: the headline figures of a workload's phases. Throughput and CPU are
    the 16-connection phase's, latency the paced phase's; new connections, the slowest window
    and memory the worst of all its phases."""
    main = next(run for run in runs if run["connections"] == CONNECTIONS and not run["paced"])
    paced = next(run for run in runs if run["paced"])
    extra = [run for run in runs if not run["paced"] and run["connections"] != CONNECTIONS]
    row: dict[str, Any] = {
        "database": database,
        "leads": leads,
        "workload": workload,
        "raw_leads_per_s": round(raw_lps),
        "service_leads_per_s": main["leads_per_s"],
        "ratio": round(main["leads_per_s"] / raw_lps, 2) if raw_lps else None,
        "p50_ms": paced["p50_ms"],
        "p99_ms": paced["p99_ms"],
        "paced_leads_per_s": paced["leads_per_s"],
        "machine_cpu_ms_per_call": main["machine_cpu_ms_per_call"],
        "new_connections_per_s": max(run["new_connections_per_s"] for run in runs),
        "min_window_ratio": min(run["min_window_ratio"] for run in runs),
        "peak_rss_mb": max(run["peak_rss_mb"] for run in runs),
        "errors": sum(run["errors"] for run in runs),
        "failed_leads": sum(run["failed_leads"] for run in runs),
    }
    for run in extra:
        row[f"service_leads_per_s_{run['connections']}"] = run["leads_per_s"]
    row["phases"] = runs
    return row


# --- targets and output --------------------------------------------------------------------


def judge(rows: list[dict[str, Any]], largest: int) -> None:
    """PASS/FAIL per target on each row (informational; None where a target does not apply)."""
    everyday = {(r["database"], r["leads"]): r for r in rows if r["workload"] == "everyday"}
    for r in rows:
        base = everyday.get((r["database"], r["leads"]))
        vs_everyday = None
        if r["workload"] != "everyday" and base is not None and base["service_leads_per_s"]:
            vs_everyday = round(r["service_leads_per_s"] / base["service_leads_per_s"], 2)
        r["vs_everyday"] = vs_everyday
        checks = {
            "ratio": None if r["leads"] != largest or r["ratio"] is None else r["ratio"] >= TARGET_RATIO,
            "vs_everyday": None if vs_everyday is None else vs_everyday >= TARGET_VS_EVERYDAY,
            "p99": r["p99_ms"] <= TARGET_P99_MS,
            "new_connections": r["new_connections_per_s"] < TARGET_NEW_CONNECTIONS,
            "min_window": r["min_window_ratio"] >= TARGET_WINDOW,
            "rss": r["peak_rss_mb"] <= TARGET_RSS_MB,
            "errors": r["errors"] == 0 and r["failed_leads"] == 0,
        }
        r["targets"] = {name: None if ok is None else ("PASS" if ok else "FAIL") for name, ok in checks.items()}


COLUMNS = [
    ("database", "{:<10}", "database"),
    ("leads", "{:>10,}", "leads"),
    ("workload", "{:>9}", "workload"),
    ("raw_leads_per_s", "{:>8,}", "raw/s"),
    ("service_leads_per_s", "{:>10,}", "service/s"),
    ("ratio", "{:>6}", "ratio"),
    ("vs_everyday", "{:>6}", "vs ev"),
    ("p50_ms", "{:>7}", "p50 ms"),
    ("p99_ms", "{:>7}", "p99 ms"),
    ("machine_cpu_ms_per_call", "{:>9}", "CPU/call"),
    ("new_connections_per_s", "{:>7}", "conn/s"),
    ("min_window_ratio", "{:>8}", "min win"),
    ("peak_rss_mb", "{:>7}", "RSS MB"),
    ("errors", "{:>7}", "errors"),
]
TARGETS = [
    ("ratio", f"ratio>={TARGET_RATIO}"),
    ("vs_everyday", f"vs ev>={TARGET_VS_EVERYDAY}"),
    ("p99", f"p99<={TARGET_P99_MS:g}"),
    ("new_connections", "conn/s<0.05"),
    ("min_window", f"win>={TARGET_WINDOW}"),
    ("rss", f"RSS<={TARGET_RSS_MB:g}"),
    ("errors", "no errors"),
]


def print_table(rows: list[dict[str, Any]]) -> None:
    header = " ".join(fmt.replace(",", "").format(title) for _, fmt, title in COLUMNS)
    print(header)
    for r in rows:
        cells = []
        for key, fmt, _ in COLUMNS:
            value = r.get(key)
            cells.append(fmt.replace(",", "").format("-") if value is None else fmt.format(value))
        print(" ".join(cells))
    print()
    print(f"{'targets (informational)':<30}" + "".join(f"{title:>13}" for _, title in TARGETS))
    for r in rows:
        name = f"{r['database']} {r['leads']:,} {r['workload']}"
        print(f"{name:<30}" + "".join(f"{r['targets'][key] or '-':>13}" for key, _ in TARGETS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="at the largest size; smaller: everyday")
    parser.add_argument("--seconds", type=float, default=60, help="each peak and paced phase")
    parser.add_argument("--raw-seconds", type=float, default=10, help="each raw run")
    parser.add_argument("--history", type=int, default=HISTORY_ROWS, help="history rows stored beforehand")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk (make bench does this)")
    workloads = [w for w in args.workloads.split(",") if w]
    if unknown := set(workloads) - set(WORKLOADS):
        sys.exit(f"unknown workloads: {', '.join(sorted(unknown))}")
    sizes = [int(size) for size in args.sizes.split(",")]
    args.largest = max(sizes)
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    preparation = []
    lones = []
    for database in args.databases.split(","):
        for leads in sizes:
            chosen = workloads if leads == args.largest else [w for w in workloads if w == "everyday"]
            if not chosen:
                continue
            measured = measure(database, leads, chosen, args)
            rows += measured["rows"]
            preparation.append(measured["preparation"])
            if measured["lone"] is not None:
                lones.append(measured["lone"])
    judge(rows, args.largest)
    print_table(rows)
    for cost in lones:
        print(
            f"{cost['database']:<10} {cost['leads']:>10,}  one connection, {cost['rounds']} each: a 25-lead "
            f"UpdateV2 call p50 {cost['bulk_p50_ms']} ms, its revert {cost['revert_p50_ms']} ms, "
            f"25 leads through Lead/Bulk/CreateOrUpdate {cost['create_or_update_p50_ms']} ms"
        )
    print(
        json.dumps(
            {
                "bench": "bulk-update-v2",
                "sqlite_synchronous": "FULL",
                "pg_workers": PG_WORKERS,
                "seconds": args.seconds,
                "total_minutes": round((time.monotonic() - started) / 60, 1),
                "preparation": preparation,
                "lone": lones,
                "results": rows,
            }
        )
    )


if __name__ == "__main__":
    main()
