"""Request context helpers: trace ids, the client address behind proxies, the country header."""

from __future__ import annotations

import ipaddress

import pytest

from api.country import country_code
from api.http.context import ProxyResolver, trace_ids

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_trace_id_from_traceparent() -> None:
    trace, request = trace_ids(f"00-{TRACE}-00f067aa0ba902b7-01", None)
    assert trace == TRACE
    assert len(request) == 32


def test_request_id_is_kept_and_used_as_trace_without_traceparent() -> None:
    assert trace_ids(None, "abc-123") == ("abc-123", "abc-123")


@pytest.mark.parametrize(
    ("traceparent", "request_id"),
    [
        ("garbage", None),
        ("00-" + "0" * 32 + "-00f067aa0ba902b7-01", None),  # the all-zero id is invalid
        (None, "has spaces and \n newlines"),
        (None, "x" * 129),
    ],
)
def test_malformed_ids_are_replaced(traceparent: str | None, request_id: str | None) -> None:
    trace, request = trace_ids(traceparent, request_id)
    assert len(trace) == 32
    assert len(request) == 32
    int(trace, 16)


def test_client_address_behind_trusted_proxies() -> None:
    resolver = ProxyResolver((ipaddress.ip_network("10.0.0.0/8"),))
    assert resolver.client("10.0.0.5", "203.0.113.9") == "203.0.113.9"
    # a client cannot prepend a fake hop: the right-most untrusted address wins
    assert resolver.client("10.0.0.5", "1.1.1.1, 203.0.113.9, 10.0.0.7") == "203.0.113.9"
    # from an untrusted peer the header means nothing
    assert resolver.client("198.51.100.1", "203.0.113.9") == "198.51.100.1"
    assert resolver.client("10.0.0.5", None) == "10.0.0.5"


@pytest.mark.parametrize(
    ("header", "expected"),
    [("DE", "DE"), ("de", "DE"), (" fr ", "FR"), ("ZZ", "ZZ"), ("XX", "unknown"),
     ("QQ", "unknown"), ("DEU", "unknown"), ("", "unknown"), (None, "unknown")],
)  # fmt: skip
def test_country_codes_are_bounded(header: str | None, expected: str) -> None:
    assert country_code(header) == expected
