"""Type aliases shared by the package (one small module, no imports of the package)."""

from __future__ import annotations

from typing import Any, TypeAlias

#: a decoded JSON / YAML value
JSON: TypeAlias = Any
#: a decoded JSON / YAML object
JSONDict: TypeAlias = dict[str, Any]
#: seconds, as a float
Seconds: TypeAlias = float
