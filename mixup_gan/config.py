"""YAML configs loaded strictly into dataclasses.

Every run kind shares the section shape `data`, `model`, `loss`, `train`, `eval`, `output`.
An unknown key, a wrong type or an out-of-range value is a `ConfigError` that names the file,
the key and the value. Range rules are data on the fields (`metadata`), checked by one loader.
`--set section.key=value` overrides are applied before checking, with the same errors.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .losses import ADVERSARIAL_LOSSES, GENERATOR_LOSSES, PAIRINGS
from .mixup import DISTRIBUTIONS


class ConfigError(ValueError):
    """A bad config value; the message names where it came from, the key and the value."""


def option(default, *, choices: Iterable | None = None, gt=None, ge=None, le=None, doc: str = ""):
    """A config field with its validation rules as metadata."""
    meta = {"choices": tuple(choices) if choices else None, "gt": gt, "ge": ge, "le": le,
            "doc": doc}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


# --- the shared run schema ----------------------------------------------------------------


@dataclass
class DataConfig:
    name: str = option("ring", choices=("ring", "grid", "swissroll", "points"),
                     doc="toy distribution, or 'points' for a CSV file")
    path: str | None = option(None, doc="CSV with columns x,y when name is 'points'")
    scale: str = option("paper", choices=("paper", "wgan-gp"), doc="mode layout preset")
    reference: str | None = option(None, doc="reference point CSV for evaluation")


@dataclass
class ModelConfig:
    latent_dim: int = option(2, ge=1)
    hidden: int = option(512, ge=1)
    depth: int = option(3, ge=1, doc="hidden layers")


def _uniform_alpha_problem(distribution: str, alpha: float) -> tuple[str, str] | None:
    """Uniform(0, alpha) must stay in [0, 1] to interpolate rather than extrapolate."""
    if distribution == "uniform" and alpha > 1:
        return "alpha", f"{alpha!r} must be <= 1 with distribution 'uniform'"
    return None


@dataclass
class LossConfig:
    name: str = option("bce", choices=sorted(ADVERSARIAL_LOSSES))
    alpha: float = option(0.2, ge=0.0, doc="0 = plain ERM loss")
    distribution: str = option("beta", choices=DISTRIBUTIONS)
    per_sample: bool = option(True)
    pairing: str = option("real-fake", choices=PAIRINGS)
    mix_prob: float = option(1.0, ge=0.0, le=1.0)
    erm_weight: float = option(0.0, ge=0.0)
    generator_loss: str | None = option(None, choices=sorted(GENERATOR_LOSSES),
                                      doc="default: the usual partner of the loss")

    def check(self) -> tuple[str, str] | None:
        return _uniform_alpha_problem(self.distribution, self.alpha)


@dataclass
class TrainConfig:
    steps: int = option(2000, gt=0, doc="generator iterations")
    batch_size: int = option(128, gt=0)
    n_dis: int = option(5, gt=0, doc="D steps per G step")
    lr: float = option(1e-3, gt=0.0)
    betas: tuple[float, float] = option((0.9, 0.999))
    seed: int = option(0, ge=0)
    device: str = option("auto", doc="auto, cpu, cuda, cuda:N")
    amp: bool | None = option(False, doc="bfloat16 autocast of the forward passes on any "
                              "device; null = on CUDA only. Off for toy runs: bfloat16 "
                              "resolves 2D points near 1 only to 0.004, a third of a mode's std")


@dataclass
class EvalConfig:
    every: int = option(250, gt=0, doc="evaluate metrics every N generator steps")
    n_samples: int = option(2500, ge=2)
    snapshots: list[int] = option([10, 100, 1000, 10000, 20000])
    contour: bool = option(False, doc="draw D's output under the snapshots")


@dataclass
class OutputConfig:
    dir: str = option("runs")
    name: str | None = option(None, doc="run folder name; default: config file stem")
    checkpoint_every: int = option(500, gt=0, doc="generator steps (GAN runs) or epochs (classify)")
    progress: bool = option(True, doc="show a progress bar")


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    output: OutputConfig = field(default_factory=OutputConfig)


# --- loading --------------------------------------------------------------------------------


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
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp in (str, bool) and isinstance(value, tp):
        return value
    raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")


def _check_range(value, meta, where: str) -> None:
    if value is None:
        return
    choices = meta.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"{where}: {value!r} is not one of {list(choices)}")
    for rule, ok, text in (("gt", lambda v, b: v > b, ">"), ("ge", lambda v, b: v >= b, ">="),
                           ("le", lambda v, b: v <= b, "<=")):
        bound = meta.get(rule)
        if bound is not None and not ok(value, bound):
            raise ConfigError(f"{where}: {value!r} must be {text} {bound}")


def _build(cls, data: dict, source: str, prefix: str = ""):
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise ConfigError(
            f"{source}: unknown key '{prefix}{unknown[0]}' "
            f"(known keys{' in ' + prefix[:-1] if prefix else ''}: {', '.join(fields)})"
        )
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
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: value is not valid YAML ({exc})") from None
    return key.strip().split("."), value


def apply_overrides(data: dict, overrides: Iterable[str]) -> dict:
    """Return a copy of the raw config dict with `--set` overrides applied."""
    import copy

    data = copy.deepcopy(data)
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {text!r}: {k!r} is not a section")
        node[keys[-1]] = value
    return data


def config_from_dict(data: dict | None, cls=RunConfig, *, source: str = "<dict>"):
    """Build a config dataclass from a raw dict; errors name `source`."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections")
    return _build(cls, data, source)


def load_config(path: str | Path | None, cls=RunConfig, overrides: Iterable[str] = ()):
    """Load a YAML file (or defaults when `path` is None), apply overrides, check everything."""
    data: dict = {}
    source = "defaults"
    if path is not None:
        path = Path(path)
        source = str(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
    overrides = list(overrides)
    if overrides:
        source += " with --set " + " ".join(overrides)
    return config_from_dict(apply_overrides(data, overrides), cls, source=source)


def config_to_dict(config) -> dict:
    """Plain dict (tuples as lists) of a config dataclass or dict, for YAML/JSON output."""

    def plain(v):
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    return plain(config if isinstance(config, dict) else dataclasses.asdict(config))


def save_config(config, path: str | Path) -> None:
    """Write a resolved config (dataclass or plain dict) as YAML."""
    Path(path).write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False))


# --- classification runs (`mixup-gan classify`): the same six sections ------------------------


@dataclass
class ClassifyDataConfig:
    name: str = option("digits", choices=("digits", "cifar10", "cifar100"),
                       doc="digits: scikit-learn's bundled 8x8 digits, offline")
    root: str = option("data", doc="where torchvision datasets are (or are downloaded to)")
    download: bool = option(True, doc="download CIFAR when it is not under root")
    num_classes: int | None = option(None, gt=1, doc="default: the dataset's")
    corrupt: float = option(0.0, ge=0.0, le=1.0,
                            doc="share of training labels replaced by random ones")
    corrupt_seed: int = option(0, ge=0)
    augment: bool = option(True, doc="CIFAR: random crop (pad 4) and horizontal flip")
    workers: int = option(2, ge=0, doc="DataLoader workers for CIFAR")


@dataclass
class ClassifyModelConfig:
    name: str = option("mlp", choices=("mlp", "cnn", "preact_resnet18"))
    hidden: int = option(256, ge=1, doc="mlp/cnn width")


@dataclass
class ClassifyLossConfig:
    mode: str = option("mixup", choices=("erm", "mixup", "cutmix"))
    alpha: float = option(1.0, ge=0.0)
    distribution: str = option("beta", choices=DISTRIBUTIONS)
    per_sample: bool = option(False, doc="one lam per sample (mixup only)")
    label_smoothing: float = option(0.0, ge=0.0, le=0.99)

    def check(self) -> tuple[str, str] | None:
        if self.mode == "cutmix" and self.per_sample:
            return "per_sample", "cutmix draws one box, so one lam, per batch"
        return _uniform_alpha_problem(self.distribution, self.alpha)


@dataclass
class ClassifyTrainConfig:
    epochs: int = option(200, gt=0)
    batch_size: int = option(128, gt=0)
    lr: float = option(0.1, gt=0.0)
    momentum: float = option(0.9, ge=0.0, le=1.0)
    weight_decay: float = option(1e-4, ge=0.0)
    milestones: list[int] = option([100, 150], doc="epochs where lr is divided by 1/gamma")
    gamma: float = option(0.1, gt=0.0)
    seed: int = option(0, ge=0)
    device: str = option("auto")
    amp: bool | None = option(None, doc="bfloat16 autocast: true, false, or null = on CUDA only")


@dataclass
class ClassifyEvalConfig:
    every: int = option(1, gt=0, doc="evaluate every N epochs")
    memorization: bool = option(True, doc="also score the training set against its labels")


@dataclass
class ClassifyConfig:
    data: ClassifyDataConfig = field(default_factory=ClassifyDataConfig)
    model: ClassifyModelConfig = field(default_factory=ClassifyModelConfig)
    loss: ClassifyLossConfig = field(default_factory=ClassifyLossConfig)
    train: ClassifyTrainConfig = field(default_factory=ClassifyTrainConfig)
    eval: ClassifyEvalConfig = field(default_factory=ClassifyEvalConfig)
    output: OutputConfig = field(default_factory=OutputConfig)


# --- image GAN runs (`mixup-gan image`): the same six sections -------------------------------


@dataclass
class ImageDataConfig:
    name: str = option("cifar10", choices=("cifar10", "mnist", "folder", "digits"),
                       doc="folder: every image under data.root; digits: offline 8x8 digits")
    root: str = option("data", doc="dataset folder (downloaded into for cifar10/mnist)")
    size: int = option(32, gt=0)
    channels: int = option(3, choices=(1, 3))
    download: bool = option(True)


@dataclass
class ImageModelConfig:
    arch: str = option("dcgan", choices=("dcgan", "sn_resnet"))
    latent_dim: int = option(128, ge=1)
    g_width: int = option(128, ge=1)
    d_width: int = option(64, ge=1)
    d_norm: str = option("spectral", choices=("spectral", "batch", "none"),
                         doc="dcgan D normalisation; batch = original DCGAN, not for mixup")


@dataclass
class ImageTrainConfig(TrainConfig):
    ema: float = option(0.999, ge=0.0, le=0.99999, doc="generator EMA decay; 0 = off")
    amp: bool | None = option(None, doc="bfloat16 autocast: true, false, or null = on CUDA only")
    compile: bool = option(False, doc="torch.compile G and D")


@dataclass
class ImageEvalConfig:
    every: int = option(1000, gt=0, doc="log losses and write a sample grid every N steps")
    n_samples: int = option(64, ge=1, doc="images in the sample grid (fixed noise)")
    fid_every: int | None = option(None, gt=0, doc="FID of the (EMA) generator every N steps; "
                                   "null = off. The best one is kept as best.pt")
    fid_samples: int = option(5000, ge=2, doc="generated images per FID evaluation")
    fid_reference: str | None = option(None, doc="image folder, torch-fidelity dataset name or "
                                       "statistics file; null = the training images")
    fid_extractor: str = option("inception-v3-compat", doc="torch-fidelity feature extractor")
    fid_inception_weights: str | None = option(None, doc="inception-v3-compat weights file")
    fid_batch_size: int = option(64, ge=1)


@dataclass
class ImageConfig:
    data: ImageDataConfig = field(default_factory=ImageDataConfig)
    model: ImageModelConfig = field(default_factory=ImageModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: ImageTrainConfig = field(default_factory=ImageTrainConfig)
    eval: ImageEvalConfig = field(default_factory=ImageEvalConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
