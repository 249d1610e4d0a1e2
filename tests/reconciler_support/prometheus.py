"""A real Prometheus (Debian 13's, unpacked by scripts/deps.sh) on a free loopback port, as a
child process, scraping the targets it is given every second."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml
from obs_support import tools
from obs_support.lab import free_port, http_get, wait_until


class Prometheus:
    """Debian 13's Prometheus on a free loopback port, as a child process."""

    def __init__(self, workdir: Path, targets: list[str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
            "scrape_configs": [{"job_name": "api", "static_configs": [{"targets": targets}]}],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = workdir / "prometheus.log"
        with self.log.open("wb") as log:
            self.popen = subprocess.Popen(
                [
                    tools.newest("prometheus"),
                    f"--config.file={workdir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until("Prometheus", self._ready, timeout=30)

    def _ready(self) -> bool:
        if self.popen.poll() is not None:
            raise RuntimeError(f"Prometheus exited: {self.log.read_text()[-2000:]}")
        http_get(f"{self.url}/-/ready", timeout=2)
        return True

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
