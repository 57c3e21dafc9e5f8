"""``make bench``: the bulk update's speed against the database's own speed, in one run.

For each database (SQLite, PostgreSQL) and size (10,000 and 1,000,000 stored leads):
  raw      the same writes through the bare driver, one client, no HTTP (bench/raw.py);
  service  25-lead calls through one `leadstore serve` process, driven by wrk (a compiled load
           generator in another process, so it does not eat the server's Python CPU), with 8
           and with 16 connections: the peak is the better of the two;
  lone     one connection, call after call: a call's latency with nothing to wait for;
  latency  the service at half its measured peak rate: p50 and p99 per call.
Prints a table, then one JSON line with every figure. See bench/README.md.
"""

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import raw  # noqa: E402
from bench.dataset import email, prepare  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/leadstore_bench")
LUA = ROOT / "bench" / "bulk.lua"
BULK = "/v2/LeadManagement.svc/Lead/Bulk/UpdateV2"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    """``leadstore serve`` on ``url``; its log (warnings and the access log) goes to ``log``."""
    env = {**os.environ, "LEADSTORE_DATABASE_URL": url}
    leadstore = Path(sys.executable).parent / "leadstore"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(leadstore), "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=sink
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("leadstore serve did not start")


def children(pid: int) -> list[int]:
    """The processes ``pid`` started (on SQLite, the server's writer process)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, leads: int, seconds: float, connections: int, delay_ms: float = 0) -> dict[str, float]:
    env = {**os.environ, "BENCH_LEADS": str(leads), "BENCH_DELAY_MS": str(int(delay_ms))}
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "-s", str(LUA), url],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p50 = re.search(r"\s50%\s+(\S+)", out)
    p99 = re.search(r"\s99%\s+(\S+)", out)
    return {
        "rps": rps,
        "errors": float(errors.group(1)) if errors else 0.0,
        "p50_ms": _ms(p50.group(1)) if p50 else float("nan"),
        "p99_ms": _ms(p99.group(1)) if p99 else float("nan"),
    }


LATENCY_CONNECTIONS = 4
LONE_SECONDS = 5


def half_peak_delay(target: str, leads: int, rate: float) -> float:
    """The pause between calls that paces LATENCY_CONNECTIONS connections at ``rate`` calls/s.

    Each connection runs call, pause, call ...: rate = connections / (latency + pause). The
    latency at that rate is not known beforehand (the peak phase's is inflated by queueing), so
    a short trial run measures it and the pause is set from that."""
    cycle_ms = LATENCY_CONNECTIONS * 1000 / rate
    delay = cycle_ms / 2
    trial = wrk(target, leads, 4, LATENCY_CONNECTIONS, delay)
    latency_ms = LATENCY_CONNECTIONS * 1000 / trial["rps"] - delay
    return max(0.0, cycle_ms - latency_ms)


def check_one_call(base: str, params: dict[str, str], leads: int) -> None:
    """A real call changes 25 leads: the benchmark measures work, not errors."""
    body = {
        "SearchByKey": "EmailAddress",
        "LeadPropertiesList": [
            {
                "Fields": [
                    {"Attribute": "EmailAddress", "Value": email(k)},
                    {"Attribute": "JobTitle", "Value": f"check{time.time()}"},
                ]
            }
            for k in range(25)
        ],
    }
    answer = httpx.post(base + BULK, params=params, json=body, timeout=30).json()
    if answer["Status"]["SuccessCount"] != 25:
        raise RuntimeError(f"the check call did not update 25 leads: {answer}")


def measure(database: str, leads: int, seconds: float, connections: int) -> dict[str, object]:
    url = f"sqlite:///{RESULTS / f'bench-{leads}.db'}" if database == "sqlite" else PG_URL
    print(f"[{database} {leads:,}] preparing ...", file=sys.stderr, flush=True)
    prepared = prepare(url, leads)
    print(f"[{database} {leads:,}] prepared in {prepared.seconds:.0f}s; raw ...", file=sys.stderr, flush=True)
    raw_before = raw.run(url, leads, seconds, prepared.admin_id)
    port = free_port()
    server = start_server(url, port, RESULTS / f"server-{database}-{leads}.log")
    try:
        base = f"http://127.0.0.1:{port}"
        params = {"accessKey": prepared.access_key, "secretKey": prepared.secret_key}
        check_one_call(base, params, leads)
        target = f"{base}{BULK}?accessKey={prepared.access_key}&secretKey={prepared.secret_key}"
        print(f"[{database} {leads:,}] service ...", file=sys.stderr, flush=True)
        wrk(target, leads, 3, connections)  # warm-up
        # The peak is the best of two loads: the group commit shares a COMMIT among the calls
        # waiting together, so more connections can mean more calls a second.
        by_connections = {c: wrk(target, leads, seconds, c) for c in (connections, 2 * connections)}
        peak = max(by_connections.values(), key=lambda run: run["rps"])
        print(f"[{database} {leads:,}] latency alone and at half peak ...", file=sys.stderr, flush=True)
        # The floor of any latency on this machine, against which the half-peak figures read.
        lone = wrk(target, leads, LONE_SECONDS, 1)
        paced = wrk(target, leads, seconds, LATENCY_CONNECTIONS, half_peak_delay(target, leads, peak["rps"] / 2))
        rss = peak_rss_mb(server.pid)
        child_rss = max((peak_rss_mb(child) for child in children(server.pid)), default=None)
    finally:
        server.terminate()
        server.wait(30)
    # The raw figure brackets the service's: this machine's speed drifts by tens of per cent
    # within minutes, and a raw run on one side only would carry that drift into the ratio.
    print(f"[{database} {leads:,}] raw again ...", file=sys.stderr, flush=True)
    raw_after = raw.run(url, leads, seconds, prepared.admin_id)
    raw_lps = (raw_before + raw_after) / 2
    service_lps = peak["rps"] * 25
    return {
        "database": database,
        "leads": leads,
        "raw_leads_per_s": round(raw_lps),
        "raw_before_after": [round(raw_before), round(raw_after)],
        "service_leads_per_s": round(service_lps),
        "service_leads_per_s_by_connections": {c: round(run["rps"] * 25) for c, run in by_connections.items()},
        "ratio": round(service_lps / raw_lps, 2),
        "lone_p50_ms": round(lone["p50_ms"], 2),
        "p50_ms": round(paced["p50_ms"], 2),
        "p99_ms": round(paced["p99_ms"], 2),
        "latency_rate_leads_per_s": round(paced["rps"] * 25),
        "errors": int(sum(run["errors"] for run in [*by_connections.values(), lone, paced])),
        "peak_rss_mb": round(rss, 1),
        "writer_peak_rss_mb": None if child_rss is None else round(child_rss, 1),
        "prepare_s": round(prepared.seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk (make bench does this)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows = [
        measure(database, int(size), args.seconds, args.connections)
        for database in args.databases.split(",")
        for size in args.sizes.split(",")
    ]
    header = (
        f"{'database':<11}{'leads':>10}{'raw/s':>9}{'service/s':>11}{'ratio':>7}"
        f"{'lone ms':>8}{'p50 ms':>8}{'p99 ms':>8}{'RSS MB':>8}"
    )
    print(header)
    for r in rows:
        print(
            f"{r['database']:<11}{r['leads']:>10,}{r['raw_leads_per_s']:>9,}{r['service_leads_per_s']:>11,}"
            f"{r['ratio']:>7}{r['lone_p50_ms']:>8}{r['p50_ms']:>8}{r['p99_ms']:>8}{r['peak_rss_mb']:>8}"
        )
    print(json.dumps({"bench": "bulk-update-v2", "sqlite_synchronous": "FULL", "results": rows}))


if __name__ == "__main__":
    main()
