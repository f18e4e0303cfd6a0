"""The one path rule of config files: a relative path written in a file is relative to that
file's folder. Fields say they hold a path with `option(..., path=True)` (or, for a mapping of
key paths such as a sweep's `set`, `option(..., paths=...)`); `config.load_config` applies
`resolve_paths` to what it reads from a file, before `--set` overrides (which stay relative
to the current folder)."""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any


def _unwrap_optional(tp):
    """`Section | None` -> `Section`; any other type as it is."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return next((a for a in typing.get_args(tp) if a is not type(None)), tp)
    return tp


def path_keys(cls, prefix: str = "") -> frozenset[str]:
    """Key paths of the schema's `path=True` fields, in nested sections too: `data.reference`."""
    keys: set[str] = set()
    for f in dataclasses.fields(cls):
        tp = _unwrap_optional(typing.get_type_hints(cls)[f.name])
        if f.metadata.get("path"):
            keys.add(prefix + f.name)
        elif dataclasses.is_dataclass(tp):
            keys |= path_keys(tp, f"{prefix}{f.name}.")
    return frozenset(keys)


def _relative_to(folder: Path, value: Any) -> Any:
    """A relative path string read from a file in `folder`, as seen from the current folder."""
    if not isinstance(value, str) or not value or Path(value).is_absolute():
        return value
    return os.path.normpath(folder / value)


def _resolve_in_mapping(mapping: Any, keys: frozenset[str], folder: Path) -> Any:
    """A mapping of key paths (`data.reference: x`, `data: {reference: x}`, grid lists)."""
    if not isinstance(mapping, dict):
        return mapping
    out = {}
    for key, value in mapping.items():
        key = str(key)
        if key in keys:
            value = ([_relative_to(folder, v) for v in value] if isinstance(value, list)
                     else _relative_to(folder, value))
        elif isinstance(value, dict) and any(k.startswith(key + ".") for k in keys):
            value = _resolve_in_mapping(value, frozenset(k[len(key) + 1:] for k in keys
                                                         if k.startswith(key + ".")), folder)
        out[key] = value
    return out


def resolve_paths(data: dict, cls, folder: Path) -> dict:
    """The one path rule: a relative path written in a config file (a `path=True` field:
    a toy run's `data.path` and `data.reference`, a sweep's `base`, and those keys in a
    sweep's `set`, `grid` and `cases`) is relative to the file's `folder`; the result is
    relative to the current folder (absolute when `folder` is). `--set` values are not
    passed through here: they stay relative to the current folder."""
    out = dict(data)
    for f in dataclasses.fields(cls):
        if f.name not in out:
            continue
        value, tp = out[f.name], _unwrap_optional(typing.get_type_hints(cls)[f.name])
        if f.metadata.get("path"):
            out[f.name] = _relative_to(folder, value)
        elif f.metadata.get("paths"):
            keys = f.metadata["paths"]
            out[f.name] = ([_resolve_in_mapping(v, keys, folder) for v in value]
                           if isinstance(value, list) else _resolve_in_mapping(value, keys,
                                                                                folder))
        elif dataclasses.is_dataclass(tp) and isinstance(value, dict):
            out[f.name] = resolve_paths(value, tp, folder)
    return out
