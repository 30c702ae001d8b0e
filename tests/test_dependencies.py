"""Every third-party module the code imports is declared in pyproject.toml, so an install of the declared
requirements alone runs it (CI's second run installs their lowest allowed versions and runs this suite).

What genremap imports when it loads must be in `dependencies`; what it imports inside a function (audio
analysis, evaluation) may come from an extra; the tests, benchmarks and scripts may use the `test` extra.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterator
from importlib.metadata import packages_distributions
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
TOOLING = ("test", "dev")  # extras for working on genremap, not features of it


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement(spec: str) -> tuple[str, list[str]]:
    """`name[extra,...]>=1.0; marker` → (normalised name, extras)."""
    found = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?", spec)
    assert found, f"unreadable requirement {spec!r}"
    return _normal(found.group(1)), [e.strip() for e in (found.group(2) or "").split(",") if e.strip()]


def declared(*extras: str) -> set[str]:
    """Distribution names that `pip install genremap[extras]` asks for directly (self-references followed)."""
    names: set[str] = set()
    todo = [*PYPROJECT["dependencies"], *(r for e in extras for r in PYPROJECT["optional-dependencies"][e])]
    while todo:
        name, more = _requirement(todo.pop())
        if name == "genremap":
            todo += [r for e in more for r in PYPROJECT["optional-dependencies"][e]]
        else:
            names.add(name)
    return names


def _local_modules() -> set[str]:
    """Top-level names that are this repository's own (genremap, test helpers, scripts)."""
    names = {"genremap"}
    for folder in ("tests", "benchmarks", "scripts"):
        for path in (REPO / folder).iterdir():
            if path.suffix == ".py" or (path / "__init__.py").exists():
                names.add(path.stem)
    return names


def imports(path: Path) -> Iterator[tuple[str, bool, int]]:
    """(top-level module, imported when `path` loads?, line) for each absolute import in `path`; imports under
    `if TYPE_CHECKING:` are left out (they never run)."""

    def walk(node: ast.AST, at_load: bool) -> Iterator[tuple[str, bool, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                yield from ((alias.name.split(".")[0], at_load, child.lineno) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                yield child.module.split(".")[0], at_load, child.lineno
            inside = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            yield from walk(child, at_load and not inside)

    yield from walk(ast.parse(path.read_text(encoding="utf-8")), True)


def undeclared(folders: list[str], at_load: set[str], later: set[str]) -> list[str]:
    """Third-party imports under `folders` whose distribution is not in `at_load` (or, for imports inside
    functions, `later`)."""
    providers = packages_distributions()
    skip = set(sys.stdlib_module_names) | _local_modules()
    problems = []
    for folder in folders:
        for path in sorted((REPO / folder).rglob("*.py")):
            for module, loading, line in imports(path):
                if module in skip:
                    continue
                allowed = at_load if loading else later
                dists = {_normal(d) for d in providers.get(module, [])}
                if not dists & allowed:
                    where = f"{path.relative_to(REPO)}:{line}"
                    problems.append(f"{where}: {module} (from {sorted(dists) or 'nothing installed'})")
    return problems


def test_the_package_imports_only_what_it_declares() -> None:
    features = [e for e in PYPROJECT["optional-dependencies"] if e not in TOOLING]
    assert undeclared(["genremap"], at_load=declared(), later=declared(*features)) == []


def test_tests_benchmarks_and_scripts_import_only_the_test_extra() -> None:
    everything = declared("test")
    assert undeclared(["tests", "benchmarks", "scripts"], at_load=everything, later=everything) == []


def test_the_declared_names_are_read_as_pip_reads_them() -> None:
    assert _requirement("PyYAML>=6.0.1") == ("pyyaml", [])
    assert _requirement("genremap[audio, test]") == ("genremap", ["audio", "test"])
    assert {"numpy", "pandas", "typer"} <= declared()
    assert "scikit-learn" in declared("audio") and "scikit-learn" not in declared()
    assert {"pytest", "librosa"} <= declared("test")
