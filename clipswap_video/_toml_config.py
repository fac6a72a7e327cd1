"""TOML files and `--set key=value` overrides -> a checked frozen-dataclass tree, and back.

    layers = [(str(path), read_toml(path, "config file")), ("--set", parse_override(text))]
    settings = build(Settings, layers, what="config")
    text = to_toml(settings)

Every layer is checked for unknown keys (naming where it came from, with a
"did you mean" hint) before it is merged over the ones below it; the merged
values are then checked against the fields' types, and keys no layer gives keep
their dataclass defaults. Used by the swap settings (clipswap_video.config) and
the training config (clipswap_video.train.config).

A field may carry `metadata={"range": (low, high)}`; a field whose type is a
dataclass is a [section] (a table of its own fields).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import tomllib
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import UnionType
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TypeVar, Union, get_args, get_origin

from clipswap_video.errors import ConfigValueError, InputNotFoundError, UnknownConfigKeyError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T")
Layer = tuple[str, Mapping[str, Any]]
"""(where the values came from, for error lines; a nested table of them)."""


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """The table in TOML file `path`; `what` names the file in error lines ("jobs file").

    Raises:
        InputNotFoundError: no such file (as for every file a user names).
        ConfigValueError: a file that cannot be read, or that is not TOML
            (tomllib's message names the line and column).
    """
    try:
        with open(path, "rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise InputNotFoundError(f"{what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigValueError(f"{what} {path} cannot be read: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigValueError(f"{what} {path} is not valid TOML: {error}") from None


def parse_override(text: str) -> dict[str, Any]:
    """`section.key=value` as the layer `{section: {key: value}}` (a key without
    a section stays at the top, where `build` refuses it by name). The value is
    TOML (numbers, booleans, quoted strings, lists, inline tables), or else the
    bare text (`--set video.codec=libx265`).

    Raises:
        ConfigValueError: no `=`, or nothing before it.
    """
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigValueError(f"--set expects section.key=value, got {text!r}")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    section, dot, name = key.strip().partition(".")
    return {section: {name: value}} if dot else {section: value}


def build(cls: type[T], layers: Sequence[Layer], *, what: str) -> T:
    """`cls` from its defaults and `layers`, lowest first; `what` names the
    kind of settings in error lines ("training config").

    Raises:
        UnknownConfigKeyError: a key `cls` does not have.
        ConfigValueError: a value of the wrong type or out of its range.
    """
    merged: dict[str, Any] = {}
    for origin, table in layers:
        _merge(cls, merged, table, prefix="", origin=origin, what=what)
    return typing.cast(T, _build(cls, merged, prefix=""))


def leaf_keys(cls: type) -> list[str]:
    """Every dotted key of `cls` that holds a value (`video.crf`), in field order."""
    keys = []
    for name, (hint, _) in _fields(cls).items():
        keys += [f"{name}.{key}" for key in leaf_keys(hint)] if _is_section(hint) else [name]
    return keys


def to_toml(config: DataclassInstance) -> str:
    """A dataclass tree as TOML: one [section] per dataclass field of `config`."""
    lines: list[str] = []
    for section in dataclasses.fields(config):
        lines.append(f"[{section.name}]")
        values = dataclasses.asdict(getattr(config, section.name))
        lines.extend(f"{key} = {toml_value(value)}" for key, value in values.items())
        lines.append("")
    return "\n".join(lines)


def toml_value(value: Any) -> str:
    """One value in TOML syntax (the one quoting rule: config files, --set from flags)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | Path):
        # A JSON string is a TOML basic string, but for DEL, which TOML wants escaped.
        return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def _coerce(value: Any, hint: Any, name: str, metadata: Mapping[str, Any]) -> Any:
    """A TOML value checked against a setting's type (Literal choices, tuples,
    tables, numbers with an optional `range` in the field's metadata)."""
    origin = get_origin(hint)
    if origin in (Union, UnionType):
        return _coerce_union(value, get_args(hint), name, metadata)
    if origin is Literal:
        if value not in get_args(hint):
            choices = ", ".join(map(str, get_args(hint)))
            raise ConfigValueError(f"{name} = {value!r} is not one of: {choices}")
        return value
    if origin is tuple:
        if isinstance(value, str):  # `--set composite.masks=landmarks,occlusion`
            value = [entry.strip() for entry in value.split(",") if entry.strip()]
        if not isinstance(value, list):
            raise ConfigValueError(f"{name} must be a list, e.g. {name} = [...]")
        return tuple(_coerce(entry, get_args(hint)[0], name, {}) for entry in value)
    if origin is dict:
        if get_args(hint)[1] is not str:  # a free-form table
            if not isinstance(value, dict):
                raise ConfigValueError(f"{name} must be a table")
            return value
        if not isinstance(value, dict):
            raise ConfigValueError(f'{name} must be a table, e.g. {name} = {{tune = "film"}}')
        return {str(k): _toml_scalar_str(v) for k, v in value.items()}
    if not _fits(value, hint):
        raise ConfigValueError(f"{name} = {value!r} is not a valid {hint.__name__}")
    low, high = metadata.get("range", (None, None))
    if low is not None and not low <= value <= high:
        raise ConfigValueError(f"{name} = {value!r} is out of range [{low}, {high}]")
    return float(value) if hint is float else value


def _coerce_union(
    value: Any, members: tuple[Any, ...], name: str, metadata: Mapping[str, Any]
) -> Any:
    """`value` as the first member type that takes it (`int | Literal["paper"]`);
    an out-of-range number says so rather than the union's alternatives."""
    problems = []
    for member in members:
        try:
            return _coerce(value, member, name, metadata)
        except ConfigValueError as error:
            if "out of range" in str(error):
                raise
            problems.append(describe_type(member, metadata))
    raise ConfigValueError(f"{name} = {value!r} is not {' or '.join(problems)}")


def describe_type(hint: Any, metadata: Mapping[str, Any] | None = None) -> str:
    """What a setting accepts, in words: its choices, or its type and range."""
    metadata = metadata or {}
    origin = get_origin(hint)
    if origin in (Union, UnionType):
        return ", or ".join(describe_type(member, metadata) for member in get_args(hint))
    if origin is Literal:
        return "one of " + ", ".join(f"`{choice}`" for choice in get_args(hint))
    if origin is dict:
        return "table"
    names = {bool: "true or false", int: "integer", float: "number", str: "text"}
    words = names.get(hint, getattr(hint, "__name__", str(hint)))
    if "range" in metadata:
        low, high = metadata["range"]
        words += f" from {low} to {high}"
    return words


def _merge(
    cls: type,
    into: dict[str, Any],
    table: Mapping[str, Any],
    *,
    prefix: str,
    origin: str,
    what: str,
) -> None:
    """Copies `table` over `into`, section by section; a value replaces, a section merges."""
    fields = _fields(cls)
    for key, value in table.items():
        if key not in fields:
            _raise_unknown(cls, prefix, key, value, origin, what)
        hint, _ = fields[key]
        if not _is_section(hint):
            into[key] = value
        elif isinstance(value, dict):
            section = into.setdefault(key, {})
            _merge(hint, section, value, prefix=f"{prefix}{key}.", origin=origin, what=what)
        else:
            raise ConfigValueError(f"{origin}: [{prefix}{key}] must be a table of settings")


def _build(cls: type, values: Mapping[str, Any], *, prefix: str) -> Any:
    kwargs = {}
    for key, value in values.items():
        hint, metadata = _fields(cls)[key]
        name = f"{prefix}{key}"
        if _is_section(hint):
            kwargs[key] = _build(hint, value, prefix=f"{name}.")
        else:
            kwargs[key] = _coerce(value, hint, name, metadata)
    return cls(**kwargs)


def _raise_unknown(
    cls: type, prefix: str, key: str, value: Any, origin: str, what: str
) -> NoReturn:
    """Names the unknown key down to its first leaf (`vidoe.crf`, not `vidoe`),
    so that the hint can be any dotted key below `cls`, not only a sibling."""
    dotted = f"{prefix}{key}"
    while isinstance(value, dict) and value:
        first = next(iter(value))
        dotted, value = f"{dotted}.{first}", value[first]
    close = difflib.get_close_matches(dotted, _known_keys(cls, prefix), n=1)
    level = [f"{prefix}{name}" for name in _fields(cls)]
    hint = f"did you mean {close[0]}?" if close else f"valid keys: {', '.join(level)}"
    raise UnknownConfigKeyError(f"{origin}: unknown {what} key '{dotted}'; {hint}")


def _known_keys(cls: type, prefix: str) -> list[str]:
    """The dotted keys and the section names under `cls`, which sits at `prefix`."""
    sections = [name for name, (hint, _) in _fields(cls).items() if _is_section(hint)]
    return [f"{prefix}{key}" for key in [*leaf_keys(cls), *sections]]


@functools.cache
def _fields(cls: type) -> dict[str, tuple[Any, Mapping[str, Any]]]:
    """Field name -> (its resolved type, its metadata)."""
    hints = typing.get_type_hints(cls)
    return {spec.name: (hints[spec.name], spec.metadata) for spec in dataclasses.fields(cls)}


def _is_section(hint: Any) -> bool:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def _fits(value: Any, hint: Any) -> bool:
    """Whether a TOML value suits a setting's type (an int is a float, a bool is no int)."""
    if isinstance(value, bool):  # bool is an int subclass; keep them apart
        return hint is bool
    if hint is float:
        return isinstance(value, int | float)
    return isinstance(value, hint)


def _toml_scalar_str(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


__all__ = [
    "Layer",
    "build",
    "describe_type",
    "leaf_keys",
    "parse_override",
    "read_toml",
    "to_toml",
    "toml_value",
]
