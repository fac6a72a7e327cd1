"""docs/configuration.md, rendered from the `Settings` dataclasses and their field docstrings.

The page is generated so that it cannot drift from the code: tests/test_config.py
compares the committed page with `settings_reference()` and names the command
that rewrites it:

    python -m clipswap_video.config_reference docs/configuration.md
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import sys
import textwrap
import typing
from pathlib import Path
from typing import Any

from clipswap_video._toml_config import describe_type, toml_value
from clipswap_video.config import Settings

REGENERATE = "python -m clipswap_video.config_reference docs/configuration.md"

_INTRO = f"""\
# Configuration

<!-- Generated from clipswap_video/config_sections.py by `{REGENERATE}`; do not edit by hand. -->

Settings are typed and checked before any work starts: an unknown key or a bad
value is one `error:` line (exit 3 or 4, see [cli.md](cli.md#exit-codes)).
Where a value comes from, lowest first:

1. the built-in defaults below, which
   [configs/default.toml](../configs/default.toml) repeats with comments;
2. `--config FILE`, a TOML file with any subset of those sections and keys;
3. in a batch jobs file, its `[defaults]` `set` list, then the job's own `set`
   ([batch.md](batch.md#jobs-files));
4. `--set section.key=value`, once per setting (the value is TOML; a bare word
   is a string);
5. the shortcut flags `--swapper`, `--device`, `--precision`, `--batch-size`,
   `--codec`, `--crf`, `--preset`, `--audio`, `--faces`, `--detector`,
   `--source-face`, `--tolerate-errors`, `--fps`, `--fill-gaps` and
   `--start-number`, each setting one key below.

`clipswap-video SRC IN OUT --print-config` prints the result as TOML and exits.
Training has settings of its own (`configs/train/*.toml`): see
[training.md](training.md).
"""


def settings_reference() -> str:
    """The whole configuration page: an introduction, then one table per section."""
    parts = [_INTRO]
    for section in dataclasses.fields(Settings):
        parts.append(section_reference(section.name, _hint(Settings, section.name)))
    return "\n".join(parts)


def field_docstrings(cls: type) -> dict[str, str]:
    """Each field's docstring (the string literal right below it), on one line.

    Python keeps no such attribute docstrings at run time, so they are read from
    the class's source, as documentation tools do.
    """
    source = textwrap.dedent(inspect.getsource(cls))
    body = typing.cast(ast.ClassDef, ast.parse(source).body[0]).body
    docs: dict[str, str] = {}
    for node, following in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[node.target.id] = " ".join(following.value.value.split())
    return docs


def section_reference(name: str, cls: type) -> str:
    summary = " ".join((cls.__doc__ or "").split()).removeprefix(f"[{name}]: ")
    docs = field_docstrings(cls)
    defaults = cls()
    rows = []
    for spec in dataclasses.fields(cls):
        if spec.name not in docs:
            # Every setting is documented; a new one without a docstring stops here.
            raise ValueError(f"{cls.__name__}.{spec.name} has no docstring")
        default = toml_value(getattr(defaults, spec.name))
        kind = describe_type(_hint(cls, spec.name), spec.metadata)
        meaning = docs[spec.name]
        rows.append(
            f"| `{name}.{spec.name}` | `{_cell(default)}` | {_cell(kind)} | {_cell(meaning)} |"
        )
    return "\n".join(
        [
            f"## [{name}]",
            "",
            summary[:1].upper() + summary[1:],
            "",
            "| key | default | values | meaning |",
            "|---|---|---|---|",
            *rows,
            "",
        ]
    )


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|")


def _hint(cls: type, name: str) -> Any:
    return typing.get_type_hints(cls)[name]


def main(argv: list[str]) -> int:
    """Writes the page to the path given, or prints it."""
    page = settings_reference()
    if argv:
        Path(argv[0]).write_text(page, encoding="utf-8")
    else:
        sys.stdout.write(page)
    return 0


__all__ = ["REGENERATE", "field_docstrings", "main", "section_reference", "settings_reference"]

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
