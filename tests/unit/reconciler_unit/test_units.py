"""Durations, sizes, CPUs, interpolation, image references, YAML loading."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from reconciler import yamlio
from reconciler.imageref import display_image, parse_image, same_image
from reconciler.interpolate import (
    InterpolationError,
    escape_dollars,
    interpolate,
    interpolate_string,
    parse_env_file,
)
from reconciler.units import (
    format_duration_ns,
    parse_bytes,
    parse_duration,
    parse_duration_ns,
    parse_nano_cpus,
)


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("10s", 10_000_000_000),
        ("1m30s", 90_000_000_000),
        ("500ms", 500_000_000),
        ("1.5h", 5_400_000_000_000),
        ("2", 2_000_000_000),
        (0.25, 250_000_000),
    ],
)
def test_durations(text: str | float, ns: int) -> None:
    assert parse_duration_ns(text) == ns


@pytest.mark.parametrize("bad", ["", "10", "x", "10 s", "-1s", "1d", True])
def test_bad_durations_say_what_is_expected(bad: object) -> None:
    if bad == "10":  # a bare number is seconds: valid
        assert parse_duration("10") == 10.0
        return
    with pytest.raises(ValueError, match="duration"):
        parse_duration_ns(bad)  # type: ignore[arg-type]


@given(st.integers(min_value=0, max_value=10**15))
def test_duration_format_round_trips(ns: int) -> None:
    assert parse_duration_ns(format_duration_ns(ns)) == ns


def test_sizes_and_cpus_match_docker() -> None:
    assert parse_bytes("64M") == 64 * 1024**2
    assert parse_bytes("64MiB") == 64 * 1024**2
    assert parse_bytes("1.5g") == 1536 * 1024**2
    assert parse_bytes("512") == 512
    assert parse_nano_cpus("0.5") == 500_000_000
    assert parse_nano_cpus(2) == 2_000_000_000
    with pytest.raises(ValueError, match="size"):
        parse_bytes("lots")


def test_interpolation_forms() -> None:
    v = {"A": "a", "EMPTY": ""}
    assert interpolate_string("$A ${A} $$A", v) == "a a $A"
    assert interpolate_string("${EMPTY:-d} ${EMPTY-d} ${NOPE-d}", v) == "d  d"
    assert interpolate_string("${A:+x}${NOPE:+x}", v) == "x"
    with pytest.raises(InterpolationError, match="NOPE is not set"):
        interpolate_string("${NOPE}", v, "services.api.image")
    with pytest.raises(InterpolationError, match="required variable EMPTY: give it"):
        interpolate_string("${EMPTY:?give it}", v)
    with pytest.raises(InterpolationError, match="lone"):
        interpolate_string("cost: 5$", v)


def test_interpolation_walks_values_not_keys_and_escapes_back() -> None:
    doc = {"$K": ["${A}", {"x": "$$y"}], "n": 3}
    out = interpolate(doc, {"A": "1"})
    assert out == {"$K": ["1", {"x": "$y"}], "n": 3}
    assert escape_dollars(out) == {"$K": ["1", {"x": "$$y"}], "n": 3}


def test_env_file() -> None:
    assert parse_env_file("# c\nexport A=1\nB='two words'\n\n", ".env") == {
        "A": "1",
        "B": "two words",
    }
    with pytest.raises(InterpolationError, match=r"\.env:1"):
        parse_env_file("not a line", ".env")


def test_image_references() -> None:
    ref = parse_image("127.0.0.1:5000/team/app:1.2.3")
    assert (ref.registry, ref.tag) == ("127.0.0.1:5000", "1.2.3")
    assert parse_image("nginx").canonical() == "docker.io/library/nginx:latest"
    assert parse_image("ghcr.io/a/b@sha256:" + "a" * 64).digest
    for bad in ("UPPER/case", "a::b", "", "x:tag with space", "a/b:"):
        with pytest.raises(ValueError, match="not a valid image reference"):
            parse_image(bad)


def test_same_image_ignores_the_pinned_digest_unless_asked() -> None:
    digest = "sha256:" + "b" * 64
    assert same_image("r:5000/app:1", f"r:5000/app:1@{digest}")
    assert not same_image("r:5000/app:2", f"r:5000/app:1@{digest}")
    assert same_image("nginx", f"docker.io/library/nginx:latest@{digest}")
    assert same_image(f"r/app@{digest}", f"r/app:1@{digest}")
    assert not same_image("r/app@sha256:" + "c" * 64, f"r/app:1@{digest}")
    assert display_image(f"r:5000/app:1@{digest}") == "r:5000/app:1"


def test_yaml_reads_ports_as_docker_does_and_refuses_duplicate_keys() -> None:
    assert yamlio.load("ports: [22:22, 80:80]") == {"ports": ["22:22", "80:80"]}
    with pytest.raises(yaml.YAMLError, match="duplicate key 'api'"):
        yamlio.load("services:\n  api: {}\n  api: {}\n")
    text = yamlio.dump({"a": "1:30", "b": "yes", "c": "multi\nline"})
    assert yamlio.load(text) == {"a": "1:30", "b": "yes", "c": "multi\nline"}


def test_types_are_cast_after_interpolation_like_docker() -> None:
    from reconciler.interpolate import cast_types

    doc = interpolate(
        {
            "services": {
                "web": {
                    "ports": [{"target": 80, "published": "${PORT:-8080}"}],
                    "deploy": {"replicas": "${N}", "update_config": {"max_failure_ratio": "0.5"}},
                    "read_only": "true",
                    "environment": {"PORT": "${PORT:-8080}"},
                }
            },
            "networks": {"back": {"attachable": "yes"}},
        },
        {"N": "3"},
    )
    problems: list[str] = []
    out = cast_types(doc, problems)
    web = out["services"]["web"]
    assert web["ports"][0]["published"] == 8080
    assert web["deploy"]["replicas"] == 3
    assert web["deploy"]["update_config"]["max_failure_ratio"] == 0.5
    assert web["read_only"] is True
    assert web["environment"]["PORT"] == "8080"  # environment values stay strings
    assert out["networks"]["back"]["attachable"] is True
    assert problems == []
    cast_types({"services": {"a": {"deploy": {"replicas": "many"}}}}, problems)
    assert problems == ["services.a.deploy.replicas: 'many' is not a number"]
