"""The whole platform on a real single-node Swarm, deployed and changed only through git.

The reconciler runs as a host process (as under systemd) against a local git remote holding this
repository's desired state; images come from the local registry. The tests run in file order:

1. the first deploy, then the API through Nginx: register, log in, create a product, read it back;
2. a tag bump under continuous load: zero failed requests, every replica on the new version;
3. a bump to an image that fails readiness: rolled back, reverted in git, zero failed requests;
4. rows written before survive the updates and a PostgreSQL restart.

Along the way, the deployed nginx itself: its access log, rate limits, headers, the ACME webroot,
and the switch from the fallback certificate to the one certbot obtains.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from stack_harness import ROOT, Platform, load, revision_sha, run, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SMOKE = ROOT / "scripts" / "smoke.sh"
FIRST_DEPLOY_TIMEOUT = 420
UPDATE_TIMEOUT = 300


def smoke(platform: Platform, expect: str) -> str:
    proc = subprocess.run(
        [
            str(SMOKE),
            platform.stack.url,
            "--cacert",
            str(platform.stack.cacert),
            "--expect-version",
            expect,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"smoke test failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def tag(image: str) -> str:
    return image.rsplit(":", 1)[1]


def all_replicas_on(platform: Platform, image: str) -> bool:
    running = platform.stack.running_images("api")
    return running == {image: 3}


def report(artifacts: Path, name: str, figures: dict[str, object]) -> None:
    print(f"\n[{name}] " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    path = artifacts / "platform-e2e" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2, default=str))


def test_first_deploy_serves_the_api_through_nginx(platform: Platform) -> None:
    rec = platform.reconciler
    rec.wait_applied(platform.first_revision, FIRST_DEPLOY_TIMEOUT)
    rec.wait_history(platform.first_revision, "success", 10)
    assert all_replicas_on(platform, platform.images.api_v1)
    for name in ("grafana", "loki", "alloy", "cadvisor"):
        assert not platform.stack.tasks(name), f"{name} has no image here and must not run"
    smoke(platform, tag(platform.images.api_v1))

    # an administrator (created the way an operator does: `api create-admin` in a task) makes a
    # category; a user registers, logs in, creates a product and reads it back, all through nginx
    admin_pw = "admin-" + platform.stack.name + "-pw"
    subprocess.run(
        ["docker", "exec", "-i", platform.stack.container("api"), "api", "create-admin",
         "--email", "admin@e2e.example.org"],
        input=admin_pw + "\n", text=True, capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    with platform.stack.client() as http:
        r = http.post("/auth/login", json={"email": "admin@e2e.example.org", "password": admin_pw})
        assert r.status_code == 200, r.text
        admin = {"Authorization": f"Bearer {r.json()['access_token']}"}
        r = http.post("/categories", json={"name": "Tools"}, headers=admin)
        assert r.status_code == 201, r.text
        category = r.json()["id"]

        user = {
            "email": "buyer@e2e.example.org",
            "password": "correct horse battery",
            "name": "Buyer",
        }
        r = http.post("/auth/register", json=user)
        assert r.status_code == 201, r.text
        assert r.headers.get("x-request-id"), "nginx and the API give every response a request id"
        assert r.headers.get("strict-transport-security"), "nginx adds the security headers"
        r = http.post("/auth/login", json={"email": user["email"], "password": user["password"]})
        assert r.status_code == 200, r.text
        auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
        product = {"name": "Hammer", "price_cents": 1999, "category_id": category}
        r = http.post("/products", json=product, headers=auth)
        assert r.status_code == 201, r.text
        created = r.json()
        r = http.get(f"/products/{created['id']}")
        assert r.status_code == 200, r.text
        assert r.json()["name"] == "Hammer"
        assert r.json()["price_cents"] == 1999
        # the edge keeps the API's metrics private
        assert http.get("/metrics").status_code == 404
    platform.notes["product"] = created


def test_nginx_logs_limits_and_serves_certbot_challenges(platform: Platform) -> None:
    """The production nginx.conf as deployed: one JSON access line per request with the request
    id and the upstream's time, per-address rate limits, the security headers, and port 80 serving
    the ACME challenges certbot writes into the shared webroot while redirecting the rest."""
    stack = platform.stack
    request_id = f"e2e-{stack.name}-access-0001"
    with stack.client() as http:
        r = http.get("/version", headers={"X-Request-ID": request_id})
        assert r.status_code == 200
        assert r.headers["x-request-id"] == request_id, "the client's id is kept end to end"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert "server" not in r.headers or "nginx/" not in r.headers["server"]

    def access_line() -> dict[str, object] | None:
        logs = subprocess.run(
            ["docker", "logs", stack.container("nginx")],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        for line in (logs.stdout + logs.stderr).splitlines():
            if request_id in line:
                return dict(json.loads(line))
        return None

    line = wait_until("nginx's access line of the request", access_line, 20)
    assert line["request_id"] == request_id
    assert line["uri"] == "/version"
    assert line["status"] == 200
    assert float(str(line["upstream_response_time"])) >= 0, line
    assert str(line["upstream_addr"]).endswith(":3000"), line

    # /auth/ allows 5 requests/s per address with a burst of 20; what exceeds it gets 429
    with stack.client() as http:
        answers = [http.get("/auth/login").status_code for _ in range(40)]
    assert 429 in answers, answers
    assert answers[0] != 429, "the first requests pass"

    http_port = platform.reconciler.variables["DRIFTLESS_HTTP_PORT"]
    token = f"e2e{stack.name}challenge"
    run(
        "docker", "exec", stack.container("certbot"), "sh", "-c",
        "mkdir -p /var/www/certbot/.well-known/acme-challenge && "
        f"printf %s {token} >/var/www/certbot/.well-known/acme-challenge/{token}",
    )  # fmt: skip
    with httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=10) as plain:
        r = plain.get(f"/.well-known/acme-challenge/{token}")
        assert r.status_code == 200, r.text
        assert r.text == token, "nginx serves what certbot wrote for Let's Encrypt"
        r = plain.get("/products?limit=1")
        assert r.status_code == 308
        assert r.headers["location"].startswith("https://")


def test_tag_bump_deploys_with_zero_failed_requests(
    platform: Platform, artifacts_dir: Path
) -> None:
    new = platform.images.api_v2
    with load(platform.stack) as gen:
        time.sleep(3)  # traffic flows before the release
        committed_at = time.monotonic()
        sha = platform.repo.bump({"api": new, "migrate": new}, f"Release api {tag(new)}")
        wait_until(
            "3 replicas on the new image", lambda: all_replicas_on(platform, new), UPDATE_TIMEOUT
        )
        replicas_at = time.monotonic()
        # the replaced containers drain their in-flight requests before they exit
        wait_until(
            "the old containers to exit",
            lambda: set(platform.stack.container_images("api")) == {new},
            UPDATE_TIMEOUT,
        )
        old_gone_at = time.monotonic()
        status = platform.reconciler.wait_applied(sha, UPDATE_TIMEOUT)
        applied_at = time.monotonic()
        time.sleep(3)  # and keeps flowing after it
        result = gen.stop()
    assert platform.reconciler.wait_history(sha, "success", 10), status
    serving_new = [t for t, v in result.timeline if v == tag(new)]
    # a request sent after the last old container exited can only reach the new release
    old_after = [t for t, v in result.timeline if v != tag(new) and t > old_gone_at]
    figures = {
        "requests_sent": result.sent,
        "requests_failed": result.failed,
        "seconds_commit_to_all_replicas_new": round(replicas_at - committed_at, 1),
        "seconds_commit_to_old_containers_gone": round(old_gone_at - committed_at, 1),
        "seconds_commit_to_reconciler_verified": round(applied_at - committed_at, 1),
        "seconds_commit_to_first_new_answer": round(min(serving_new) - committed_at, 1)
        if serving_new
        else None,
        "versions_seen": dict(result.versions),
    }
    report(artifacts_dir, "tag-bump", figures)
    assert result.sent > 100, "the load generator must have run during the whole update"
    assert result.failed == 0, result.failures
    assert result.versions[tag(new)] > 0
    assert not old_after, "the old version answered after its last container had exited"
    smoke(platform, tag(new))


def test_bad_release_is_rolled_back_and_reverted_without_failed_requests(
    platform: Platform, artifacts_dir: Path
) -> None:
    good, bad = platform.images.api_v2, platform.images.api_bad
    with load(platform.stack) as gen:
        time.sleep(3)
        committed_at = time.monotonic()
        sha = platform.repo.bump({"api": bad}, "Release api e2e-bad")
        entry = platform.reconciler.wait_history(sha, "rolled_back", UPDATE_TIMEOUT + 120)
        wait_until(
            "the revert in the remote",
            lambda: platform.repo.remote_images()["api"] == good,
            60,
        )
        wait_until(
            "3 replicas back on the good image", lambda: all_replicas_on(platform, good), 120
        )
        done_at = time.monotonic()
        time.sleep(3)
        result = gen.stop()
    figures = {
        "requests_sent": result.sent,
        "requests_failed": result.failed,
        "seconds_commit_to_reverted_and_back": round(done_at - committed_at, 1),
        "reason": entry.get("reason"),
        "versions_seen": dict(result.versions),
    }
    report(artifacts_dir, "bad-release", figures)
    assert result.failed == 0, result.failures
    assert set(result.versions) == {tag(good)}, "only the previous release may answer"
    assert result.sent > 100
    subjects = platform.repo.remote_subjects(5)
    assert subjects[0].startswith("Revert"), subjects
    assert any("e2e-bad" in s for s in subjects[:2]), subjects
    status = platform.reconciler.status()
    quarantined = [revision_sha(q) for q in status.get("quarantine", [])]
    assert sha in quarantined, "the failed revision is never applied again"
    smoke(platform, tag(good))


def test_data_survives_updates_and_a_postgres_restart(platform: Platform) -> None:
    product = platform.notes.get("product")
    assert product, "the first test creates the product this one reads"

    def read() -> dict[str, object]:
        with platform.stack.client() as http:
            r = http.get(f"/products/{product['id']}")
            assert r.status_code == 200, r.text
            return dict(r.json())

    assert read()["name"] == "Hammer", "written before two releases"
    before = platform.stack.container("postgres")
    run(
        "docker",
        "service",
        "update",
        "--quiet",
        "--force",
        f"{platform.stack.name}_postgres",
        timeout=300,
    )
    wait_until("a new PostgreSQL task", lambda: platform.stack.container("postgres") != before, 120)
    wait_until(
        "the API ready again", lambda: smoke(platform, tag(platform.images.api_v2)), 180, every=3
    )
    assert read() == product, "the row is unchanged after the restart"


def test_nginx_switches_to_the_certificate_certbot_obtained(
    platform: Platform, tmp_path: Path
) -> None:
    """Until certbot has a Let's Encrypt certificate nginx serves the self-signed fallback; once
    certbot's files are in the shared letsencrypt volume, the TLS hook (run at start and every
    TLS_RELOAD_INTERVAL) picks them and nginx reloads onto them without a restart. Let's Encrypt
    cannot be reached from here: a certificate made with openssl stands in for the one certbot
    would write, at the path certbot writes it."""
    stack = platform.stack
    live = "/etc/letsencrypt/live/driftless"
    key, cert = tmp_path / "privkey.pem", tmp_path / "fullchain.pem"
    run(
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", f"/CN={stack.name}.le.example.org", "-keyout", key, "-out", cert,
    )  # fmt: skip

    def served() -> bytes:
        pem = ssl.get_server_certificate(("127.0.0.1", stack.https_port), timeout=10)
        return ssl.PEM_cert_to_DER_cert(pem)

    def all_serve(cert: bytes) -> bool:
        # for a moment after a reload, nginx's old workers still accept connections (with the
        # certificate they loaded) beside the new ones: every connection must get it, not one
        return all(served() == cert for _ in range(20))

    fallback = ssl.PEM_cert_to_DER_cert(stack.cacert.read_text())
    ours = ssl.PEM_cert_to_DER_cert(cert.read_text())
    assert served() == fallback
    certbot, nginx = stack.container("certbot"), stack.container("nginx")
    hook = "/docker-entrypoint.d/10-driftless-tls.sh && nginx -s reload"
    try:
        run("docker", "exec", certbot, "mkdir", "-p", live)
        for path in (key, cert):
            run("docker", "cp", path, f"{certbot}:{live}/{path.name}")
        out = run("docker", "exec", nginx, "sh", "-c", hook)
        assert f"serving {live}/fullchain.pem" in out
        wait_until("nginx to serve certbot's certificate", lambda: all_serve(ours), 20)
    finally:
        run("docker", "exec", certbot, "rm", "-rf", live, check=False)
        run("docker", "exec", nginx, "sh", "-c", hook, check=False)
    wait_until("nginx back on the fallback", lambda: all_serve(fallback), 20)


def test_a_replica_that_refuses_connections_costs_no_request(
    platform: Platform, artifacts_dir: Path
) -> None:
    """nginx's passive health checks: one API replica stays in DNS and healthy for Swarm but
    refuses every connection from the network (a REJECT rule in that container's own network
    namespace; its loopback health check still passes). Under load, every request that nginx
    sends it is retried on another replica: no client sees an error."""
    stack = platform.stack
    victim = stack.container("api")
    pid = run("docker", "inspect", "-f", "{{.State.Pid}}", victim).strip()
    # --syn: new connections are refused; one already carrying a response when the rule lands
    # finishes (a reset in the middle of a response is a crash, which no proxy can retry once the
    # client has the headers; that is not a replica refusing connections)
    rule = ["INPUT", "!", "-i", "lo", "-p", "tcp", "--dport", "3000", "--syn", "-j", "REJECT",
            "--reject-with", "tcp-reset"]  # fmt: skip
    with load(stack) as gen:
        time.sleep(2)
        run("nsenter", "-t", pid, "-n", "iptables", "-I", *rule)
        try:
            time.sleep(8)
        finally:
            run("nsenter", "-t", pid, "-n", "iptables", "-D", *rule)
        time.sleep(2)
        result = gen.stop()
    report(artifacts_dir, "replica-refusing", {"requests_sent": result.sent,
                                               "requests_failed": result.failed})  # fmt: skip
    assert result.sent > 100
    assert result.failed == 0, result.failures
