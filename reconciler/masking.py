"""The secrets this agent knows, and masking them out of everything people see.

One :class:`Masker` is made by the composition root (``reconciler.wiring``) and handed to
whatever reads a secret (the git adapter registers its token, the HTTP server its API token and
webhook secrets, the notifications their webhook URLs) and to whatever shows text to people
(logs, the status file and page, chat messages, revert commits). It is a plain object, not
module state: two agents in one process (or two tests) never see each other's secrets.

``mask`` hides, in free text: URL credentials (``https://user:token@host`` → ``https://***@host``),
every registered value, and what :mod:`reconciler.redact` recognises by shape (token formats,
``PASSWORD=...`` pairs, secret-looking query parameters).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from reconciler.redact import MASK, mask_shapes, mask_url_credentials, redact

#: values shorter than this are never registered (masking "a" everywhere helps nobody)
_MIN_SECRET = 4


class Masker:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        for value in secrets:
            self.register(value)

    def register(self, value: str) -> None:
        """Remember a secret value (token, webhook URL) so that it is masked wherever it shows."""
        value = value.strip()
        if len(value) >= _MIN_SECRET:
            self._secrets.add(value)

    def mask(self, text: str) -> str:
        if not text:
            return text
        masked = mask_url_credentials(text)
        for secret in sorted(self._secrets, key=len, reverse=True):
            masked = masked.replace(secret, MASK)
        return mask_shapes(masked)

    def redact(self, value: Any) -> Any:
        """A masked deep copy of a JSON-able value (``Status.to_dict()``, an event's dict)."""
        return redact(value, self.mask)
