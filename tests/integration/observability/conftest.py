"""A monitoring lab for the live observability tests: real exporters, Nginx, Alertmanager and
Prometheus (Debian packages) on loopback, plus the project's API and reconciler when installed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from obs_support import lab as lab_module
from obs_support import traffic


@pytest.fixture(scope="package")
def monitoring_lab(
    tmp_path_factory: pytest.TempPathFactory, pg_admin_url: str, redis_url: str
) -> Iterator[lab_module.Lab]:
    workdir: Path = tmp_path_factory.mktemp("monitoring-lab")
    with lab_module.lab(workdir, pg_admin_url, redis_url) as the_lab:
        the_lab.start_exporters()
        api_addresses = traffic.start_api(the_lab, replicas=2)
        traffic.start_reconciler(the_lab)
        the_lab.start_nginx(api_addresses)
        the_lab.start_alertmanager(fast_groups=True)
        the_lab.start_prometheus()
        the_lab.wait_for_targets_up(sorted({*the_lab.targets, "prometheus", "blackbox-https"}))
        traffic.drive(the_lab)
        traffic.wait_for_rules(the_lab)
        yield the_lab
