#!/usr/bin/env python3
"""Change the image of services in ``desired-state/<env>/images.yaml``: the one tool that edits it.

The deploy workflow calls this to prepare the tag-bump pull request, and scripts/up.sh to point
its local copy at the images built on this machine. It rewrites only the value on the matching
line(s) and keeps everything else byte for byte (comments, quoting, order), so the pull request
shows a one-line diff.

    bump_image.py FILE --service api --tag 1.4.0 [--digest sha256:...]
    bump_image.py FILE --repository ghcr.io/acme/driftless-api --tag 1.4.0
    bump_image.py FILE --image api=127.0.0.1:5000/driftless/api:abc --image migrate=... \
        [--others '127.0.0.1:5000/driftless/{service}:local']

``--service`` changes that service's line. ``--repository`` changes every line whose image comes
from that repository (the API image may serve both ``api`` and ``migrate``). With those two, the
repository part of a changed line is kept; only the tag (and digest) change. ``--image`` sets the
whole reference of the named services, and ``--others`` that of every other service (``{service}``
stands for its name). Running it twice changes nothing the second time. Bad input (unknown
service, malformed tag or reference, a file that is not ``service: image`` lines) is refused with
a message and the file is left untouched.

Image references are read with the reconciler's parser (reconciler/imageref.py, pure and
standard library only, found in this checkout), so the script still runs on a bare CI runner.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, for reconciler/
from reconciler.imageref import ImageRef, parse_image

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

#: given every service's image in the file, the new image of each service that changes
Choice = Callable[[dict[str, ImageRef]], dict[str, ImageRef]]


class BumpError(Exception):
    """The bump cannot be done; the message says why. Nothing was written."""


@dataclass(frozen=True)
class Change:
    service: str
    old: ImageRef
    new: ImageRef

    @property
    def changed(self) -> bool:
        return self.old != self.new


def image(ref: str, where: str = "") -> ImageRef:
    """``ref`` parsed as Docker reads it (reconciler.imageref), or a BumpError (the message
    starting with ``where``)."""
    try:
        return parse_image(ref)
    except ValueError as exc:
        raise BumpError(f"{where}{exc}") from exc


def _known(images: dict[str, ImageRef]) -> str:
    return ", ".join(sorted(images)) or "none"


def retag(
    *, service: str | None = None, repository: str | None = None, tag: str, digest: str | None
) -> Choice:
    """The new tag (and digest, or none) for ``service``, or for every service whose image comes
    from ``repository``."""
    if not TAG_RE.match(tag):
        raise BumpError(f"invalid tag {tag!r}: letters, digits, '_', '.', '-', at most 128")
    if digest is not None and not DIGEST_RE.match(digest):
        raise BumpError(f"invalid digest {digest!r}: expected sha256:<64 hex digits>")
    if (service is None) == (repository is None):
        raise BumpError("give exactly one of --service or --repository")
    what = f"service {service!r}" if service is not None else f"repository {repository!r}"

    def choose(images: dict[str, ImageRef]) -> dict[str, ImageRef]:
        wanted = {
            name: ImageRef(old.name, tag, digest)
            for name, old in images.items()
            if (name == service if service is not None else old.name == repository)
        }
        if not wanted:
            raise BumpError(f"no line for {what}; services in the file: {_known(images)}")
        return wanted

    return choose


def replace(named: dict[str, str], others: str | None = None) -> Choice:
    """The whole reference of each service in ``named``, and (if given) ``others`` with
    ``{service}`` replaced by its name for every other service."""
    wanted = {name: image(ref, f"--image {name}: ") for name, ref in named.items()}

    def choose(images: dict[str, ImageRef]) -> dict[str, ImageRef]:
        missing = sorted(set(wanted) - set(images))
        if missing:
            raise BumpError(
                f"no line for service {missing[0]!r}; services in the file: {_known(images)}"
            )
        if others is None:
            return wanted
        rest = {name: image(others.replace("{service}", name), "--others: ") for name in images}
        return {**rest, **wanted}

    return choose


def _read(text: str) -> list[tuple[str, re.Match[str] | None]]:
    """Each line (with its ending) and its `service: image` match (None: blank, comment,
    document marker); a BumpError for any other line or a service given twice."""
    out: list[tuple[str, re.Match[str] | None]] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        body = line.rstrip("\r\n")
        if IGNORED_RE.match(body):
            out.append((line, None))
            continue
        match = LINE_RE.match(body)
        if not match:
            raise BumpError(f"line {number} is not `service: image`: {body!r}")
        if match["key"] in seen:
            raise BumpError(f"service {match['key']!r} appears twice (line {number})")
        seen.add(match["key"])
        out.append((line, match))
    return out


def plan(text: str, choose: Choice) -> tuple[str, list[Change]]:
    """Return the new file text and the list of lines it touches (pure; no I/O)."""
    lines = _read(text)
    images = {m["key"]: image(m["ref"], f"{m['key']}: ") for _, m in lines if m is not None}
    wanted = choose(images)
    out: list[str] = []
    changes: list[Change] = []
    for line, match in lines:
        new = wanted.get(match["key"]) if match is not None else None
        if match is None or new is None:
            out.append(line)
            continue
        key, quote = match["key"], match["quote"]
        changes.append(Change(key, images[key], new))
        ending = line[len(line.rstrip("\r\n")) :]
        out.append(f"{key}{match['sep']}{quote}{new}{quote}{match['rest']}{ending}")
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


def _choice(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Choice:
    """What the command line asks for (a BumpError, or a usage error, when it does not fit)."""
    if args.image is None:
        if args.others is not None:
            parser.error("--others goes with --image")
        if args.tag is None:
            parser.error("--service and --repository need --tag")
        return retag(
            service=args.service, repository=args.repository, tag=args.tag, digest=args.digest
        )
    if args.tag is not None or args.digest is not None:
        parser.error("--image gives whole references: no --tag or --digest with it")
    named: dict[str, str] = {}
    for item in args.image:
        service, sep, ref = item.partition("=")
        if not sep or service in named:
            raise BumpError(f"--image {item!r}: expected SERVICE=REFERENCE, once per service")
        named[service] = ref
    return replace(named, args.others)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path, help="desired-state/<env>/images.yaml")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--service", help="the service whose line changes")
    which.add_argument("--repository", help="change every line using this image repository")
    which.add_argument(
        "--image",
        action="append",
        metavar="SERVICE=REFERENCE",
        help="set this service's whole image reference (repeatable)",
    )
    parser.add_argument("--tag", help="the new tag, e.g. 1.4.0 (--service, --repository)")
    parser.add_argument("--digest", help="pin the image digest too: sha256:<hex>")
    parser.add_argument(
        "--others",
        metavar="TEMPLATE",
        help="with --image: every other service's reference, {service} standing for its name",
    )
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
        choose = _choice(parser, args)
        try:
            with open(args.file, encoding="utf-8", newline="") as handle:
                text = handle.read()
        except OSError as exc:
            raise BumpError(f"cannot read {args.file}: {exc.strerror}") from exc
        new_text, changes = plan(text, choose)
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
