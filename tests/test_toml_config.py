"""TOML files and --set overrides -> frozen dataclasses, shared by the swap
settings and the training config."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from clipswap_video._toml_config import (
    build,
    leaf_keys,
    parse_override,
    read_toml,
    to_toml,
    toml_value,
)
from clipswap_video.errors import ConfigValueError, InputNotFoundError, UnknownConfigKeyError


@dataclass(frozen=True)
class Inner:
    level: int = field(default=3, metadata={"range": (0, 9)})
    name: str = "x"
    mode: Literal["a", "b"] = "a"
    sizes: tuple[int, ...] = (1, 2)
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Outer:
    inner: Inner = field(default_factory=Inner)
    other: Inner = field(default_factory=Inner)


def test_layers_are_merged_lowest_first_over_the_defaults() -> None:
    layers = [
        ("file", {"inner": {"level": 5, "name": "file"}, "other": {"mode": "b"}}),
        ("--set", parse_override("inner.level=7")),
        ("--set", parse_override("inner.sizes=[4]")),
    ]
    built = build(Outer, layers, what="test")
    assert built == Outer(Inner(level=7, name="file", sizes=(4,)), Inner(mode="b"))
    assert build(Outer, [], what="test") == Outer()


def test_overrides() -> None:
    assert parse_override("inner.name=plain words") == {"inner": {"name": "plain words"}}
    assert parse_override('inner.options={k = "v"}') == {"inner": {"options": {"k": "v"}}}
    assert parse_override(" inner.level = 4") == {"inner": {"level": 4}}
    for bad in ("no-equals", "=3"):
        with pytest.raises(ConfigValueError, match="--set expects section.key=value"):
            parse_override(bad)


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (
            {"inner": {"levle": 1}},
            "^f: unknown test key 'inner.levle'; did you mean inner.level",
        ),
        (
            {"innr": {"level": 1}},
            "^f: unknown test key 'innr.level'; did you mean inner.level",
        ),
        ({"zzz": 1}, "^f: unknown test key 'zzz'; valid keys: inner, other$"),
        (
            {"inner": {"qwertyuiop": 1}},
            "valid keys: inner.level, inner.name, inner.mode, inner.sizes",
        ),
    ],
)
def test_unknown_keys_name_their_origin_and_a_hint(layer: dict[str, object], message: str) -> None:
    with pytest.raises(UnknownConfigKeyError, match=message):
        build(Outer, [("f", layer)], what="test")


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ({"inner": 3}, r"^--set: \[inner\] must be a table of settings$"),
        ({"inner": {"level": 10}}, r"^inner.level = 10 is out of range \[0, 9\]$"),
        ({"inner": {"level": True}}, "^inner.level = True is not a valid int$"),
        ({"inner": {"mode": "c"}}, "^inner.mode = 'c' is not one of: a, b$"),
        ({"other": {"sizes": 3}}, "^other.sizes must be a list"),
        ({"other": {"sizes": ["3"]}}, "^other.sizes = '3' is not a valid int$"),
        ({"inner": {"options": 3}}, "^inner.options must be a table"),
    ],
)
def test_values_are_type_checked(layer: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigValueError, match=message):
        build(Outer, [("--set", layer)], what="test")


def test_to_toml_round_trips(tmp_path: Path) -> None:
    config = Outer(Inner(level=0, name='a "quoted" \\ name', sizes=(), options={"k": "v"}))
    (tmp_path / "c.toml").write_text(to_toml(config))
    assert build(Outer, [("c", read_toml(tmp_path / "c.toml", "test file"))], what="t") == config
    assert leaf_keys(Outer)[:2] == ["inner.level", "inner.name"] and len(leaf_keys(Outer)) == 10


def test_files_the_user_names(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match="^jobs file .*none.toml does not exist$"):
        read_toml(tmp_path / "none.toml", "jobs file")
    (tmp_path / "bad.toml").write_text("[inner]\nlevel = 1\nlevel = 2\n")
    with pytest.raises(
        ConfigValueError, match=r"^jobs file .*bad.toml is not valid TOML: .* line 3"
    ):
        read_toml(tmp_path / "bad.toml", "jobs file")
    with pytest.raises(ConfigValueError, match="^jobs file .* cannot be read"):
        read_toml(tmp_path, "jobs file")  # a folder


@pytest.mark.parametrize(
    "value",
    [
        'quote " and back\\slash',
        "new\nline, tab\t, DEL \x7f, bell \x07",
        "ü 😀",
        "/a b/c.mp4",
        True,
        3,
        1.5,
        ["a", 2],
        ("x",),
    ],
)
def test_toml_value_round_trips(value: object) -> None:
    """The one quoting rule (config files, and flags turned into --set) survives
    every character TOML must see escaped."""
    expected = list(value) if isinstance(value, tuple) else value
    assert tomllib.loads(f"v = {toml_value(value)}")["v"] == expected
    assert parse_override(f"video.codec={toml_value(value)}") == {"video": {"codec": expected}}
