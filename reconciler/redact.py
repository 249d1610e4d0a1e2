"""Masking of secrets in what people see: the status page, the JSON API and chat messages.

Pure functions: what only the shape of the data tells (the values the agent knows are secret,
its tokens and webhook URLs, are :class:`reconciler.masking.Masker`'s job, which uses these):

* environment variables and labels whose *name* looks secret (``DB_PASSWORD``, ``API_TOKEN``,
  ``AWS_SECRET_ACCESS_KEY``...) show ``***`` instead of their value, wherever a field diff or a
  ``NAME=value`` pair shows them;
* values that *look* like credentials whatever their name (``ghp_…`` GitHub tokens, ``xoxb-…``
  Slack tokens, ``AKIA…`` AWS keys, JWTs, PEM private keys, Slack/Discord webhook URLs) and
  secret-looking query parameters (``?token=…``) are masked too.

``redact(value, mask)`` walks any JSON-able value (what ``to_jsonable`` / ``Status.to_dict``
return) and returns a masked copy; it never changes its input.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

MASK = "***"
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")

#: names of variables, labels and keys whose values are secret
_SECRET_NAME = re.compile(
    r"(?i)(passw(or)?d|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|"
    r"credential|auth(?!or)|session[_-]?key|signing[_-]?key|cookie|dsn|webhook)"
)
#: values that are secret whatever their name
_SECRET_VALUES = [
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}\b"),  # GitHub tokens
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}\b"),
    re.compile(r"\bglpat-[A-Za-z0-9_-]{16,}\b"),  # GitLab personal access token
    re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"),  # Slack tokens
    re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"),  # AWS access key ids
    re.compile(r"\bsk_(live|test)_[A-Za-z0-9]{16,}\b"),  # Stripe-style secret keys
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b"),  # JWT
    re.compile(
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.DOTALL
    ),
    re.compile(r"https://hooks\.slack\.com/[^\s;,'\"<>]+"),
    re.compile(r"https://(?:\w+\.)?discord(?:app)?\.com/api/webhooks/[^\s;,'\"<>]+"),
]
#: ``?token=…`` / ``&password=…`` in URLs
_SECRET_QUERY = re.compile(
    r"(?i)([?&](?:[\w.-]*(?:token|secret|passw(?:or)?d|api[_-]?key|sig(?:nature)?|auth)[\w.-]*)=)"
    r"[^&\s#\"']+"
)
#: ``NAME=value`` pairs (environment lists, command lines, docker messages)
_ASSIGNMENT = re.compile(r"\b([A-Za-z_][A-Za-z0-9_.-]*)=(\"[^\"]*\"|'[^']*'|[^\s,;&)\]}\"']+)")
#: a field diff as the plan prints it: ``env.DB_PASSWORD: old -> new``
_FIELD_DIFF = re.compile(r"\b((?:env|labels|container_labels)\.([\w.-]+)): (.*?) -> ([^\n;,]*)")
#: ``Authorization: Bearer …`` in copied headers or error output
_BEARER = re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{12,}")


def secret_name(name: str) -> bool:
    """True when a variable/label/key name says its value is secret."""
    return bool(_SECRET_NAME.search(name))


def mask_url_credentials(text: str) -> str:
    """``https://user:token@host`` → ``https://***@host``."""
    return _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)


def mask_shapes(text: str) -> str:
    """Mask every secret this module can recognise in free text by its shape."""
    if not text:
        return text
    masked = mask_url_credentials(text)
    for pattern in _SECRET_VALUES:
        masked = pattern.sub(MASK, masked)
    masked = _SECRET_QUERY.sub(lambda m: m.group(1) + MASK, masked)
    masked = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", masked)
    masked = _FIELD_DIFF.sub(
        lambda m: f"{m.group(1)}: {MASK} -> {MASK}" if secret_name(m.group(2)) else m.group(0),
        masked,
    )
    return _ASSIGNMENT.sub(
        lambda m: f"{m.group(1)}={MASK}" if secret_name(m.group(1)) else m.group(0), masked
    )


Mask = Callable[[str], str]


def redact(value: Any, mask: Mask = mask_shapes, *, key: str = "") -> Any:
    """A masked deep copy of a JSON-able value. ``key`` is the name the value is stored under;
    ``mask`` masks free text (a :class:`reconciler.masking.Masker`'s ``mask``)."""
    if isinstance(value, Mapping):
        return _redact_mapping(value, mask)
    if isinstance(value, list | tuple):
        return [redact(item, mask, key=key) for item in value]
    if isinstance(value, str):
        if key and secret_name(key) and value:
            return MASK
        return mask(value)
    return value


def _redact_mapping(data: Mapping[Any, Any], mask: Mask) -> dict[str, Any]:
    # a field diff: {"field": "env.DB_PASSWORD", "desired": "...", "live": "..."}
    field_name = data.get("field")
    if isinstance(field_name, str) and secret_field(field_name):
        return {
            str(k): (
                MASK if k in ("desired", "live") and v is not None else redact(v, mask, key=str(k))
            )
            for k, v in data.items()
        }
    out: dict[str, Any] = {}
    for k, v in data.items():
        name = str(k)
        # the key of a secret entry is fine to show, its value is not
        if isinstance(v, str) and secret_name(name) and not _harmless_key(name):
            out[name] = MASK if v else v
        else:
            out[name] = redact(v, mask, key="" if _harmless_key(name) else name)
    return out


def secret_field(field_name: str) -> bool:
    """``env.X``, ``labels.X``, ``container_labels.X`` whose X looks secret."""
    head, _, rest = field_name.partition(".")
    return bool(rest) and head in ("env", "labels", "container_labels") and secret_name(rest)


def _harmless_key(name: str) -> bool:
    # structural keys of the status document that contain a "secret" word but hold no secret
    return name in ("author", "authored_at", "reason", "message", "summary", "kind")
