"""FID, KID, precision/recall and IS through torch-fidelity, with content-keyed caches.

torch-fidelity does all the measuring (feature extractors, FID/KID/PR/IS formulas); this
module decides what goes in: our device choice (torch-fidelity would default to CUDA), the
Inception weights (see `inception.py`), and a cache of reference features and statistics keyed
by the data's content fingerprint, the extractor and its weights' hash, and the sample count.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch_fidelity.metric_fid import KEY_METRIC_FID
from torch_fidelity.metric_isc import isc_featuresdict_to_metric
from torch_fidelity.metric_kid import kid_featuresdict_to_metric
from torch_fidelity.metric_prc import prc_featuresdict_to_metric
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, NOISE_SOURCE_REGISTRY
from torch_fidelity.utils import create_feature_extractor, get_featuresdict_from_dataset
from tqdm.auto import tqdm

from ..checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..frechet import FrechetError, frechet_distance
from ..frechet import statistics as _statistics
from ..runtime import resolve_device
from .fast import PRECISIONS, speed_up
from .inception import FIDError, resolve_inception_weights, user_cache_dir
from .inputs import (
    STATS_KEY,
    GeneratorInput,
    ImagesInput,
    StatsInput,
    TensorImages,
    _digest,
    resolve_input,
)

INCEPTION = "inception-v3-compat"
METRICS = {"fid": "fid", "kid": "kid", "pr": "prc", "is": "isc"}  # ours -> torch-fidelity's
RENAME = {"frechet_inception_distance": "fid", "kernel_inception_distance_mean": "kid_mean",
          "kernel_inception_distance_std": "kid_std", "precision": "precision",
          "recall": "recall", "f_score": "f_score", "inception_score_mean": "is_mean",
          "inception_score_std": "is_std"}


def statistics(features: torch.Tensor) -> dict:
    """FID statistics {mu, sigma} of (N, D) features; a FIDError when there are too few."""
    try:
        return _statistics(features)
    except FrechetError as exc:
        raise FIDError(str(exc)) from None


def _to_tensors(stats: dict) -> dict:
    return {k: torch.from_numpy(np.asarray(v)) for k, v in stats.items()}


def _to_numpy(stats: dict) -> dict:
    return {k: v.numpy() if torch.is_tensor(v) else np.asarray(v) for k, v in stats.items()}


class FIDEvaluator:
    """One feature extractor on one device, measuring any number of input pairs.

    `metrics` is a subset of fid, kid, pr, is. The extractor is torch-fidelity's
    `inception-v3-compat` unless another registered name is given (tests register a tiny one).
    `precision` is fp32 (default: batch norms folded, channels_last; torch-fidelity's FID to
    4 significant digits and better), bf16 (faster where bfloat16 is native, less exact) or
    reference (torch-fidelity's module as it is); see `fast.py`.
    """

    def __init__(self, metrics=("fid",), *, feature_extractor: str = INCEPTION,
                 inception_weights: str | Path | None = None, device: str = "auto",
                 batch_size: int = 64, seed: int = 0, cache_dir: str | Path | None = None,
                 use_cache: bool = True, download: bool = True, verbose: bool = False,
                 kid_subset_size: int = 1000, precision: str = "fp32") -> None:
        self.metrics = tuple(dict.fromkeys(metrics))
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown or not self.metrics:
            raise FIDError(f"unknown metric(s) {unknown or metrics}: choose from "
                           f"{', '.join(METRICS)}")
        if precision not in PRECISIONS:
            raise FIDError(f"--precision must be one of {', '.join(PRECISIONS)}, got "
                           f"{precision!r}")
        if batch_size < 1:
            raise FIDError(f"--batch-size must be >= 1, got {batch_size}")
        if feature_extractor not in FEATURE_EXTRACTORS_REGISTRY:
            raise FIDError(f"feature extractor {feature_extractor!r} is not registered with "
                           f"torch-fidelity ({', '.join(FEATURE_EXTRACTORS_REGISTRY)})")
        self.weights = None
        if "is" in self.metrics and not feature_extractor.startswith("inception"):
            raise FIDError(f"IS needs an Inception classifier's logits; the feature extractor "
                           f"{feature_extractor!r} has none: drop 'is' from --metrics")
        if feature_extractor == INCEPTION:
            self.weights = resolve_inception_weights(inception_weights, download=download)
            if "is" in self.metrics and not self.weights.has_logits:
                raise FIDError(f"IS needs the Inception logits, and the weights from "
                               f"{self.weights.origin} have none: drop 'is' or pass "
                               "--inception-weights with torch-fidelity's own file")
        try:
            self.device = resolve_device(device, key="--device")
        except ValueError as exc:
            raise FIDError(str(exc)) from None
        cls = FEATURE_EXTRACTORS_REGISTRY[feature_extractor]
        self.layers = {m: cls.get_default_feature_layer_for_metric(METRICS[m])
                       for m in self.metrics}
        self.name = feature_extractor
        self.extractor_id = (f"{feature_extractor}@{self.weights.sha256[:16]}" if self.weights
                             else feature_extractor) + ("+bf16" if precision == "bf16" else "")
        self.precision = precision
        self.options = {"batch_size": batch_size, "cuda": self.device.type == "cuda",
                        "rng_seed": seed, "verbose": verbose}
        self.kid_subset_size = kid_subset_size
        self.cache_dir = Path(cache_dir) if cache_dir else user_cache_dir() / "fid"
        self.use_cache = use_cache
        if self.device.type == "cuda" and self.device.index is not None:
            torch.cuda.set_device(self.device)  # torch-fidelity moves modules with .cuda()
        self.extractor = create_feature_extractor(
            feature_extractor, sorted(set(self.layers.values())), cuda=self.options["cuda"],
            feature_extractor_weights_path=str(self.weights.path) if self.weights else None,
            verbose=verbose)
        self.extractor = speed_up(self.extractor, precision, self.device)

    # ---- features and statistics of one input -------------------------------------------
    def _cache_path(self, kind: str, source: ImagesInput, layers) -> Path:
        key = _digest(kind, source.fingerprint, self.extractor_id, sorted(set(layers)),
                      len(source))
        return self.cache_dir / f"{kind}-{key[:24]}.pt"

    def _cached(self, path: Path):
        if self.use_cache and path.is_file():
            try:
                return load_checkpoint(path)
            except CheckpointError:
                return None  # a damaged cache entry is recomputed and rewritten
        return None

    def features(self, source) -> dict[str, torch.Tensor]:
        """Features per layer of an ImagesInput (cached) or a GeneratorInput (fresh)."""
        if isinstance(source, StatsInput):
            raise FIDError(f"{source.description} holds FID statistics only; "
                           f"{', '.join(m for m in self.metrics if m != 'fid')} need images")
        if isinstance(source, GeneratorInput):
            return self._generated_features(source)
        if len(source) < 2:
            raise FIDError(f"{source.description}: at least 2 images are needed")
        path = self._cache_path("features", source, self.layers.values())
        cached = self._cached(path)
        if cached is not None:
            return cached
        try:
            with warnings.catch_warnings():  # torch-fidelity asks for 4 workers on 2 cores
                warnings.filterwarnings("ignore", message="This DataLoader will create")
                features = get_featuresdict_from_dataset(
                    source.dataset, self.extractor, self.options["batch_size"],
                    self.options["cuda"],
                    isinstance(source.dataset, TensorImages),  # in memory: no loader workers
                    self.options["verbose"])
        except Exception:
            if source.diagnose is not None:
                source.diagnose()  # raises the clear error when the data is at fault
            raise
        if self.use_cache:
            save_checkpoint(features, path)
        return features

    def _generated_features(self, source: GeneratorInput) -> dict[str, torch.Tensor]:
        """Features of `source.n` fresh images, drawn batch by batch with torch-fidelity's noise
        (numpy RandomState(seed), as `calculate_metrics` draws it) into one preallocated matrix
        per layer. torch-fidelity's own loop keeps a list of per-batch feature tensors, which
        pins glibc's heap between the freed image batches: its peak memory grew by ~8 KB per
        sample (more than the images) where this grows by the feature matrix alone."""
        n, batch = source.n, self.options["batch_size"]
        if n < 2:
            raise FIDError(f"the sample count must be >= 2, got {n}")
        model, device = source.model.to(self.device), self.device
        rng = np.random.RandomState(self.options["rng_seed"])
        out: dict[str, torch.Tensor] = {}
        with torch.no_grad(), tqdm(total=n, unit="img", desc="generated images", leave=False,
                                   disable=not self.options["verbose"]) as bar:
            for start in range(0, n, batch):
                size = min(batch, n - start)
                noise = NOISE_SOURCE_REGISTRY[model.z_type](rng, (size, model.z_size))
                features = self.extractor.convert_features_tuple_to_dict(
                    self.extractor(model(noise.to(device))))
                for layer, value in features.items():
                    if layer not in out:
                        out[layer] = torch.empty(n, *value.shape[1:], dtype=value.dtype)
                    out[layer][start:start + size] = value
                bar.update(size)
        return out

    def check_statistics(self, source) -> None:
        """A statistics file must come from this extractor and layer (checked before any
        features are computed, so a mismatch costs no Inception pass)."""
        if isinstance(source, StatsInput):
            layer = self.layers.get("fid")
            theirs = (source.meta.get("extractor_id"), source.meta.get("layer"))
            if theirs != (self.extractor_id, layer):
                raise FIDError(f"{source.description} was computed with extractor "
                               f"{theirs[0]} (layer {theirs[1]}), this evaluation uses "
                               f"{self.extractor_id} (layer {layer}): recompute it")

    def fid_statistics(self, source, features: dict | None = None) -> dict:
        """FID statistics of any input; ImagesInput statistics are cached on their own (small)."""
        layer = self.layers["fid"]
        if isinstance(source, StatsInput):
            self.check_statistics(source)
            return _to_numpy(source.stats)
        path = (self._cache_path("stats", source, [layer]) if isinstance(source, ImagesInput)
                else None)
        cached = self._cached(path) if path else None
        if cached is not None:
            return _to_numpy(cached)
        stats = statistics((features or self.features(source))[layer])
        if path and self.use_cache:
            save_checkpoint(_to_tensors(stats), path)
        return stats

    # ---- metrics ------------------------------------------------------------------------
    def compare(self, generated, reference=None) -> dict:
        """The requested metrics of `generated` against `reference` (IS needs no reference)."""
        if reference is None and set(self.metrics) - {"is"}:
            raise FIDError("FID, KID and precision/recall need a REFERENCE input")
        for source in (generated, reference):
            self.check_statistics(source)
        needs_features = set(self.metrics) - {"fid"}
        feats_1 = self.features(generated) if needs_features else None
        feats_2 = (self.features(reference)
                   if reference is not None and needs_features - {"is"} else None)
        options = dict(self.options, verbose=False)
        out = {}
        if "fid" in self.metrics:
            stats = [self.fid_statistics(generated, feats_1),
                     self.fid_statistics(reference, feats_2)]
            if stats[0]["mu"].shape != stats[1]["mu"].shape:  # a statistics file's features
                raise FIDError(f"{generated.description} has {len(stats[0]['mu'])} features, "
                               f"{reference.description} {len(stats[1]['mu'])}: not comparable")
            out.update({KEY_METRIC_FID: frechet_distance(*stats)})
        if "kid" in self.metrics:
            layer = self.layers["kid"]
            size = min(self.kid_subset_size, len(feats_1[layer]), len(feats_2[layer]))
            out.update(kid_featuresdict_to_metric(feats_1, feats_2, layer, **options,
                                                  kid_subset_size=size))
        if "pr" in self.metrics:
            out.update(prc_featuresdict_to_metric(feats_1, feats_2, self.layers["pr"], **options))
        if "is" in self.metrics:
            layer = self.layers["is"]
            out.update(isc_featuresdict_to_metric(
                feats_1, layer, **options, isc_splits=min(10, len(feats_1[layer]))))
        return {RENAME.get(k, k): float(v) for k, v in out.items()}

    def save_statistics(self, source, path: str | Path) -> Path:
        """Write `source`'s FID statistics with what they were computed with."""
        return save_checkpoint({
            STATS_KEY: _to_tensors(self.fid_statistics(source)),
            "extractor_id": self.extractor_id, "layer": self.layers["fid"],
            "source": source.description,
            "fingerprint": getattr(source, "fingerprint", None),
        }, path)

    def describe(self) -> dict:
        weights = ({"origin": self.weights.origin, "path": str(self.weights.path),
                    "sha256": self.weights.sha256} if self.weights else None)
        return {"feature_extractor": self.name, "weights": weights, "device": str(self.device),
                "precision": self.precision}


def evaluate(generated: str, reference: str | None = None, *, n: int = 10000, resize: int = 0,
             datasets_root: str | None = None, save_stats: str | None = None,
             load_generator=None, **evaluator_options) -> dict:
    """`mixup-gan fid`: measure GENERATED against REFERENCE; returns a JSON-ready report.

    A generator checkpoint as an input needs `load_generator(path, state) -> (G, latent
    size)`, e.g. `mixup_gan.image.generator.load_generator`."""
    if n < 2:
        raise FIDError(f"-n (samples drawn from a generator) must be >= 2, got {n}")
    started = time.perf_counter()
    evaluator = FIDEvaluator(**evaluator_options)
    where = {"n": n, "device": evaluator.device, "resize": resize,
             "datasets_root": datasets_root,
             "download": evaluator_options.get("download", True),
             "load_generator": load_generator}
    gen = resolve_input(generated, **where)
    ref = resolve_input(reference, **where) if reference is not None else None
    metrics = evaluator.compare(gen, ref)
    report = {"metrics": metrics, "generated": gen.description,
              "reference": ref.description if ref is not None else None,
              **evaluator.describe()}
    if save_stats:
        if ref is None:
            raise FIDError("--save-stats writes the REFERENCE's statistics: give a REFERENCE")
        report["saved_statistics"] = str(evaluator.save_statistics(ref, save_stats))
    report["seconds"] = round(time.perf_counter() - started, 3)
    return report
