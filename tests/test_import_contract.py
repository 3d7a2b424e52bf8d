"""The import contract of DESIGN.md's module map: `adapters`, `mappings` and `fhir_profiles` never
import `gateway`; `mappings` and `fhir_profiles` import nothing of the project.

Checked twice: by import-linter (the contracts in pyproject.toml, which follow indirect chains),
and by a plain AST scan that names the file, line and import that breaks the rule, including
relative imports and `importlib.import_module("…")` with a literal name.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ("gateway", "adapters", "mappings", "fhir_profiles")
# package -> the project packages it must never import
FORBIDDEN: dict[str, set[str]] = {
    "adapters": {"gateway"},
    "mappings": {"gateway", "adapters", "fhir_profiles"},
    "fhir_profiles": {"gateway", "adapters", "mappings"},
}


@dataclass(frozen=True)
class Violation:
    file: Path
    line: int
    imported: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line} imports {self.imported}"


def _module_name(file: Path, root: Path) -> str:
    parts = list(file.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_names(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in a module, relative ones resolved."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base: list[str] = []
            if node.level:
                here = module.split(".")
                base = here[: max(0, len(here) - node.level + (1 if is_package else 0))]
            if node.module:
                yield node.lineno, ".".join([*base, node.module])
            else:  # `from . import x`: each name is a module of the base package
                for alias in node.names:
                    yield node.lineno, ".".join([*base, alias.name])
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                yield node.lineno, node.args[0].value


def scan(root: Path, forbidden: dict[str, set[str]]) -> list[Violation]:
    """Every import in `root/<package>/**.py` of a top-level package that package may not use."""
    found = []
    for package, banned in forbidden.items():
        for file in sorted((root / package).rglob("*.py")):
            tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
            module = _module_name(file, root)
            for line, name in _imported_names(tree, module, file.name == "__init__.py"):
                if name.split(".")[0] in banned:
                    found.append(Violation(file.relative_to(root), line, name))
    return found


def test_edge_and_data_packages_import_nothing_forbidden() -> None:
    violations = scan(ROOT, FORBIDDEN)
    assert not violations, "import contract broken (DESIGN.md module map):\n" + "\n".join(
        map(str, violations)
    )


def test_import_linter_keeps_every_contract(capsys: pytest.CaptureFixture[str]) -> None:
    exit_code = lint_imports(
        config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True
    )
    report = capsys.readouterr().out
    assert exit_code == 0, f"import-linter found broken contracts:\n{report}"
    assert "0 broken" in report


def test_pyproject_contracts_say_what_the_design_says() -> None:
    """Nobody weakens the import-linter contracts without this test noticing."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert set(config["root_packages"]) == set(PROJECT)
    declared: dict[str, set[str]] = {}
    for contract in config["contracts"]:
        if contract["type"] == "forbidden" and not contract.get("allow_indirect_imports"):
            for source in contract["source_modules"]:
                declared.setdefault(source, set()).update(contract["forbidden_modules"])
    for package, banned in FORBIDDEN.items():
        assert banned <= declared.get(package, set()), (package, declared.get(package))


def test_the_scan_names_each_kind_of_offending_import(tmp_path: Path) -> None:
    (tmp_path / "mappings" / "sub").mkdir(parents=True)
    (tmp_path / "mappings" / "__init__.py").write_text("import orjson\nfrom . import sub\n")
    (tmp_path / "mappings" / "sub" / "__init__.py").write_text(
        "from ..sub import x\n"  # relative, stays inside mappings: allowed
        "from gateway.errors import invalid\n"
        "import fhir_profiles.core\n"
        "from ... import gateway\n"
    )
    (tmp_path / "mappings" / "dyn.py").write_text(
        "import importlib\nhandler = importlib.import_module('adapters.hl7v2')\n"
    )
    found = {
        (str(v.file), v.line, v.imported)
        for v in scan(tmp_path, {"mappings": FORBIDDEN["mappings"]})
    }
    assert found == {
        ("mappings/sub/__init__.py", 2, "gateway.errors"),
        ("mappings/sub/__init__.py", 3, "fhir_profiles.core"),
        ("mappings/sub/__init__.py", 4, "gateway"),
        ("mappings/dyn.py", 2, "adapters.hl7v2"),
    }
