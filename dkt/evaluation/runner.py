"""The ``dkt evaluate`` run: every method on every composite, every metric on every result.

Per item the composite and mask are read once and each method's result is scored at once,
so memory holds one item's images (plus the few kept for the contact sheet) however large
the set. Inception features are taken per result and kept (2048 numbers each) for FID/KID
at the end. A failure on one item is recorded against that method and item, never stops
the run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dkt.errors import DktError, PathError
from dkt.evaluation.fid import feature_stats, frechet_distance, kid
from dkt.evaluation.fidelity import background_change, content_ssim
from dkt.evaluation.methods import OpenMethod
from dkt.evaluation.style import TextureRegions, colour_distance, texture_distance, texture_regions
from dkt.imaging.chroma import chroma_speckle
from dkt.imaging.imageio import read_image, read_mask, write_image
from dkt.inference.pairing import Job

__all__ = [
    "METRICS",
    "EvalReport",
    "MethodResult",
    "Metric",
    "PerceptualScorer",
    "run_evaluation",
]


#: Per-item values below this are taken as it in a geometric mean: one object with no colour
#: detail at all (a flat fill, ratio 0) must not make a method's whole aggregate 0.
GEOMEAN_FLOOR = 1e-3


@dataclass(frozen=True)
class Metric:
    """A column: ``better`` is "lower", "higher" or "one" (closest to 1); ``aggregate`` is
    "mean", "geomean" (for ratios: exp of the mean log), "max", or "set" (FID/KID, over all
    results at once)."""

    key: str
    label: str
    better: str
    aggregate: str
    description: str
    #: How one result is scored: ``(output, composite, mask, texture regions) -> value or
    #: None``. ``None`` here: scored elsewhere (the VGG pair by the loss network, FID/KID
    #: over the whole set). A new per-image metric is a function and one entry below.
    measure: (
        Callable[[np.ndarray, np.ndarray, np.ndarray, TextureRegions | None], float | None] | None
    ) = None

    @property
    def arrow(self) -> str:
        return {"lower": "↓", "higher": "↑"}.get(self.better, "→1")


METRICS: tuple[Metric, ...] = (
    Metric(
        "colour_swd",
        "colour",
        "lower",
        "mean",
        "sliced Wasserstein distance (Lab units) between foreground and background colours",
        lambda out, comp, mask, regions: colour_distance(out, mask),
    ),
    Metric(
        "texture_gabor",
        "texture",
        "lower",
        "mean",
        "mean |log| ratio of foreground to background Gabor energies (3 scales x 4 orientations)",
        lambda out, comp, mask, regions: texture_distance(out, mask, regions=regions),
    ),
    Metric(
        "chroma_speckle",
        "chroma speckle",
        "one",
        "geomean",
        "RMS of the object's fine colour detail (CIELAB a/b minus their 5x5 mean) over the "
        "painting's: 1 = as fine as the painting's, above 1 = colour speckle the painting "
        "lacks, below 1 = flatter colour; geometric mean over images",
        lambda out, comp, mask, regions: chroma_speckle(out, comp, mask),
    ),
    Metric(
        "content_ssim",
        "content SSIM",
        "higher",
        "mean",
        "SSIM on luma between the result's and the composite's foreground",
        lambda out, comp, mask, regions: content_ssim(out, comp, mask),
    ),
    Metric(
        "bg_max_change",
        "bg change",
        "lower",
        "max",
        "largest change outside the mask, 0..255 (0 expected)",
        lambda out, comp, mask, regions: float(background_change(out, comp, mask)),
    ),
    Metric(
        "vgg_style",
        "VGG style",
        "lower",
        "mean",
        "L_s on a pretrained VGG-19 at the taps its weights have (relu1_1..relu4_1, or "
        "..relu3_1 for a truncated file; deeper taps from --vgg-deep-weights are the distilled "
        "approximation's, the report says which): foreground vs background statistics, relative",
    ),
    Metric(
        "vgg_content",
        "VGG content",
        "lower",
        "mean",
        "L_c on the same loss network: change of the foreground at relu4_1 where it has that "
        "tap, else at its deepest, relative",
    ),
    Metric(
        "fid",
        "FID",
        "lower",
        "set",
        "Fréchet Inception distance between all results and the reference paintings",
    ),
    Metric(
        "kid",
        "KID",
        "lower",
        "set",
        "kernel Inception distance (unbiased MMD^2, cubic kernel) to the reference paintings",
    ),
)
PER_ITEM = tuple(m.key for m in METRICS if m.aggregate != "set")


class PerceptualScorer:
    """METHOD.md's VGG style and content losses of a result, on a pretrained loss network.

    Only ever built from real pretrained weights: a random VGG's numbers would look like
    measurements but mean nothing. Images are scored at most ``max_side`` pixels on the
    long side to bound the cost on large inputs; the composite's features are computed once
    per item and reused for every method.

    ``content_index`` is the tap L_c reads (default: the deepest; a loss network's
    :attr:`~training.lossnet.LossNetwork.content_index` picks relu4_1 where it has it).
    ``tap_sources`` is its provenance's tap -> network record, kept for the report, which
    must say which taps are the real VGG-19 and which the distilled approximation.
    """

    def __init__(
        self,
        network: torch.nn.Module,
        *,
        content_index: int = -1,
        tap_sources: dict[str, dict[str, object]] | None = None,
        max_side: int = 512,
        device: str | torch.device = "cpu",
    ) -> None:
        from training.losses import content_loss, style_loss

        self.network = network.to(device).eval()
        self.device = device
        self.max_side = max_side
        self._style_loss = style_loss
        self._content_loss = content_loss
        self._cache: tuple[np.ndarray, list[torch.Tensor], torch.Tensor] | None = None
        #: The taps the metrics are taken at, e.g. relu1_1..relu3_1 for a truncated VGG-19.
        self.taps: tuple[str, ...] = tuple(getattr(network, "tap_names", ()))
        self.content_index = content_index
        #: The tap L_c is taken at (None where the network does not name its taps).
        self.content_tap: str | None = self.taps[content_index] if self.taps else None
        self.tap_sources: dict[str, dict[str, object]] = dict(tap_sources or {})

    def _tensor(self, image: np.ndarray, channels_last: bool = True) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(image)).float()
        t = (t.permute(2, 0, 1) / 255.0 if channels_last else t[None])[None]
        h, w = t.shape[-2:]
        if max(h, w) > self.max_side:
            scale = self.max_side / max(h, w)
            size = (max(1, round(h * scale)), max(1, round(w * scale)))
            t = torch.nn.functional.interpolate(
                t, size=size, mode="bilinear", antialias=True, align_corners=False
            )
        return t.to(self.device)

    @torch.inference_mode()
    def __call__(
        self, output: np.ndarray, composite: np.ndarray, mask: np.ndarray
    ) -> tuple[float, float]:
        if self._cache is None or self._cache[0] is not composite:
            self._cache = (
                composite,
                self.network(self._tensor(composite)),
                self._tensor(mask, channels_last=False),
            )
        _, comp_feats, m = self._cache
        out_feats = self.network(self._tensor(output))
        style = self._style_loss(out_feats, comp_feats, m)
        c = self.content_index
        content = self._content_loss(out_feats[c], comp_feats[c], m)
        return float(style), float(content)


@dataclass
class ItemFailure:
    key: str
    error: str


@dataclass
class MethodResult:
    """One method's scores: per item, aggregated, FID/KID, timing and failures."""

    name: str
    token: str
    kind: str
    description: dict[str, Any]
    per_item: dict[str, dict[str, float | None]] = field(default_factory=dict)
    failures: list[ItemFailure] = field(default_factory=list)
    features: list[np.ndarray] = field(default_factory=list)
    seconds: float = 0.0
    timed: bool = True
    resized: int = 0
    set_metrics: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def images(self) -> int:
        return len(self.per_item)

    @property
    def seconds_per_image(self) -> float | None:
        if not self.timed or not self.per_item:
            return None
        return self.seconds / len(self.per_item)

    def aggregate(self, metric: Metric) -> float | None:
        """Mean, geometric mean or max over items of a per-item metric (items where it is
        None or NaN left out); FID/KID from ``set_metrics``."""
        if metric.aggregate == "set":
            return self.set_metrics.get(metric.key)
        scored = [v[metric.key] for v in self.per_item.values() if metric.key in v]
        values = [v for v in scored if v is not None and not math.isnan(v)]
        if not values:
            return None
        if metric.aggregate == "max":
            return float(np.max(values))
        if metric.aggregate == "geomean":
            return float(np.exp(np.mean(np.log(np.maximum(values, GEOMEAN_FLOOR)))))
        return float(np.mean(values))


@dataclass
class EvalReport:
    """Everything ``dkt evaluate`` prints and writes."""

    methods: list[MethodResult]
    items_total: int
    items_evaluated: int
    item_failures: list[ItemFailure]
    sheet_rows: list[tuple[str, list[np.ndarray | None]]]
    references: int | None
    seconds_total: float
    unavailable: dict[str, str] = field(default_factory=dict)
    vgg_taps: tuple[str, ...] = ()  # the loss network's taps the VGG metrics were taken at
    vgg_content_tap: str | None = None  # the tap VGG content was taken at
    #: tap -> the record of the network that gave it (``kind``, ``file``), where known.
    vgg_tap_sources: dict[str, dict[str, object]] = field(default_factory=dict)


def _score(
    output: np.ndarray,
    composite: np.ndarray,
    mask: np.ndarray,
    perceptual: PerceptualScorer | None,
    regions: TextureRegions | None = None,
) -> dict[str, float | None]:
    scores: dict[str, float | None] = {
        metric.key: metric.measure(output, composite, mask, regions)
        for metric in METRICS
        if metric.measure is not None
    }
    if perceptual is not None:
        scores["vgg_style"], scores["vgg_content"] = perceptual(output, composite, mask)
    return scores


def _safe_name(name: str) -> str:
    """A method name as one folder name (path separators and odd characters replaced)."""
    return "".join(c if c.isalnum() or c in "-_.+" else "_" for c in name).strip(".") or "method"


def run_evaluation(
    jobs: Sequence[Job],
    methods: Sequence[OpenMethod],
    *,
    perceptual: PerceptualScorer | None = None,
    features: Callable[[np.ndarray], np.ndarray] | None = None,
    reference_features: np.ndarray | None = None,
    sheet_rows: int = 0,
    save_outputs: Path | None = None,
    on_item: Callable[[str], None] = lambda key: None,
) -> EvalReport:
    """Score every method on every job; FID/KID at the end when features are available.

    ``features`` maps one uint8 image to its (2048,) Inception features; with
    ``reference_features`` (R, 2048) it turns on FID and KID.
    """
    started = time.perf_counter()
    results = [
        MethodResult(
            m.name, m.spec.token, m.spec.kind, m.description, timed=m.timed, notes=list(m.notes)
        )
        for m in methods
    ]
    item_failures: list[ItemFailure] = []
    sheet: list[tuple[str, list[np.ndarray | None]]] = []
    evaluated = 0
    for job in jobs:
        try:
            if job.mask is None:
                raise PathError(job.composite, job.missing_mask_reason())
            composite = read_image(job.composite)
            mask = read_mask(job.mask, expected_hw=composite.shape[:2])
        except DktError as exc:
            item_failures.append(ItemFailure(job.key, str(exc)))
            on_item(job.key)
            continue
        evaluated += 1
        regions = texture_regions(mask)  # the mask's part of the texture metric, done once
        row: list[np.ndarray | None] = [composite]
        for method, result in zip(methods, results, strict=True):
            try:
                start = time.perf_counter()
                output = method.produce(job.key, composite, mask)
                result.seconds += time.perf_counter() - start
                result.per_item[job.key] = _score(output, composite, mask, perceptual, regions)
                if features is not None:
                    result.features.append(features(output))
                if save_outputs is not None:
                    write_image(save_outputs / _safe_name(method.name) / f"{job.key}.png", output)
            except DktError as exc:
                result.failures.append(ItemFailure(job.key, str(exc)))
                output = None
            except (OSError, ValueError, RuntimeError) as exc:
                result.failures.append(
                    ItemFailure(job.key, f"{job.key}: {type(exc).__name__}: {exc}")
                )
                output = None
            row.append(output)
        if len(sheet) < sheet_rows:
            sheet.append((job.key, row))
        on_item(job.key)
    for method, result in zip(methods, results, strict=True):
        result.resized = method.resized
        if method.resized:
            result.notes.append(
                f"{method.resized} result(s) were not at the composite's size and were resized"
            )
    if reference_features is not None:
        for result in results:
            result.set_metrics.update(set_metrics(result.features, reference_features))
    return EvalReport(
        methods=results,
        items_total=len(jobs),
        items_evaluated=evaluated,
        item_failures=item_failures,
        sheet_rows=sheet,
        references=None if reference_features is None else len(reference_features),
        seconds_total=time.perf_counter() - started,
        vgg_taps=perceptual.taps if perceptual is not None else (),
        vgg_content_tap=perceptual.content_tap if perceptual is not None else None,
        vgg_tap_sources=dict(perceptual.tap_sources) if perceptual is not None else {},
    )


def set_metrics(features: Sequence[np.ndarray], references: np.ndarray) -> dict[str, float | None]:
    """FID and KID (mean and spread over subsets) of one method's results vs the references."""
    if len(features) < 2 or len(references) < 2:
        return {"fid": None, "kid": None, "kid_std": None}
    feats = np.stack(features)
    ours, refs = feature_stats(feats), feature_stats(references)
    k = kid(feats, references)
    return {
        "fid": frechet_distance(ours.mu, ours.sigma, refs.mu, refs.sigma),
        "kid": k.mean,
        "kid_std": k.std,
    }
