# ruff: noqa: E501 - the printed tables read better on one line each
"""Benchmark: 3 ``api serve`` processes behind Nginx, PostgreSQL and Redis, loaded with wrk.

Run through ``bench/api/run.sh`` (as root: PostgreSQL is started as the ``postgres`` user). Every
server runs on a free loopback port and is stopped at the end. The same Nginx also fronts three
uvicorn processes serving a plain Starlette hello-world; both are measured in the same run, so the
ratio says what the API's own work (validation, Redis, metrics, logs) costs. Figures are printed,
nothing is asserted: the machine is shared and timing is not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
REPLICAS = 3
TARGET_RATIO = 0.40
TARGET_P95_MS = 50.0
LOAD_SHARE = 0.70

REPORT_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %.3f %.3f %.3f %d\\n", summary.requests, summary.duration,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    e.status + e.connect + e.read + e.write + e.timeout))
end
local pause = tonumber(os.getenv("WRK_DELAY_MS") or "0")
if pause > 0 then delay = function() return pause end end
"""
LOGIN_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email": "bench@shop.example", "password": "bench password"}'
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - loopback
                return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout} s")


def http_json(url: str, body: dict | None = None, token: str | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if body is not None else "GET")  # noqa: S310
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
        return dict(json.loads(response.read() or b"{}"))


@dataclass
class Processes:
    work: Path
    running: list[subprocess.Popen[bytes]]

    def start(self, name: str, command: list[str], env: dict[str, str] | None = None) -> None:
        log = (self.work / f"{name}.log").open("wb")
        self.running.append(
            subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.work)
        )

    def stop_all(self) -> None:
        for process in reversed(self.running):
            if process.poll() is None:
                process.terminate()
        for process in self.running:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextlib.contextmanager
def postgres(work: Path) -> Iterator[str]:
    pg_bin = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
    base = Path(tempfile.mkdtemp(prefix="driftless-bench-pg-"))
    base.chmod(0o711)
    data = base / "data"
    port = free_port()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": True}
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    subprocess.run(
        _as_postgres([str(pg_bin / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]),
        **quiet,  # type: ignore[arg-type]
    )
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c max_connections=200"
    subprocess.run(
        _as_postgres([str(pg_bin / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w",
                      "-o", options, "start"]),
        **quiet,  # type: ignore[arg-type]
    )  # fmt: skip
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres([str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
        )  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)


def nginx_conf(
    work: Path, api_ports: list[int], hello_ports: list[int], ports: tuple[int, int]
) -> Path:
    def upstream(name: str, backends: list[int]) -> str:
        servers = "".join(f"    server 127.0.0.1:{p};\n" for p in backends)
        return f"  upstream {name} {{\n{servers}    keepalive 64;\n  }}\n"

    def server(port: int, backend: str) -> str:
        return f"""  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://{backend};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Country-Code DE;
    }}
  }}
"""

    temp = work / "nginx-temp"
    temp.mkdir(exist_ok=True)
    temp.chmod(0o777)
    conf = work / "nginx.conf"
    conf.write_text(f"""worker_processes 2;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {temp}/body;
  proxy_temp_path {temp}/proxy;
  fastcgi_temp_path {temp}/fastcgi;
  uwsgi_temp_path {temp}/uwsgi;
  scgi_temp_path {temp}/scgi;
{upstream("api", api_ports)}{upstream("hello", hello_ports)}{server(ports[0], "api")}{server(ports[1], "hello")}}}
""")
    return conf


@dataclass(frozen=True)
class Result:
    rate: float
    p50: float
    p95: float
    p99: float
    errors: int


def wrk(url: str, seconds: int, connections: int, script: str, delay_ms: int = 0) -> Result:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script + REPORT_LUA)
    env = {**os.environ, "WRK_DELAY_MS": str(delay_ms)}
    threads = min(2, connections)
    try:
        out = subprocess.run(
            ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
             "--timeout", "10s", "-s", lua.name, url],
            capture_output=True, text=True, env=env, check=True,
        ).stdout  # fmt: skip
    finally:
        os.unlink(lua.name)
    line = next(raw for raw in out.splitlines() if raw.startswith("RESULT "))
    requests, duration_us, p50, p95, p99, errors = line.split()[1:]
    return Result(
        int(requests) / (int(duration_us) / 1e6), float(p50), float(p95), float(p99), int(errors)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=8, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections at max rate")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds at max rate")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="driftless-bench-"))
    return run(args, work, Processes(work, []), free_port())


def run(args: argparse.Namespace, work: Path, procs: Processes, redis_port: int) -> int:
    python = sys.executable
    with postgres(work) as database_url:
        try:
            procs.start("redis", ["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port),
                                  "--save", "", "--appendonly", "no"])  # fmt: skip
            env = {
                **os.environ,
                "DATABASE_URL": database_url,
                "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
                "ENVIRONMENT": "production",
                "LOG_LEVEL": "INFO",
                # the limits stay on (their Redis round trip is part of the cost) but never trip
                "RATE_LIMIT_PER_IP": "1000000000",
                "LOGIN_LIMIT_PER_IP": "1000000000",
                "LOGIN_LIMIT_PER_EMAIL": "1000000000",
                "PYTHONPATH": str(ROOT),
            }
            subprocess.run([python, "-m", "api", "migrate"], env=env, check=True,
                           stdout=subprocess.DEVNULL)  # fmt: skip
            api_ports = [free_port() for _ in range(REPLICAS)]
            hello_ports = [free_port() for _ in range(REPLICAS)]
            for i, port in enumerate(api_ports):
                procs.start(f"api-{i}", [python, "-m", "api", "serve", "--host", "127.0.0.1",
                                         "--port", str(port)], env)  # fmt: skip
            for i, port in enumerate(hello_ports):
                procs.start(f"hello-{i}", [python, "-m", "uvicorn", "--app-dir", str(HERE),
                                           "hello:app", "--host", "127.0.0.1", "--port", str(port),
                                           "--no-access-log", "--log-level", "warning"])  # fmt: skip
            front = (free_port(), free_port())
            conf = nginx_conf(work, api_ports, hello_ports, front)
            procs.start("nginx", ["nginx", "-c", str(conf), "-p", str(work), "-g", "daemon off;"])
            for port in (*api_ports, *hello_ports):
                wait_http(f"http://127.0.0.1:{port}/")
            api = f"http://127.0.0.1:{front[0]}"
            hello = f"http://127.0.0.1:{front[1]}/"
            wait_http(f"{api}/health/ready")
            product_id = seed(api, env)
            return measure(args, api, hello, product_id)
        finally:
            procs.stop_all()
            if os.environ.get("BENCH_KEEP"):
                print(f"logs kept in {work}")
            else:
                shutil.rmtree(work, ignore_errors=True)


def seed(api: str, env: dict[str, str]) -> int:
    subprocess.run(
        [sys.executable, "-m", "api", "create-admin", "--email", "admin@shop.example",
         "--password", "bench admin password"],
        env=env, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    token = http_json(f"{api}/auth/login", {"email": "admin@shop.example",
                                            "password": "bench admin password"})["access_token"]  # fmt: skip
    category = http_json(f"{api}/categories", {"name": "Tools"}, token)
    product_id = 0
    for i in range(100):
        body = {"name": f"Product {i}", "price_cents": 100 + i, "category_id": category["id"]}
        product_id = http_json(f"{api}/products", body, token)["id"]
    http_json(f"{api}/auth/register",
              {"email": "bench@shop.example", "password": "bench password", "name": "Bench"})  # fmt: skip
    return int(product_id)


def measure(args: argparse.Namespace, api: str, hello: str, product_id: int) -> int:
    cases = [
        ("hello-world (plain Starlette)", hello, "", args.connections),
        ("GET /products (cached list)", f"{api}/products?limit=20", "", args.connections),
        ("GET /products/{id} (cached)", f"{api}/products/{product_id}", "", args.connections),
        # argon2id (19 MiB, t=2) is deliberately slow; a few connections saturate it
        ("POST /auth/login (argon2id)", f"{api}/auth/login", LOGIN_LUA, 8),
    ]
    print(f"machine: {os.cpu_count()} CPUs; {REPLICAS} API + {REPLICAS} hello-world processes "
          f"behind nginx; wrk {args.duration}s per case\n")  # fmt: skip
    header = f"{'endpoint':34} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7} {'vs hello':>9}"
    for _, url, script, connections in cases:
        wrk(url, 2, connections, script)  # warm-up: pools, caches, connections
    # the machine may be shared: run the cases in rounds, one after the other, and keep each
    # case's median round, so a load change elsewhere affects the hello-world and the API alike
    rounds: dict[str, list[Result]] = {name: [] for name, *_ in cases}
    for _ in range(args.rounds):
        for name, url, script, connections in cases:
            rounds[name].append(wrk(url, args.duration, connections, script))
    maxima = {name: sorted(results, key=lambda r: r.rate)[len(results) // 2]
              for name, results in rounds.items()}  # fmt: skip
    baseline = maxima[cases[0][0]].rate
    print(f"maximum rate (median of {args.rounds} interleaved rounds)")
    print(header)
    for name, *_ in cases:
        result = maxima[name]
        spread = ", ".join(f"{r.rate:.0f}" for r in rounds[name])
        print(f"{name:34} {result.rate:9.0f} {result.p50:8.2f} {result.p95:8.2f} {result.p99:8.2f} "
              f"{result.errors:7d} {result.rate / baseline:8.0%}   rounds: {spread}")  # fmt: skip

    print(f"\nat {LOAD_SHARE:.0%} of each maximum (paced with wrk's delay(); achieved rate shown)")
    print(
        f"{'endpoint':34} {'target':>9} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7}"
    )
    paced: dict[str, Result] = {}
    for name, url, script, connections in cases:
        target = maxima[name].rate * LOAD_SHARE
        # each connection sends one request, waits for the answer, then pauses: rate =
        # connections / (pause + latency). A short calibration run measures the latency at
        # about this rate, then the pause is set so that the rate meets the target.
        delay_ms = max(1, round(connections * 1000 / target))
        probe = wrk(url, 3, connections, script, delay_ms)
        latency_ms = max(0.0, connections * 1000 / max(probe.rate, 1e-9) - delay_ms)
        delay_ms = max(1, round(connections * 1000 / target - latency_ms))
        result = wrk(url, args.duration, connections, script, delay_ms)
        paced[name] = result
        print(f"{name:34} {target:9.0f} {result.rate:9.0f} {result.p50:8.2f} {result.p95:8.2f} "
              f"{result.p99:8.2f} {result.errors:7d}")  # fmt: skip

    listing = cases[1][0]
    ratio = maxima[listing].rate / baseline
    print(f"\ncached list / hello-world throughput: {ratio:.0%} (target >= {TARGET_RATIO:.0%}): "
          f"{'met' if ratio >= TARGET_RATIO else 'NOT met'}")  # fmt: skip
    for name in (cases[1][0], cases[2][0], cases[3][0]):
        p95 = paced[name].p95
        verdict = "met" if p95 <= TARGET_P95_MS else "NOT met"
        print(
            f"{name}: p95 {p95:.1f} ms at {LOAD_SHARE:.0%} load (target <= {TARGET_P95_MS:.0f} ms): {verdict}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
