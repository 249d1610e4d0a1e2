"""Rate limits in Redis: the global per-IP limit and login attempts per IP and per e-mail."""

from __future__ import annotations

import asyncio

from apitest_helpers import PASSWORD, Api, ApiFactory


def _login_metric(api: Api, result: str) -> float:
    value = api.services.metrics.registry.get_sample_value(
        "api_login_attempts_total", {"result": result}
    )
    return value or 0.0


async def test_global_limit_per_client_address(make_api: ApiFactory) -> None:
    async with make_api(RATE_LIMIT_PER_IP="5", RATE_LIMIT_WINDOW_SECONDS="60") as api:
        alice = {"X-Forwarded-For": "203.0.113.7"}
        for _ in range(5):
            assert (await api.client.get("/categories", headers=alice)).status_code == 200
        limited = await api.client.get("/products", headers=alice)
        assert limited.status_code == 429
        assert limited.json()["error"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 120
        # another client behind the same proxy is not affected; probes are never limited
        bob = {"X-Forwarded-For": "198.51.100.9"}
        assert (await api.client.get("/categories", headers=bob)).status_code == 200
        assert (await api.client.get("/health/live", headers=alice)).status_code == 200
        assert (await api.client.get("/metrics", headers=alice)).status_code == 200
        # the sliding window forgets: two windows later alice may ask again
        api.clock.advance(int(limited.headers["retry-after"]))
        assert (await api.client.get("/categories", headers=alice)).status_code == 200
        api.clock.advance(120)
        for _ in range(5):
            assert (await api.client.get("/categories", headers=alice)).status_code == 200


async def test_forwarded_for_is_ignored_from_untrusted_peers(make_api: ApiFactory) -> None:
    async with make_api(RATE_LIMIT_PER_IP="2", TRUSTED_PROXIES="10.9.9.9") as api:
        for spoofed in ("1.1.1.1", "2.2.2.2"):
            response = await api.client.get("/categories", headers={"X-Forwarded-For": spoofed})
            assert response.status_code == 200
        third = await api.client.get("/categories", headers={"X-Forwarded-For": "3.3.3.3"})
        assert third.status_code == 429  # all three counted against the real peer


async def test_login_attempts_per_address(make_api: ApiFactory) -> None:
    async with make_api(LOGIN_LIMIT_PER_IP="3") as api:
        await api.register("ip@shop.example")
        for _ in range(3):
            response = await api.client.post(
                "/auth/login", json={"email": "ip@shop.example", "password": PASSWORD}
            )
            assert response.status_code == 200
        limited = await api.client.post(
            "/auth/login", json={"email": "ip@shop.example", "password": PASSWORD}
        )
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert _login_metric(api, "rate_limited") == 1
        assert _login_metric(api, "success") == 3


async def test_failed_logins_per_email_lock_that_email_only(make_api: ApiFactory) -> None:
    async with make_api(
        LOGIN_LIMIT_PER_EMAIL="3", LOGIN_LIMIT_PER_EMAIL_WINDOW_SECONDS="900"
    ) as api:
        await api.register("victim@shop.example")
        await api.register("bystander@shop.example")
        for i in range(3):
            wrong = await api.client.post(
                "/auth/login",
                json={"email": "victim@shop.example", "password": "guess number " + str(i)},
                headers={"X-Forwarded-For": f"203.0.113.{i}"},  # from different addresses
            )
            assert wrong.status_code == 401
        right = await api.client.post(
            "/auth/login", json={"email": "VICTIM@shop.example", "password": PASSWORD}
        )
        assert right.status_code == 429  # even the right password, until the window passes
        assert 1 <= int(right.headers["retry-after"]) <= 1800
        assert _login_metric(api, "failure") == 3
        assert (await api.client.post(
            "/auth/login", json={"email": "bystander@shop.example", "password": PASSWORD}
        )).status_code == 200  # fmt: skip

        api.clock.advance(int(right.headers["retry-after"]))
        again = await api.client.post(
            "/auth/login", json={"email": "victim@shop.example", "password": PASSWORD}
        )
        assert again.status_code == 200


async def test_replicas_share_the_per_address_limit(make_api: ApiFactory) -> None:
    """Each replica decides locally and syncs in the background: together they enforce one limit.

    A replica learns a client's global counts when it first sees it, then from each sync.
    """
    limits = {"RATE_LIMIT_PER_IP": "10", "RATE_LIMIT_SYNC_MS": "50"}
    async with make_api(**limits) as first, make_api(**limits) as second:
        second.clock.value = first.clock.value  # one shared notion of the current window
        client = {"X-Forwarded-For": "203.0.113.50"}
        for _ in range(6):
            assert (await first.client.get("/categories", headers=client)).status_code == 200
        await asyncio.sleep(0.3)  # "first" has synchronised its counts
        statuses = [
            (await second.client.get("/categories", headers=client)).status_code for _ in range(6)
        ]
        assert statuses == [200] * 4 + [429] * 2
        await asyncio.sleep(0.3)  # and now "second" has
        assert (await first.client.get("/categories", headers=client)).status_code == 429
