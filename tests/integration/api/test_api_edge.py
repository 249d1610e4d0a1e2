"""What every response carries: security headers, request ids, CORS; the body size limit."""

from __future__ import annotations

from collections.abc import AsyncIterator

from apitest_helpers import Api, ApiFactory


async def test_security_headers_on_success_and_error(api: Api) -> None:
    for response in (await api.client.get("/products"), await api.client.get("/missing")):
        headers = response.headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
        assert "strict-transport-security" not in headers  # off unless configured
        assert len(headers["x-request-id"]) == 32
        assert headers["content-type"] == "application/json"


async def test_hsts_when_configured(make_api: ApiFactory) -> None:
    async with make_api(HSTS_MAX_AGE_SECONDS="31536000") as api:
        response = await api.client.get("/health/live")
        assert (
            response.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
        )


async def test_cors_follows_the_allow_list(make_api: ApiFactory) -> None:
    async with make_api(CORS_ALLOW_ORIGINS="https://shop.example") as api:
        allowed = await api.client.get("/products", headers={"Origin": "https://shop.example"})
        assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
        other = await api.client.get("/products", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        preflight = await api.client.options(
            "/products",
            headers={
                "Origin": "https://shop.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 200
        assert "POST" in preflight.headers["access-control-allow-methods"]


async def test_no_cors_headers_without_an_allow_list(api: Api) -> None:
    response = await api.client.get("/products", headers={"Origin": "https://shop.example"})
    assert "access-control-allow-origin" not in response.headers


async def test_body_size_limit(make_api: ApiFactory) -> None:
    async with make_api(MAX_BODY_BYTES="2048") as api:
        big = {"email": "a@shop.example", "password": "long enough", "name": "x" * 4000}
        declared = await api.client.post("/auth/register", json=big)
        assert declared.status_code == 413
        assert declared.json()["error"] == "payload_too_large"

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while streaming
            yield b'{"email": "a@shop.example", "password": "long enough", "name": "'
            for _ in range(10):
                yield b"x" * 500
            yield b'"}'

        streamed = await api.client.post(
            "/auth/register", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert streamed.status_code == 413
        # nothing was registered
        login = {"email": "a@shop.example", "password": "long enough"}
        assert (await api.client.post("/auth/login", json=login)).status_code == 401
