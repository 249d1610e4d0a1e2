"""The Prometheus and Alertmanager binaries the tests run.

- Debian 12's packages (installed on the host): Prometheus/promtool 2.42, Alertmanager/amtool 0.25.
- Debian 13's packages, unpacked (not installed) into .cache/debian13 by `scripts/deps.sh`:
  Prometheus/promtool 2.53 and Alertmanager/amtool 0.28.1, the release production pins.
Checks run with both where both exist; the live lab uses the newer ones.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from obs_support import files

DEBIAN13_BIN = files.ROOT / ".cache" / "debian13" / "root" / "usr" / "bin"

_NAMES = {"alertmanager": "prometheus-alertmanager"}


def debian12(name: str) -> str:
    found = shutil.which(_NAMES.get(name, name))
    if found is None:
        raise FileNotFoundError(f"{name} is not installed: run scripts/deps.sh")
    return found


def debian13(name: str) -> str:
    path = DEBIAN13_BIN / _NAMES.get(name, name)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run scripts/deps.sh debian13")
    return str(path)


def both(name: str) -> list[tuple[str, str]]:
    """(release, path) for Debian 12's and Debian 13's build of NAME."""
    return [("debian12", debian12(name)), ("debian13", debian13(name))]


def newest(name: str) -> str:
    return debian13(name)


def exists(path: str) -> bool:
    return Path(path).exists()
