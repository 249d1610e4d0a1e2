"""What a failed Docker command means: the engine's trouble, or the revision's (pure).

The engine's trouble passes and is never the revision's fault: the engine restarting or not
answering, a network Docker is still removing (``docker stack rm`` returns before a stack's
networks are gone: a deploy right after fails with "network <stack>_<net> not found"), the Swarm
raft not ready, a registry that does not answer while images are resolved. Those are retried.
Anything else (the stack file, an image that does not exist, a bad mount) is the revision's.
"""

from __future__ import annotations

import re

_TRANSIENT = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"network \S+ not found",
        r"rpc error: code = (Unavailable|DeadlineExceeded|Aborted)",
        r"cannot connect to the docker daemon",
        r"is the docker daemon running",
        r"connection refused",
        r"context deadline exceeded",
        r"i/o timeout",
        r"the swarm does not have a leader",
        r"update out of sequence",
        r"TLS handshake timeout",
        r"503 Service Unavailable",
        r"timed out after \d+s",
    )
]


def transient(text: str) -> bool:
    """True when a Docker command's error says the engine (or a registry) is in trouble, not the
    revision it was given."""
    return any(p.search(text) for p in _TRANSIENT)
