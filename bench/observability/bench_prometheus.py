"""Benchmark: Prometheus query time per Grafana dashboard over an hour of data, and the number of
series the API exports per replica with every route exercised.

    scripts/testenv.sh up pg redis            # the test PostgreSQL and Redis
    .venv/bin/python bench/observability/bench_prometheus.py [--hours 1] [--repeat 3]

How: the monitoring lab of the tests (real exporters, Nginx, Alertmanager, two `api serve`
replicas and the reconciler when installed) runs, gets real traffic on every API route, and is
scraped by Debian's Prometheus. The series it scraped are then written out as one hour of history
at the production scrape interval (15 s; counters grow linearly to their scraped value, gauges
keep it) and turned into TSDB blocks with `promtool tsdb create-blocks-from openmetrics`; the
recording rules are backfilled over the same hour with `promtool tsdb create-blocks-from rules`.
A fresh Prometheus serves those blocks, and every query of each dashboard runs over the last hour
the way Grafana sends it (query_range, step 15 s; instant queries at the end), sequentially and
six at a time. Targets: < 1 s of query time per dashboard; < 2,000 series per API replica.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from obs_support import files, queries, tools, traffic  # noqa: E402
from obs_support import lab as lab_module  # noqa: E402

STEP = 15  # seconds, the production scrape interval and Grafana's step for 1 h on a wide panel
SERIES_TARGET = 2000
DASHBOARD_TARGET_S = 1.0


def load_testenv() -> None:
    env_file = ROOT / ".cache" / "testenv" / "env"
    if not env_file.exists():
        sys.exit("no test environment: run scripts/testenv.sh up pg redis first")
    for line in env_file.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            os.environ.setdefault(key, value.strip("'\""))


def snapshot(lab: lab_module.Lab) -> tuple[list[tuple[dict[str, str], float]], dict[str, str]]:
    """Every scraped series (not recording rules, not ALERTS) with its value, and metric types."""
    result = lab.prom_api("query", query='{__name__=~".+", job!=""}')["data"]["result"]
    series = [
        (s["metric"], float(s["value"][1]))
        for s in result
        if ":" not in s["metric"]["__name__"] and not s["metric"]["__name__"].startswith("ALERTS")
    ]
    types: dict[str, str] = {}
    for name, entries in lab.prom_api("metadata")["data"].items():
        types[name] = entries[0]["type"]
    return series, types


def _kind(name: str, types: dict[str, str]) -> str:
    for suffix in ("_bucket", "_sum", "_count", "_total", "_created"):
        base = name.removesuffix(suffix)
        if base != name and types.get(base) in ("histogram", "summary", "counter"):
            return "counter"
    return "counter" if types.get(name) == "counter" else "gauge"


def write_history(
    path: Path,
    series: list[tuple[dict[str, str], float]],
    types: dict[str, str],
    start: int,
    end: int,
) -> int:
    """OpenMetrics text with one sample per STEP from START to END for every series."""
    times = list(range(start, end + 1, STEP))
    span = end - start
    count = 0
    by_name: dict[str, list[tuple[dict[str, str], float]]] = {}
    for labels, value in series:
        by_name.setdefault(labels["__name__"], []).append((labels, value))
    with path.open("w") as out:
        for name, members in sorted(by_name.items()):
            counter = _kind(name, types) == "counter"
            for labels, value in members:
                label_text = ",".join(
                    f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()) if k != "__name__"
                )
                for t in times:
                    v = value * (t - start) / span if counter else value
                    v_text = "NaN" if v != v else repr(float(v))  # NaN gauges stay NaN
                    out.write(f"{name}{{{label_text}}} {v_text} {t}\n")
                    count += 1
        out.write("# EOF\n")
    return count


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def run_promtool(*args: str) -> None:
    result = subprocess.run(
        [tools.newest("promtool"), *args], capture_output=True, text=True, timeout=900
    )
    if result.returncode != 0:
        sys.exit(f"promtool {' '.join(args[:3])} failed:\n{result.stderr[-2000:]}")


def time_query(prom: lab_module.Lab, q: queries.Query, start: int, end: int) -> tuple[float, int]:
    t0 = time.perf_counter()
    if q.instant:
        data = prom.prom_api("query", query=q.expr, time=str(end))
    else:
        data = prom.prom_api(
            "query_range", query=q.expr, start=str(start), end=str(end), step=str(STEP)
        )
    elapsed = time.perf_counter() - t0
    if data["status"] != "success":
        sys.exit(f"query failed: {q.source}: {data.get('error')}")
    return elapsed, len(data["data"]["result"])


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=1.0, help="history to query (default 1)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per dashboard (median kept)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--scale",
        type=int,
        default=1,
        help="copy each API replica's series N times (as N times as many replicas) in the history",
    )
    return parser.parse_args()


def scrape_live_lab(
    work: Path,
) -> tuple[dict[str, int], list[tuple[dict[str, str], float]], dict[str, str]]:
    """Series per API replica, every scraped series and the metric types, from the live lab: real
    services, real traffic, real scrapes."""
    with lab_module.lab(
        work / "live", os.environ["TEST_PG_ADMIN_URL"], os.environ["TEST_REDIS_URL"]
    ) as lab:
        (work / "live").mkdir(exist_ok=True)
        lab.start_exporters()
        api_addresses = traffic.start_api(lab, replicas=2)
        traffic.start_reconciler(lab)
        lab.start_nginx(api_addresses)
        lab.start_alertmanager()
        lab.start_prometheus()
        lab.wait_for_targets_up(sorted({*lab.targets, "prometheus", "blackbox-https"}))
        traffic.drive(lab)
        traffic.wait_for_rules(lab)
        time.sleep(2)
        per_replica = lab.prom_api(
            "query", query='scrape_samples_post_metric_relabeling{job="api"}'
        )
        api_series = {
            r["metric"]["instance"]: int(float(r["value"][1]))
            for r in per_replica["data"]["result"]
        }
        series, types = snapshot(lab)
    return api_series, series, types


def api_copies(
    series: list[tuple[dict[str, str], float]], scale: int
) -> list[tuple[dict[str, str], float]]:
    """SCALE - 1 copies of every API series, each as if from another replica."""
    return [
        ({**labels, "instance": f"{labels['instance']}-copy{k}"}, value)
        for labels, value in series
        if labels.get("job") == "api"
        for k in range(1, scale)
    ]


def build_history_blocks(
    work: Path,
    series: list[tuple[dict[str, str], float]],
    types: dict[str, str],
    start: int,
    end: int,
) -> tuple[Path, int, float]:
    """The TSDB blocks of the series' history, the number of samples in them and the seconds
    promtool took to build them."""
    om = work / "history.om"
    samples = write_history(om, series, types, start, end)
    blocks = work / "query-prometheus" / "data"
    blocks.mkdir(parents=True)
    t0 = time.perf_counter()
    run_promtool("tsdb", "create-blocks-from", "openmetrics", "-q", str(om), str(blocks))
    om.unlink()
    return blocks, samples, time.perf_counter() - t0


def backfill_rules(
    prom: lab_module.Lab, argv: list[str], work: Path, blocks: Path, start: int, end: int
) -> None:
    """Evaluates the recording rules over the history on a first Prometheus serving the blocks,
    adds the blocks of their results, then starts the Prometheus the dashboards are timed on."""
    proc = prom.start("prometheus", argv)
    prom.wait_http(proc, f"{prom.prometheus_url}/-/ready", timeout=120)
    t0 = time.perf_counter()
    rules_out = work / "rule-blocks"
    run_promtool(
        "tsdb",
        "create-blocks-from",
        "rules",
        f"--start={start}",
        f"--end={end}",
        f"--url={prom.prometheus_url}",
        f"--output-dir={rules_out}",
        f"--eval-interval={STEP}s",
        *map(str, files.rule_files()),
    )
    proc.popen.terminate()
    proc.popen.wait(timeout=30)
    prom.procs.remove(proc)
    for block in rules_out.iterdir():
        if block.is_dir():
            shutil.move(str(block), blocks / block.name)
    print(f"recording rules backfilled in {time.perf_counter() - t0:.1f} s")
    proc = prom.start("prometheus-2", argv)
    prom.wait_http(proc, f"{prom.prometheus_url}/-/ready", timeout=120)


def time_dashboard(
    prom: lab_module.Lab, qs: list[queries.Query], start: int, end: int, repeat: int
) -> tuple[float, float, int]:
    """Median seconds to run the queries sequentially and six at a time, and series returned."""
    seq_runs: list[float] = []
    par_runs: list[float] = []
    returned = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        results = [time_query(prom, q, start, end) for q in qs]
        seq_runs.append(time.perf_counter() - t0)
        returned = sum(n for _, n in results)
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            list(pool.map(lambda q: time_query(prom, q, start, end), qs))
        par_runs.append(time.perf_counter() - t0)
    return statistics.median(seq_runs), statistics.median(par_runs), returned


def time_dashboards(prom: lab_module.Lab, start: int, end: int, repeat: int) -> float:
    """Prints each dashboard's query times the way Grafana queries them; returns the slowest."""
    print()
    print(
        f"{'dashboard':32} {'queries':>7} {'series':>7} {'sequential':>11} "
        f"{'6 parallel':>11}  target < {DASHBOARD_TARGET_S:.0f} s"
    )
    worst = 0.0
    for name, dashboard in files.dashboards().items():
        qs = [q for q in queries.dashboard_queries(name, dashboard) if q.language == "promql"]
        seq, par, returned = time_dashboard(prom, qs, start, end, repeat)
        worst = max(worst, seq)
        verdict = "ok" if seq < DASHBOARD_TARGET_S else "OVER"
        print(
            f"{dashboard['title']:32} {len(qs):7d} {returned:7d} {seq:10.3f}s "
            f"{par:10.3f}s  {verdict}"
        )
    loki = sum(
        1
        for d in files.dashboards().items()
        for q in queries.dashboard_queries(*d)
        if q.language == "logql"
    )
    print(f"({loki} LogQL queries go to Loki, which cannot run here, and are not timed)")
    return worst


def query_history(work: Path, blocks: Path, start: int, end: int, repeat: int) -> float:
    """Serves the blocks with the recording rules backfilled; returns the slowest dashboard's
    sequential query time."""
    with lab_module.lab(work / "query-prometheus", "", "") as prom:
        prom.ports["prometheus"] = lab_module.free_port()
        config = work / "query-prometheus" / "prometheus.yml"
        config.write_text("global: {scrape_interval: 15s}\n")
        argv = [
            tools.newest("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={blocks}",
            f"--web.listen-address=127.0.0.1:{prom.ports['prometheus']}",
            "--storage.tsdb.retention.time=30d",
        ]
        backfill_rules(prom, argv, work, blocks, start, end)
        check = prom.prom_api(
            "query", query="count(job_route:http_requests:rate5m)", time=str(end)
        )["data"]["result"]
        print(
            f"recorded request-rate series at the end of the hour: "
            f"{check[0]['value'][1] if check else 0}"
        )
        return time_dashboards(prom, start, end, repeat)


def report_api_series(api_series: dict[str, int]) -> None:
    if not api_series:
        print("API series per replica: not measured (the API is not installed in this checkout)")
        return
    for instance, count in sorted(api_series.items()):
        verdict = "ok" if count < SERIES_TARGET else "OVER"
        print(f"API series per replica ({instance}): {count}  target < {SERIES_TARGET}  {verdict}")


def main() -> int:
    args = parse_args()
    load_testenv()
    work = Path(tempfile.mkdtemp(prefix="bench-obs-"))
    print(f"work directory: {work}")
    end = int(time.time()) // STEP * STEP
    start = end - int(args.hours * 3600)

    # 1. the live lab: real services, real traffic, real scrapes
    api_series, series, types = scrape_live_lab(work)
    jobs = sorted({labels["job"] for labels, _ in series})

    # 2. an hour of history as TSDB blocks, recording rules backfilled over it
    if args.scale > 1:
        copies = api_copies(series, args.scale)
        series += copies
        print(f"scale x{args.scale}: {len(copies)} copied API series")
    blocks, samples, seconds = build_history_blocks(work, series, types, start, end)
    print(
        f"history: {len(series)} series, {samples} samples over {args.hours:g} h "
        f"({seconds:.1f} s to build blocks); jobs: {', '.join(jobs)}"
    )

    # 3. the dashboards, the way Grafana queries them
    worst = query_history(work, blocks, start, end, args.repeat)

    print()
    report_api_series(api_series)
    print(f"slowest dashboard, sequential: {worst:.3f} s")
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
