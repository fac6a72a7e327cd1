"""The package keeps its shape: the import contracts hold (layers, private
modules, no cycles: pyproject.toml's [tool.importlinter]), and every module
says what it exports."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "clipswap_video"
PROGRAMS = {"__main__.py", "rss_child.py"}
"""Modules run with `python -m`, imported by nobody: they export nothing."""


def _modules() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if path.name not in PROGRAMS)


def _bound_names(tree: ast.Module) -> set[str]:
    """Names a module binds at its top level (definitions, assignments, imports)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(target.id for target in targets if isinstance(target, ast.Name))
    return names


def _exported(tree: ast.Module) -> list[str] | None:
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(target, ast.Name) and target.id == "__all__" for target in targets):
            return ast.literal_eval(node.value)  # type: ignore[attr-defined]
    return None


@pytest.mark.parametrize("path", _modules(), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_every_module_lists_its_exports(path: Path) -> None:
    """The rule: each module ends with an `__all__` (sorted: ruff's RUF022) of
    the names other modules may use, all bound in it, none private; a package's
    `__init__` re-exports its public API the same way."""
    tree = ast.parse(path.read_text())
    exported = _exported(tree)
    assert exported is not None, f"{path.name} has no __all__"
    private = [name for name in exported if name.startswith("_") and not name.endswith("__")]
    assert not private, f"{path.name} exports private names: {private}"
    missing = set(exported) - _bound_names(tree)
    assert not missing, f"{path.name} exports names it does not bind: {sorted(missing)}"


def test_import_contracts_hold() -> None:
    """`lint-imports` (also in `make lint`): imports point down the layers, a
    `_private` module is imported only inside its package, no import cycles."""
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint_imports is not None, "import-linter is in the test extra"
    done = subprocess.run(
        [lint_imports, "--no-cache"], cwd=PACKAGE.parent, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-3000:]


def test_the_command_line_starts_without_the_heavy_libraries() -> None:
    """Every command's module is imported to build the parser, so each imports
    torch, OpenCV, dlib and onnxruntime only inside the handler that needs them
    (`probe` or `--help` should not pay seconds for them)."""
    code = (
        "import sys, clipswap_video.cli\n"
        "print(sorted({'torch', 'cv2', 'dlib', 'onnxruntime', 'open_clip'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
