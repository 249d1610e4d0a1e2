"""``API_FAULT`` parsing: each mode, their combinations, every malformed value refused clearly."""

from __future__ import annotations

import pytest

from api.errors import SettingsError
from api.faults import Fault, parse_fault
from api.settings import Settings

BASE = {"DATABASE_URL": "postgresql://shop@db:5432/shop", "REDIS_URL": "redis://cache:6379/0"}


@pytest.mark.parametrize("raw", ["", "   "])
def test_unset_or_empty_means_no_fault(raw: str) -> None:
    fault = parse_fault(raw)
    assert fault == Fault()
    assert not fault.active
    assert fault.describe() == "none"


def test_no_fault_is_the_default_setting() -> None:
    assert Settings.from_env(BASE).fault == Fault()
    assert Settings.from_env({**BASE, "API_FAULT": ""}).fault == Fault()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("version=9.9.9", Fault(version="9.9.9")),
        ("errors=/products", Fault(error_prefixes=("/products",))),
        ("slow=3", Fault(slowdown=3.0)),
        ("slow=1.5", Fault(slowdown=1.5)),
        ("crash-after=20s", Fault(crash_after=20.0)),
        ("crash-after=20", Fault(crash_after=20.0)),
        ("crash-after=500ms", Fault(crash_after=0.5)),
        ("crash-after=2m", Fault(crash_after=120.0)),
    ],
)
def test_each_mode(raw: str, expected: Fault) -> None:
    fault = parse_fault(raw)
    assert fault == expected
    assert fault.active


def test_modes_combine_and_errors_repeat() -> None:
    fault = parse_fault(" version=2.0.0 , errors=/products,errors=/auth, slow=4,crash-after=30s ")
    assert fault == Fault(
        version="2.0.0",
        error_prefixes=("/products", "/auth"),
        slowdown=4.0,
        crash_after=30.0,
    )
    # the start-up warning names the modes in the syntax they were given in
    assert fault.describe() == "version=2.0.0,errors=/products,errors=/auth,slow=4,crash-after=30s"
    assert parse_fault(fault.describe()) == fault


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("slow", "'slow' is not a mode"),
        ("errors=", "'errors=' is not a mode"),
        ("slow=3,", "'' is not a mode"),
        ("explode=now", "unknown mode 'explode'"),
        ("errors=products", "must start with /"),
        ("slow=fast", "slow=fast: not a number"),
        ("slow=1", "above 1 and at most 100"),
        ("slow=0.5", "above 1 and at most 100"),
        ("slow=1000", "above 1 and at most 100"),
        ("slow=nan", "above 1 and at most 100"),
        ("crash-after=soon", "not a duration"),
        ("crash-after=-5s", "not a duration"),
        ("crash-after=10h", "not a duration"),
        ("crash-after=0s", "must be above 0"),
        ("version=1,version=2", "version is given twice"),
        ("slow=2,slow=3", "slow is given twice"),
    ],
)
def test_malformed_values_are_refused_with_the_reason(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_fault(raw)


def test_a_malformed_fault_is_a_settings_problem_reported_with_the_others() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({**BASE, "API_FAULT": "slow=fast", "PORT": "http"})
    text = str(caught.value)
    assert "API_FAULT='slow=fast': slow=fast: not a number" in text
    assert "PORT='http' is not an integer" in text


def test_api_serve_refuses_a_malformed_fault_before_serving(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from api.cli import main

    assert main(["serve"], env={**BASE, "API_FAULT": "errors=products"}) == 2
    assert "API_FAULT='errors=products': errors=products: the path prefix must start with /" in (
        capsys.readouterr().err
    )
