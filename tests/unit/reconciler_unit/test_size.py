"""Sizes the package keeps, checked by a test rather than by review: no module of ``reconciler/``
over 400 lines and no function or method over 60 (from its ``def`` line to its last line; a
nested function counts on its own and as part of the one around it). Complexity is ruff's job
(C901, PLR0912, PLR0915 in pyproject.toml)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[3] / "reconciler"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, int, int]]:
    """Every function and method below ``tree``: qualified name, first line, line count."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            name = f"{prefix}{node.name}"
            assert node.end_lineno is not None
            yield name, node.lineno, node.end_lineno - node.lineno + 1
            yield from _functions(node, f"{name}.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.")
        else:
            yield from _functions(node, prefix)


def _where(path: Path) -> str:
    return path.relative_to(PACKAGE.parent).as_posix()


def test_the_package_is_found() -> None:
    assert len(_modules()) > 20
    assert PACKAGE / "__init__.py" in _modules()


def test_no_module_is_over_400_lines() -> None:
    offenders = []
    for path in _modules():
        count = len(path.read_text(encoding="utf-8").splitlines())
        if count > MAX_MODULE_LINES:
            offenders.append(f"{_where(path)}: {count} lines")
    assert not offenders, f"modules over {MAX_MODULE_LINES} lines:\n" + "\n".join(offenders)


def test_no_function_is_over_60_lines() -> None:
    offenders = []
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name, line, count in _functions(tree):
            if count > MAX_FUNCTION_LINES:
                offenders.append(f"{_where(path)}:{line} {name}: {count} lines")
    assert not offenders, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(offenders)


def test_the_walk_finds_methods_and_nested_functions() -> None:
    tree = ast.parse(
        "class A:\n"
        "    def m(self):\n"
        "        def inner():\n"
        "            pass\n"
        "        return inner\n"
        "async def f():\n"
        "    if True:\n"
        "        def g(): pass\n"
    )
    assert list(_functions(tree)) == [
        ("A.m", 2, 4),
        ("A.m.inner", 3, 2),
        ("f", 6, 3),
        ("f.g", 8, 1),
    ]
