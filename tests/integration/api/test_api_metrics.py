"""The metric names and labels of docs/interfaces.md appear in /metrics after real requests."""

from __future__ import annotations

from apitest_helpers import Api, ApiFactory
from prometheus_client.parser import text_string_to_metric_families


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def _value(samples: dict, name: str, **labels: str) -> float:
    matching = [
        v for lab, v in samples.get(name, []) if all(lab.get(k) == w for k, w in labels.items())
    ]
    assert matching, f"no {name} with {labels}"
    return sum(matching)


async def test_metrics_after_real_requests(make_api: ApiFactory) -> None:
    env = {"APP_VERSION": "9.9.9", "GIT_REVISION": "f00", "IMAGE_TAG": "sha-f00"}
    async with make_api(**env) as api:
        client = api.client
        germany = {"X-Country-Code": "de"}
        admin = await api.admin("metrics-admin@shop.example")
        user = await api.user("metrics-user@shop.example")
        await client.post(
            "/auth/login", json={"email": "metrics-user@shop.example", "password": "nope-nope"}
        )
        category = (await client.post("/categories", json={"name": "Tools"}, headers=admin)).json()
        body = {"name": "Hammer", "price_cents": 1, "category_id": category["id"]}
        product = (await client.post("/products", json=body, headers=user)).json()
        await client.get("/products", headers=germany)
        await client.get("/products", headers=germany)
        await client.get(f"/products/{product['id']}", headers={"X-Country-Code": "XX"})
        await client.get("/products/123456")
        await client.get("/no/such/path/42")
        await client.request("BREW", "/products")  # any token is a valid method on the wire

        response = await client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        text = response.text
    samples = _samples(text)

    def got(name: str, **labels: str) -> float:
        return _value(samples, name, **labels)

    assert got("http_requests_total", method="GET", route="/products", status="200") == 2
    assert got("http_requests_total", route="/products/{product_id}", status="404") == 1
    assert got("http_requests_total", route="unmatched", status="404") == 1
    assert got("http_requests_total", method="POST", route="/auth/login", status="401") == 1
    routes = {labels["route"] for labels, _ in samples["http_requests_total"]}
    assert not any(any(ch.isdigit() for ch in route) for route in routes), routes  # no raw ids

    buckets = {lab["le"] for lab, _ in samples["http_request_duration_seconds_bucket"]}
    assert {"0.005", "0.05", "0.1", "0.5", "1.0", "5.0", "+Inf"} <= buckets
    assert got("http_request_duration_seconds_count", method="GET", route="/products") == 2
    assert "http_requests_in_flight" in samples
    methods = {labels["method"] for labels, _ in samples["http_requests_total"]}
    assert methods == {"GET", "POST", "other"}
    assert got("api_active_users") == 2
    assert got("api_user_registrations_total") == 1
    assert got("api_products_created_total", category=str(category["id"])) == 1
    assert got("api_login_attempts_total", result="success") == 2
    assert got("api_login_attempts_total", result="failure") == 1
    assert got("api_requests_by_country_total", country="DE") == 2
    assert got("api_requests_by_country_total", country="unknown") >= 1
    assert got("api_cache_requests_total", cache="product_list", result="miss") == 1
    assert got("api_cache_requests_total", cache="product_list", result="hit") == 1
    assert got("api_build_info", version="9.9.9", revision="f00", image_tag="sha-f00") == 1
    assert "metrics-user@shop.example" not in text


async def test_country_header_is_ignored_from_untrusted_peers(make_api: ApiFactory) -> None:
    async with make_api(TRUSTED_PROXIES="10.0.0.0/8") as api:
        await api.client.get("/health/live", headers={"X-Country-Code": "FR"})
        samples = _samples((await api.client.get("/metrics")).text)
    countries = {lab["country"] for lab, _ in samples["api_requests_by_country_total"]}
    assert "FR" not in countries
    assert "unknown" in countries


async def test_login_results_are_exported_at_zero_before_any_login(make_api: ApiFactory) -> None:
    """Prometheus' increase() cannot count a series' first value: the failed-logins alert sees a
    burst of failures in a fresh replica only because the series already existed at 0."""
    async with make_api() as api:
        text = (await api.client.get("/metrics")).text
    samples = _samples(text)
    for result in ("success", "failure", "rate_limited"):
        assert _value(samples, "api_login_attempts_total", result=result) == 0


async def test_active_users_are_those_seen_in_the_last_five_minutes(make_api: ApiFactory) -> None:
    """``api_active_users`` counts signed-in users seen within ACTIVE_USER_WINDOW_SECONDS (300),
    and every replica reports the same count (the set lives in Redis)."""

    async def active(api: Api) -> float:
        return _value(_samples((await api.client.get("/metrics")).text), "api_active_users")

    async with make_api() as api, make_api() as other:
        ann = await api.user("ann@shop.example")
        assert await active(api) == 0  # signing in is not being seen: using the token is
        assert (await api.client.get("/users/me", headers=ann)).status_code == 200
        assert await active(api) == 1
        api.clock.advance(200)
        bob = await api.user("bob@shop.example")
        assert (await api.client.get("/users/me", headers=bob)).status_code == 200
        assert await active(api) == 2
        other.clock.value = api.clock.value
        assert await active(other) == 2  # another replica sees the same users
        api.clock.advance(150)  # Ann was last seen 350 s ago, Bob 150 s ago
        assert await active(api) == 1
        assert (await api.client.post("/auth/logout", headers=ann)).status_code == 204
        assert await active(api) == 2
        api.clock.advance(301)
        assert await active(api) == 0
