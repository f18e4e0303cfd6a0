"""YAML configs loaded strictly into dataclasses: the loader every run kind uses.

Each run kind has its schema next to its runner (`toy/config.py`, `image/config.py`,
`classify/config.py`), all of the section shape `data`, `model`, `loss`, `train`, `eval`,
`output`; GAN runs share `gan_config.py`'s `loss` and `train` sections. An unknown key, a
wrong type or an out-of-range value is a `ConfigError` that names the file, the key and the
value. Range rules are data on the fields (`metadata`), checked by one loader; so are the
marks saying which keys a resume may change and which may differ between members of one
population (`key_marks`), read by the run folder and the sweep.
`--set section.key=value` overrides are applied before checking, with the same errors.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .checkpoint import atomic_write
from .config_paths import path_keys, resolve_paths  # noqa: F401  (path_keys: for schemas)
from .fields import key_marks, option, section  # noqa: F401  (the schemas' fields)
from .yaml_loader import load_yaml, yaml_problem


class ConfigError(ValueError):
    """A bad config value; the message names where it came from, the key and the value."""


# Bounds past which a run can never train (the schemas' `le`): a batch or sample count that
# cannot be allocated, a width whose weights cannot, a learning rate that overflows at once.
MAX_BATCH, MAX_SAMPLES, MAX_WIDTH, MAX_LR = 2 ** 20, 10 ** 7, 2 ** 14, 1e3
SEED_LIMIT = 2 ** 63  # seeds are 0 <= seed < 2^63 everywhere (config keys and flags)


def seed_option(default: int = 0, doc: str = "", per_member: bool = False) -> Any:
    """The one seed type of every config: an int, 0 <= seed < 2^63."""
    return option(default, ge=0, lt=SEED_LIMIT, doc=doc, per_member=per_member)


def check_seed(value: Any, where: str = "--seed") -> int:
    """A seed given anywhere else (a command-line flag, an API argument): the same rule as
    `seed_option`; a ConfigError naming `where`. Takes the flag's text too."""
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ConfigError(f"{where}: {value!r} is not an integer seed") from None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < SEED_LIMIT:
        raise ConfigError(f"{where}: {value!r} is not a seed: use an integer with "
                          "0 <= seed < 2**63")
    return value


# --- the section every run kind shares ---------------------------------------------


@dataclass
class OutputConfig:
    """Where a run writes (every run kind)."""

    dir: str = option("runs")
    name: str | None = option(None, doc="run folder name; default: config file stem")
    checkpoint_every: int = option(500, gt=0, doc="generator steps (GAN runs) or epochs (classify)")
    progress: bool = option(True, doc="show a progress bar")
    tensorboard: bool = option(False, doc="also write the metrics rows (and image samples) "
                               "to <run>/tensorboard; needs the tensorboard package")


# --- loading --------------------------------------------------------------------------------


_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def check_device(name: str) -> tuple[str, str] | None:
    """A `device` key's value must name a device (whether it exists is checked at run time)."""
    if name == "auto" or re.fullmatch(r"cpu|cuda(:\d+)?", name):
        return None
    return "device", f"{name!r} is not a device: use auto, cpu, cuda or cuda:N"


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp, source: str, key: str) -> Any:
    """Check `value` against the type annotation `tp`; return it converted (int -> float...)."""
    where = f"{source}: {key}"
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(value, inner[0], source, key)
    if tp is Any:
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {str(k): _convert(v, args[1], source, f"{key}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a section (mapping), got {value!r}")
        return _build(tp, value, source, f"{key}.")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and len(args) != len(value):
            raise ConfigError(f"{where}: expected {len(args)} values, got {value!r}")
        item_types = args if origin is tuple else [args[0]] * len(value)
        items = [_convert(v, t, source, f"{key}[{i}]")
                 for i, (v, t) in enumerate(zip(value, item_types, strict=True))]
        return tuple(items) if origin is tuple else items
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
        return float(value)  # YAML 1.1 reads 1e-4 (no dot) as a string
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp in (str, bool) and isinstance(value, tp):
        return value
    raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")


def _non_finite(value) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    return isinstance(value, (list, tuple)) and any(_non_finite(v) for v in value)


def _check_range(value, meta, where: str) -> None:
    if value is None:
        return
    if meta.get("finite", True) and _non_finite(value):
        raise ConfigError(f"{where}: {value!r} must be a finite number")
    choices = meta.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"{where}: {value!r} is not one of {list(choices)}")
    for rule, ok, text in (("gt", lambda v, b: v > b, ">"), ("ge", lambda v, b: v >= b, ">="),
                           ("le", lambda v, b: v <= b, "<="), ("lt", lambda v, b: v < b, "<")):
        bound = meta.get(rule)
        if bound is not None and not ok(value, bound):
            raise ConfigError(f"{where}: {value!r} must be {text} {bound}")


SWEEP_KEYS = ("grid", "cases", "seeds", "population", "concurrent")


def _unknown_key(source: str, prefix: str, key, fields) -> ConfigError:
    hint = ("; this is a sweep file: run it with `mixup-gan sweep -c`"
            if not prefix and key in SWEEP_KEYS else "")
    return ConfigError(f"{source}: unknown key '{prefix}{key}' (known keys"
                       f"{' in ' + prefix[:-1] if prefix else ''}: {', '.join(fields)}){hint}")


def _check_keys(cls, data, source: str, prefix: str = "") -> None:
    """Unknown keys of one source (a config file) named with that source alone, before
    `--set` overrides are merged into it (the file, not the --set, is at fault)."""
    if not isinstance(data, dict):
        return
    hints = typing.get_type_hints(cls)
    for key, value in data.items():
        if key not in hints:
            raise _unknown_key(source, prefix, key, hints)
        tp = hints[key]
        if typing.get_origin(tp) in (typing.Union, types.UnionType):
            tp = next((a for a in typing.get_args(tp) if a is not type(None)), tp)
        if dataclasses.is_dataclass(tp):
            _check_keys(tp, value, source, f"{prefix}{key}.")


def _build(cls, data: dict, source: str, prefix: str = ""):
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise _unknown_key(source, prefix, unknown[0], fields)
    kwargs = {}
    for name, value in data.items():
        converted = _convert(value, hints[name], source, prefix + name)
        _check_range(converted, fields[name].metadata, f"{source}: {prefix}{name}")
        kwargs[name] = converted
    obj = cls(**kwargs)
    # Rules that tie fields together live on the section as `check() -> (key, message) | None`.
    problem = obj.check() if hasattr(obj, "check") else None
    if problem:
        key, message = problem
        raise ConfigError(f"{source}: {prefix}{key}: {message}")
    return obj


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse `section.key=value` (value in YAML syntax) into (["section", "key"], value)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip() or any(not part for part in key.strip().split(".")):
        raise ConfigError(f"--set {text!r}: expected section.key=value")
    try:
        value = load_yaml(raw) if raw.strip() else None
        tokens = list(yaml.scan(raw))
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: value is not valid YAML ({yaml_problem(exc)})"
                          ) from None
    # YAML drops a comment without a word: `output.dir=runs #2` would be `runs`
    ends = [t.end_mark.index for t in tokens  # where the value's last token ends
            if not isinstance(t, (yaml.StreamStartToken, yaml.StreamEndToken, yaml.BlockEndToken))]
    end = max(ends, default=0)
    if raw[end:].lstrip().startswith("#"):
        raise ConfigError(f"--set {text!r}: YAML reads what follows '#' as a comment, which "
                          f"leaves {value!r}; quote the value: {key.strip()}='...'")
    return key.strip().split("."), value


def section_paths(cls, prefix: str = "") -> frozenset[str]:
    """Key paths of the schema's sections, nested ones too: `train`, `train.lr_schedule`."""
    paths: set[str] = set()
    for name, tp in typing.get_type_hints(cls).items():
        if typing.get_origin(tp) in (typing.Union, types.UnionType):  # `Section | None`
            tp = next((a for a in typing.get_args(tp) if a is not type(None)), tp)
        if dataclasses.is_dataclass(tp):
            paths |= {prefix + name, *section_paths(tp, f"{prefix}{name}.")}
    return frozenset(paths)


def apply_overrides(data: dict, overrides: Iterable[str] | dict[str, Any],
                    sections: Iterable[str] = ()) -> dict:
    """Return a copy of the raw config dict with overrides applied: `--set` texts
    (`section.key=value`, value in YAML) or a mapping of key paths to values. A mapping given
    for one of `sections` (`train={steps: 5}`, `train.lr_schedule={kind: cosine}`) sets the
    keys it names and keeps the others, at any depth."""
    import copy

    data, sections = copy.deepcopy(data), frozenset(sections)
    pairs = (((path.split("."), value, f"{path}") for path, value in overrides.items())
             if isinstance(overrides, dict) else
             ((*parse_override(text), f"--set {text!r}") for text in overrides))
    for keys, value, where in pairs:
        node, i = data, 0
        while True:  # a mapping of key paths (a sweep's `set`) holds `train.steps` whole:
            # a key it holds is one step, the longest first, so that entry is the one changed
            j = next((j for j in range(len(keys), i, -1) if ".".join(keys[i:j]) in node), i + 1)
            if j == len(keys):
                break
            node = node.setdefault(".".join(keys[i:j]), {})
            if not isinstance(node, dict):
                raise ConfigError(f"{where}: {'.'.join(keys[i:j])!r} is not a section")
            i = j
        _merge(node, ".".join(keys[i:]), value, ".".join(keys), sections)
    return data


def _merge(node: dict, key: str, value: Any, path: str, sections: frozenset[str]) -> None:
    """`node[key] = value`, where a mapping for a section keeps the section's other keys."""
    if path not in sections or not isinstance(value, dict):
        node[key] = value
        return
    kept = node.get(key)
    node[key] = merged = dict(kept) if isinstance(kept, dict) else {}
    for inner, v in value.items():
        _merge(merged, inner, v, f"{path}.{inner}", sections)


def config_from_dict(data: dict | None, cls, *, source: str = "<dict>"):
    """Build a config dataclass from a raw dict; errors name `source`."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections")
    return _build(cls, data, source)


def load_config(path: str | Path | None, cls, overrides: Iterable[str] = ()):
    """Load a YAML file (or `cls`'s defaults when `path` is None) into the schema `cls`,
    apply overrides, check everything."""
    data: dict = {}
    source = "defaults"
    if path is not None:
        path = Path(path)
        source = str(path)
        if path.is_dir():
            raise ConfigError(f"{path}: is a folder, not a config file")
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            data = load_yaml(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({yaml_problem(exc)})") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read it ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
        _check_keys(cls, data, source)
        data = resolve_paths(data, cls, path.parent)
    overrides = list(overrides)
    if overrides:
        source += " with --set " + " ".join(overrides)
    return config_from_dict(apply_overrides(data, overrides, section_paths(cls)), cls,
                            source=source)


def config_to_dict(config) -> dict:
    """Plain dict (tuples as lists) of a config dataclass or a dict (of them), for YAML/JSON
    output."""

    def plain(v):
        if dataclasses.is_dataclass(v) and not isinstance(v, type):  # {member id: config}
            return plain(dataclasses.asdict(v))
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    return plain(config if isinstance(config, dict) else dataclasses.asdict(config))


def save_config(config, path: str | Path) -> None:
    """Write a resolved config (dataclass or plain dict) as YAML."""
    atomic_write(path, yaml.safe_dump(config_to_dict(config), sort_keys=False), fsync=False)


