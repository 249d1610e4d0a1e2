"""The progressive-delivery e2e tests' world: the test service in good and faulty builds, a
real Prometheus (the Debian stand-in of images/local/prometheus) scraping every task of it, a
load generator so the canary serves real requests, and the analyses of the canary."""

from __future__ import annotations

import json
from pathlib import Path

from reconciler_support.e2e import APP_DIR, sh

ROOT = Path(__file__).resolve().parents[2]

#: tag → (APP_FAULT, what goes wrong); the tag is also the version the build reports
BUILDS = {
    "c1": ("", "good"),
    "c2": ("", "good"),
    "c3": ("version=c0", "serves the wrong version"),
    "c4": ("errors=/items", "answers HTTP 500 on /items"),
    "c5": ("slow=10", "answers ten times slower"),
    "c6": ("crash-after=20s", "exits 20 s after it started"),
}


def build(registry: str, base_image: str, prefix: str) -> dict[str, str]:
    """The app in every build, and the Prometheus stand-in, pushed to the local registry."""
    repo = f"{registry}/{prefix}/reconciler-e2e-app"
    images = {}
    for tag, (fault, _) in BUILDS.items():
        ref = f"{repo}:{tag}"
        sh("docker", "build", "-q", "-t", ref, "--build-arg", f"PYTHON_IMAGE={base_image}",
           "--build-arg", f"APP_VERSION={tag}", "--build-arg", f"APP_FAULT={fault}",
           "--label", f"driftless.test={prefix}", str(APP_DIR))  # fmt: skip
        sh("docker", "push", "-q", ref)
        images[tag] = ref
    prometheus = f"{registry}/{prefix}/prometheus:local"
    sh("docker", "build", "-q", "-t", prometheus, "--build-arg", f"BASE_IMAGE={base_image}",
       "--label", f"driftless.test={prefix}", str(ROOT / "images" / "local" / "prometheus"),
       timeout=900)  # fmt: skip
    sh("docker", "push", "-q", prometheus)
    images["prometheus"] = prometheus
    return images


#: ~20 requests a second spread over the api's tasks (Swarm's DNS answers every task, shuffled)
LOAD = """
import threading, time, urllib.request
def hit(path):
    while True:
        try:
            urllib.request.urlopen("http://api:8080" + path, timeout=5).read()
        except Exception:
            pass
        time.sleep(0.1)
for path in ("/", "/items"):
    threading.Thread(target=hit, args=(path,), daemon=True).start()
while True:
    time.sleep(60)
"""

PROMETHEUS_YML = """global:
  scrape_interval: 2s
  evaluation_interval: 2s
scrape_configs:
  - job_name: api
    dns_sd_configs:
      - names: [tasks.api]
        type: A
        port: 8080
        refresh_interval: 2s
"""

#: the canary's analyses, as the production ones (desired-state/production/analysis.yaml) but
#: on the test service's metrics and with windows that fit its 2 s scrapes
ANALYSIS_YML = """api:
  - name: error-rate
    query: >-
      (sum(rate(http_requests_total{job="api", status=~"5.."}[20s])
           * on(instance) group_left() app_build_info{job="api", version="{tag}"})
       or vector(0))
      / sum(rate(http_requests_total{job="api"}[20s])
            * on(instance) group_left() app_build_info{job="api", version="{tag}"})
    success: result < 0.05
    interval: 2s
  - name: latency-p95-ratio
    query: >-
      histogram_quantile(0.95, sum by (le) (
        rate(http_request_duration_seconds_bucket{job="api"}[20s])
        * on(instance) group_left() app_build_info{job="api", version="{tag}"}))
      / ((histogram_quantile(0.95, sum by (le) (
            rate(http_request_duration_seconds_bucket{job="api"}[20s])
            * on(instance) group_left() app_build_info{job="api", version="{stable_tag}"}))
          >= 0.02) or vector(0.02))
    success: result < 3
    interval: 2s
    failure_limit: 1
"""


def stack_yml(prefix: str, prometheus_port: int) -> str:
    return f"""version: "3.8"
services:
  api:
    labels: {{driftless.test: {prefix}}}
    networks: [back]
    deploy:
      endpoint_mode: dnsrr
      replicas: 3
      labels:
        driftless.health.url: "http://api:8080/version"
        driftless.health.network: back
        driftless.health.expect-version: "{{tag}}"
        driftless.health.timeout: "30s"
        driftless.health.interval: "1s"
        driftless.rollout.canary: "1"
        driftless.rollout.window: "30s"
      update_config: {{order: start-first, parallelism: 1, delay: 1s, monitor: 2s}}
      rollback_config: {{order: start-first, parallelism: 1, monitor: 2s}}
      restart_policy: {{condition: any, delay: 2s}}
  load:
    labels: {{driftless.test: {prefix}}}
    command: ["python3", "-c", {json.dumps(LOAD)}]
    networks: [back]
    deploy:
      endpoint_mode: dnsrr
  prometheus:
    labels: {{driftless.test: {prefix}}}
    configs:
      - {{source: prometheus_conf, target: /etc/prometheus/prometheus.yml}}
    networks: [back]
    ports:
      - {{target: 9090, published: {prometheus_port}, mode: host}}
    deploy:
      endpoint_mode: dnsrr
configs:
  prometheus_conf: {{file: ./prometheus.yml}}
networks:
  back:
    driver: overlay
    attachable: true
"""


def images_yml(images: dict[str, str], api: str) -> str:
    return f"api: {images[api]}\nload: {images['c1']}\nprometheus: {images['prometheus']}\n"
