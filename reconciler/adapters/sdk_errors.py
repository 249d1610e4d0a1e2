"""What an error of the Docker SDK means, for every adapter that talks to the Engine API: an
engine that did not answer is unreachable (retried); an answer is read by
:func:`reconciler.faults.docker_fault`. Each caller then decides whose fault it can be."""

from __future__ import annotations

import docker.errors

from reconciler.faults import Component, Fault, docker_fault, last_line
from reconciler.masking import Masker


def sdk_fault(exc: BaseException, masker: Masker | None = None) -> tuple[str, Fault]:
    """The error's text (masked) and what it means."""
    mask = masker.mask if masker is not None else str
    if not isinstance(exc, docker.errors.APIError):
        text = mask(str(exc))
        return text, Fault(Component.ENGINE, True, last_line(text))
    text = mask(str(exc.explanation or exc))
    return text, docker_fault(text, status=exc.status_code)
