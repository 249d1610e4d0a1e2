#!/usr/bin/env python3
"""Change the image tag of one service in ``desired-state/<env>/images.yaml``.

The deploy workflow calls this to prepare the tag-bump pull request. It rewrites only the value on
the matching line(s) and keeps everything else byte for byte (comments, quoting, order), so the
pull request shows a one-line diff.

    bump_image.py FILE --service api --tag 1.4.0 [--digest sha256:...]
    bump_image.py FILE --repository ghcr.io/acme/driftless-api --tag 1.4.0

``--service`` changes that service's line. ``--repository`` changes every line whose image comes
from that repository (the API image may serve both ``api`` and ``migrate``). The repository part
of a changed line is kept; only the tag (and digest) change. Running it twice changes nothing the
second time. Bad input (unknown service, malformed tag, a file that is not ``service: image``
lines) is refused with a message and the file is left untouched.

Standard library only: it runs on a bare CI runner.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
# `service: image` with optional quotes and a trailing comment; anything else that is not a blank
# line, a comment or the YAML document marker makes the file unsupported.
LINE_RE = re.compile(
    r"""^(?P<key>[A-Za-z0-9][A-Za-z0-9_.-]*)(?P<sep>\s*:\s*)
        (?P<quote>["']?)(?P<ref>[^\s"'#]+)(?P=quote)
        (?P<rest>\s*(?:\#.*)?)$""",
    re.VERBOSE,
)
IGNORED_RE = re.compile(r"^\s*(?:#.*)?$|^---\s*$")


class BumpError(Exception):
    """The bump cannot be done; the message says why. Nothing was written."""


@dataclass(frozen=True)
class ImageRef:
    repository: str
    tag: str | None
    digest: str | None

    @classmethod
    def parse(cls, ref: str) -> ImageRef:
        name, _, digest = ref.partition("@")
        tag: str | None = None
        last_slash = name.rfind("/")
        colon = name.rfind(":")
        if colon > last_slash:
            name, tag = name[:colon], name[colon + 1 :]
        if not name or (tag is not None and not TAG_RE.match(tag)):
            raise BumpError(f"not an image reference: {ref!r}")
        if digest and not DIGEST_RE.match(digest):
            raise BumpError(f"not an image digest in {ref!r}: {digest!r}")
        return cls(name, tag, digest or None)

    def __str__(self) -> str:
        out = self.repository
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


@dataclass(frozen=True)
class Change:
    service: str
    old: ImageRef
    new: ImageRef

    @property
    def changed(self) -> bool:
        return self.old != self.new


def plan(
    text: str, *, service: str | None, repository: str | None, tag: str, digest: str | None
) -> tuple[str, list[Change]]:
    """Return the new file text and the list of lines it touches (pure; no I/O)."""
    if not TAG_RE.match(tag):
        raise BumpError(f"invalid tag {tag!r}: letters, digits, '_', '.', '-', at most 128")
    if digest is not None and not DIGEST_RE.match(digest):
        raise BumpError(f"invalid digest {digest!r}: expected sha256:<64 hex digits>")
    if (service is None) == (repository is None):
        raise BumpError("give exactly one of --service or --repository")

    lines = text.splitlines(keepends=True)
    out: list[str] = []
    changes: list[Change] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        body = line.rstrip("\r\n")
        ending = line[len(body) :]
        if IGNORED_RE.match(body):
            out.append(line)
            continue
        match = LINE_RE.match(body)
        if not match:
            raise BumpError(f"line {number} is not `service: image`: {body!r}")
        key = match["key"]
        if key in seen:
            raise BumpError(f"service {key!r} appears twice (line {number})")
        seen.add(key)
        old = ImageRef.parse(match["ref"])
        wanted = key == service if service is not None else old.repository == repository
        if not wanted:
            out.append(line)
            continue
        new = ImageRef(old.repository, tag, digest)
        changes.append(Change(key, old, new))
        quote = match["quote"]
        out.append(f"{key}{match['sep']}{quote}{new}{quote}{match['rest']}{ending}")

    if not changes:
        known = ", ".join(sorted(seen)) or "none"
        what = f"service {service!r}" if service is not None else f"repository {repository!r}"
        raise BumpError(f"no line for {what}; services in the file: {known}")
    return "".join(out), changes


def _write_atomically(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _check_yaml(text: str, changes: list[Change]) -> None:
    """Where PyYAML is installed, make sure the result still parses to the values we meant."""
    try:
        import yaml
    except ImportError:
        return
    data = yaml.safe_load(text)
    for change in changes:
        if not isinstance(data, dict) or data.get(change.service) != str(change.new):
            raise BumpError(f"the edited file does not parse to {change.service}: {change.new}")


def _github_output(path: str, changes: list[Change]) -> None:
    changed = [c for c in changes if c.changed]
    first = changes[0]
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(f"changed={'true' if changed else 'false'}\n")
        handle.write(f"services={','.join(c.service for c in changes)}\n")
        handle.write(f"old_tag={first.old.tag or ''}\n")
        handle.write(f"old_ref={first.old}\n")
        handle.write(f"new_ref={first.new}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path, help="desired-state/<env>/images.yaml")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--service", help="the service whose line changes")
    which.add_argument("--repository", help="change every line using this image repository")
    parser.add_argument("--tag", required=True, help="the new tag, e.g. 1.4.0")
    parser.add_argument("--digest", help="pin the image digest too: sha256:<hex>")
    parser.add_argument(
        "--check", action="store_true", help="print what would change; write nothing"
    )
    parser.add_argument(
        "--github-output",
        default=None,
        help="append changed/services/old_tag/old_ref/new_ref to this file ($GITHUB_OUTPUT)",
    )
    args = parser.parse_args(argv)

    try:
        try:
            with open(args.file, encoding="utf-8", newline="") as handle:
                text = handle.read()
        except OSError as exc:
            raise BumpError(f"cannot read {args.file}: {exc.strerror}") from exc
        new_text, changes = plan(
            text,
            service=args.service,
            repository=args.repository,
            tag=args.tag,
            digest=args.digest,
        )
        _check_yaml(new_text, changes)
    except BumpError as exc:
        print(f"bump_image: {exc}", file=sys.stderr)
        return 2

    for change in changes:
        state = "" if change.changed else " (already)"
        print(f"{args.file}: {change.service}: {change.old} -> {change.new}{state}")
    if new_text != text and not args.check:
        _write_atomically(args.file, new_text)
    if args.github_output:
        _github_output(args.github_output, changes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
