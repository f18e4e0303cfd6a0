"""The configs and reference point sets that ship with the package.

In a clone they are the top-level `configs/` and `toy_data/` folders; an installed wheel holds
the same folders inside the package (`mixup_gan/configs`, `mixup_gan/toy_data`, mapped there
by pyproject.toml), so the relative paths inside the configs (`../../toy_data/ring_paper.csv`,
read relative to the config file's folder) hold in both.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .config import ConfigError

PACKAGE = Path(__file__).resolve().parent
QUICKSTART = "toy/default.yaml"  # what `mixup-gan toy` runs without --config
# A config line whose value is a path read relative to the file (`reference: ../x.csv`).
_PATH_LINE = re.compile(r"^(?P<head>\s*(?:[\w.]+\.)?(?:path|reference|base):\s*)"
                        r"(?P<value>[^\s#'\"{\[][^\s#]*)(?P<tail>\s*(?:#.*)?)$")


def shipped_folder(name: str) -> Path:
    """`configs` or `toy_data`: inside the installed package, else beside it (a clone)."""
    for folder in (PACKAGE / name, PACKAGE.parent / name):
        if folder.is_dir():
            return folder
    raise FileNotFoundError(f"the shipped {name}/ folder is missing from this install "
                            f"(looked in {PACKAGE} and {PACKAGE.parent})")


def list_configs() -> list[tuple[str, str]]:
    """(name, first comment line) of every shipped config, names like `toy/default.yaml`."""
    root = shipped_folder("configs")
    out = []
    for path in sorted(root.rglob("*.yaml")):
        first = next((line.lstrip("# ").rstrip() for line in path.read_text().splitlines()
                      if line.startswith("#")), "")
        out.append((path.relative_to(root).as_posix(), first))
    return out


def shipped_config(name: str) -> Path | None:
    """The shipped config `name` (`toy/default`, `toy/default.yaml`, `configs/toy/default`),
    or None when no shipped config has that name."""
    text = name.removeprefix("configs/")
    if not text or Path(text).is_absolute() or ".." in Path(text).parts:
        return None
    root = shipped_folder("configs")
    for candidate in (root / text, root / f"{text}.yaml"):
        if candidate.is_file():
            return candidate
    return None


def config_argument(path: Path | None, default: str | None = None) -> Path | None:
    """What `--config` names: a file, else a shipped config's name, else `default` (a shipped
    name) when no --config was given. A name that is neither is an error naming it."""
    if path is None:
        return shipped_config(default) if default else None
    if path.exists():
        return path
    found = shipped_config(str(path))
    if found is None:
        raise ConfigError(f"config file not found: {path} (nor is it a shipped config: "
                          "mixup-gan configs list)")
    return found


def copy_config(name: str, dest: Path) -> Path:
    """Write the shipped config `name` to `dest` (a file, or a folder to put it in) with its
    relative paths (`data.reference`, `data.path`, a sweep's `base`) made absolute, so the copy
    reads the same files wherever it is put. Refuses to replace an existing file."""
    source = shipped_config(name)
    if source is None:
        raise ConfigError(f"configs copy: no shipped config named {name!r} "
                          "(mixup-gan configs list)")
    target = dest / source.name if dest.is_dir() else dest
    if target.exists():
        raise ConfigError(f"configs copy: {target} exists; remove it or give another name")
    lines = []
    for line in source.read_text().splitlines(keepends=True):
        match = _PATH_LINE.match(line.rstrip("\n"))
        if match and match["value"] != "null" and not Path(match["value"]).is_absolute():
            resolved = (source.parent / match["value"]).resolve()
            line = f"{match['head']}{json.dumps(str(resolved))}{match['tail']}\n"
        lines.append(line)
    if not target.parent.is_dir():
        raise ConfigError(f"configs copy: {target.parent} is not a folder")
    target.write_text("".join(lines))
    return target
