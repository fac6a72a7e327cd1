"""The documentation holds together, and the repository stands on its own.

- Every relative link and image in a tracked Markdown file leads to a tracked
  file or folder of the repository, and a `#anchor` into a Markdown page names
  one of that page's headings (as GitHub makes anchors of them).
- docs/cli.md's exit-code table has a row for every `ExitCode`.
- No tracked file points into the workspace folder that sits beside the
  repository on the development machines: nothing there exists in a clone.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest

from clipswap_video.errors import ExitCode

ROOT = Path(__file__).resolve().parents[1]

# [text](target "title") and ![alt](target); the text may hold one level of brackets.
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
# [label]: target, a reference-style link definition on a line of its own.
LINK_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # https:, mailto:, ...
FENCE = re.compile(r"^ {0,3}(```|~~~)")
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$")
CODE_SPAN = re.compile(r"`[^`\n]*`")

# Built from pieces so that this file does not contain what it looks for.
_WORKSPACE = "sha" + "red"
OUTSIDE_POINTER = re.compile(
    re.escape(_WORKSPACE + "/") + "(reference|DESIGN)|" + re.escape("../" + _WORKSPACE)
)


# The GPU machine collects every test file (`gpu-check` runs `pytest -m cuda`) in a
# copy of the working tree without git's folder, where nothing is known as tracked.
if not (ROOT / ".git").exists():
    pytest.skip("not a git checkout", allow_module_level=True)


def tracked_files() -> list[str]:
    listing = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True
    )
    return [name for name in listing.stdout.decode().split("\0") if name]


def tracked_paths() -> set[str]:
    """Every tracked file and every folder that holds one, relative to the root."""
    paths = set()
    for name in tracked_files():
        path = Path(name)
        paths.add(path.as_posix())
        paths.update(parent.as_posix() for parent in path.parents if parent != Path("."))
    return paths


MARKDOWN = sorted(name for name in tracked_files() if name.endswith(".md"))


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks, where a link is a link."""
    lines, in_fence = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence:
            lines.append(line)
    return lines


def links(text: str) -> list[str]:
    found = []
    for line in prose_lines(text):
        prose = CODE_SPAN.sub("", line)
        found.extend(INLINE_LINK.findall(prose))
        found.extend(LINK_DEFINITION.findall(prose))
    return found


def anchors(text: str) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation
    dropped, spaces as hyphens, repeats numbered -1, -2, ..."""
    seen: dict[str, int] = {}
    for line in prose_lines(text):
        heading = HEADING.match(line)
        if heading is None:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        if count:
            seen[f"{slug}-{count}"] = 1
    return set(seen)


def broken_links(page: str, tracked: set[str]) -> list[str]:
    """Each link of one Markdown page that leads nowhere, with the reason."""
    source = ROOT / page
    text = source.read_text(encoding="utf-8")
    problems = []
    for target in links(text):
        if SCHEME.match(target):
            continue  # a web address, not a path in the repository
        path_part, _, anchor = unquote(target).partition("#")
        if path_part.startswith("/"):
            problems.append(f"{target}: an absolute path; link relative to {page}")
            continue
        resolved = (source.parent / path_part).resolve() if path_part else source
        if not resolved.is_relative_to(ROOT):
            problems.append(f"{target}: outside the repository")
            continue
        relative = resolved.relative_to(ROOT).as_posix()
        if relative not in tracked:
            problems.append(f"{target}: {relative} is not a tracked file or folder")
        elif anchor and relative.endswith(".md"):
            if anchor not in anchors(resolved.read_text(encoding="utf-8")):
                problems.append(f"{target}: no heading #{anchor} in {relative}")
    return problems


@pytest.mark.parametrize("page", MARKDOWN)
def test_relative_links_resolve(page: str) -> None:
    assert broken_links(page, tracked_paths()) == []


def test_the_readme_and_docs_are_checked() -> None:
    assert "README.md" in MARKDOWN
    assert {"docs/cli.md", "docs/batch.md", "docs/configuration.md"} <= set(MARKDOWN)


def test_every_exit_code_is_documented() -> None:
    table = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    missing = [code.name for code in ExitCode if f"\n| {code.value} |" not in table]
    assert missing == [], "docs/cli.md's exit-code table lacks these codes"


def test_no_file_points_outside_the_repository() -> None:
    offenders = []
    for name in tracked_files():
        path = ROOT / name
        if not path.is_file():
            continue  # deleted in the working tree, or a submodule
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary
        for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            if OUTSIDE_POINTER.search(line):
                offenders.append(f"{name}:{number}: {line.strip()}")
    assert offenders == []
