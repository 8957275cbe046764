"""What ``dkt evaluate --methods`` can name, and how each turns a composite into a result.

A method token is one of:

* a built-in baseline: ``composite`` (no change), ``reinhard`` (Lab colour transfer),
  ``adain`` (training-free masked AdaIN at relu3_1 with the pretrained VGG-19 and its feature
  inverter) or ``adain-relu4`` (the same at relu4_1 of the distilled VGG-19 approximation,
  cd16x, with its relu4_1 decoder), each from the files
  :func:`dktnet.pretrained.find_pretrained` finds (:mod:`dkt.evaluation.adain`);
* ``bundled``: the model shipped with the package;
* a model file (any suffix a backend loads, e.g. ``.safetensors``, ``.onnx``), opened
  through the backend registry and run with the same :class:`Harmonizer` as ``dkt harmonize``;
* a folder of results made by any tool (PHDNet, PHDiffusion, ``dkt harmonize --out``),
  matched to composites by key with the pairing rules of ``dkt harmonize``: the result for
  key ``k`` is ``folder/<rel dir>/<outputs pattern filled with k>.<any image suffix>``.

Tokens are checked and models opened before any image is read, so a typo fails at once
with a one-line message; a result missing from a folder is only that item's failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backends.base import LoadOptions
from backends.registry import open_backend
from backends.torch_backend import resolve_device
from dkt import dktnet
from dkt.dktnet.distilled import DISTILLED_KIND
from dkt.dktnet.pretrained import find_pretrained
from dkt.errors import DktError, MethodError, PairingError, PathError
from dkt.evaluation.adain import VARIANTS as ADAIN_VARIANTS
from dkt.evaluation.adain import MaskedAdaIN
from dkt.evaluation.baselines import BASELINES
from dkt.imaging.imageio import read_image
from dkt.inference.harmonizer import Harmonizer
from dkt.inference.pairing import plan_folder

__all__ = [
    "BUNDLED",
    "MethodError",
    "MethodSpec",
    "OpenMethod",
    "open_method",
    "parse_methods",
]

BUNDLED = "bundled"
#: The training-free masked AdaIN baselines (their encoders and decoders are files).
ADAINS = tuple(ADAIN_VARIANTS)
#: Never created: pairing needs an output folder to plan against, evaluation writes nothing.
_UNUSED_OUT = ".dkt-evaluate-unused"


@dataclass(frozen=True)
class MethodSpec:
    """A parsed ``--methods`` token: ``kind`` is "baseline", "model" or "folder"."""

    token: str
    name: str
    kind: str
    path: Path | None = None


def _looks_like_path(token: str) -> bool:
    return "/" in token or "\\" in token or "." in token


def _classify(token: str) -> MethodSpec:
    if token in BASELINES or token in ADAINS:
        return MethodSpec(token, token, "baseline")
    if token == BUNDLED:
        if not dktnet.BUNDLED_MODEL.is_file():
            raise MethodError(
                f"method 'bundled': the bundled model is not installed at "
                f"{dktnet.BUNDLED_MODEL}; pass a model file instead"
            )
        return MethodSpec(token, token, "model", dktnet.BUNDLED_MODEL)
    path = Path(token).expanduser()
    if path.is_dir():
        return MethodSpec(token, "", "folder", path)
    if path.is_file():
        return MethodSpec(token, "", "model", path)
    known = ", ".join([*BASELINES, *ADAINS, BUNDLED])
    if _looks_like_path(token):
        raise MethodError(f"method {token!r}: no such file or folder")
    raise MethodError(
        f"method {token!r} is not one of {known}, nor an existing model file or folder of outputs"
    )


def _short_names(specs: list[MethodSpec]) -> list[MethodSpec]:
    """Give path methods their last path component as a name, adding parents until unique.

    Full paths make unreadable table rows; the last component (``model.onnx``,
    ``phdnet_out``) is what people recognise. Built-in names are taken first, so a folder
    called ``reinhard`` shows as ``results/reinhard`` next to the baseline.
    """
    taken = {s.name for s in specs if s.name}
    out = list(specs)
    depth = 1
    pending = [i for i, s in enumerate(specs) if not s.name]
    while pending:
        proposals: dict[int, str] = {}
        for i in pending:
            parts = Path(specs[i].token.rstrip("/\\")).parts
            proposals[i] = "/".join(parts[-depth:]) if parts else specs[i].token
        counts: dict[str, int] = {}
        for name in proposals.values():
            counts[name] = counts.get(name, 0) + 1
        still = []
        for i, name in proposals.items():
            exhausted = depth >= len(Path(specs[i].token.rstrip("/\\")).parts)
            if (counts[name] == 1 and name not in taken) or exhausted:
                final = name if name not in taken else specs[i].token
                out[i] = MethodSpec(specs[i].token, final, specs[i].kind, specs[i].path)
                taken.add(final)
            else:
                still.append(i)
        pending = still
        depth += 1
    return out


def parse_methods(spec: str) -> list[MethodSpec]:
    """Split ``a,b,c``, classify each token and give each a short, unique display name."""
    tokens = [t.strip() for t in spec.split(",") if t.strip()]
    if not tokens:
        raise MethodError("--methods is empty; e.g. --methods composite,reinhard,bundled")
    seen: set[str] = set()
    for token in tokens:
        if token in seen:
            raise MethodError(f"method {token!r} is listed twice")
        seen.add(token)
    return _short_names([_classify(t) for t in tokens])


# --------------------------------------------------------------------------- running


class OpenMethod:
    """A method ready to produce results: ``produce(key, composite, mask) -> uint8 image``.

    ``timed`` is False for folders of results: reading a file says nothing about the speed
    of the tool that made it. ``notes`` are lines every report of it carries (e.g. that a
    baseline's network is an approximation).
    """

    def __init__(
        self,
        spec: MethodSpec,
        produce: Callable[[str, np.ndarray, np.ndarray], np.ndarray],
        *,
        timed: bool,
        description: dict[str, Any] | None = None,
        close: Callable[[], None] = lambda: None,
        seconds_load: float = 0.0,
        notes: Sequence[str] = (),
    ) -> None:
        self.spec = spec
        self._produce = produce
        self.timed = timed
        self.description = description or {"kind": spec.kind}
        self._close = close
        self.seconds_load = seconds_load
        self.notes = list(notes)
        self.resized = 0

    @property
    def name(self) -> str:
        return self.spec.name

    def produce(self, key: str, composite: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The method's result for one item at the composite's size (uint8 (H, W, 3))."""
        out = self._produce(key, composite, mask)
        if out.shape != composite.shape:
            out = _resize_to(out, composite.shape[:2])
            self.resized += 1
        return out

    def close(self) -> None:
        self._close()


def _resize_to(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Results from other tools are often at their working size (e.g. 256x256): bring them
    to the composite's size so every metric compares like with like."""
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((hw[1], hw[0]), Image.Resampling.BICUBIC))


def _folder_outputs(
    spec: MethodSpec, composites: Path, composite_pattern: str, outputs_pattern: str
) -> dict[str, Path | None]:
    """Key -> result file in the folder (or None), by the pairing rules of ``dkt harmonize``."""
    assert spec.path is not None
    try:
        jobs = plan_folder(
            composites,
            spec.path,
            composites / _UNUSED_OUT,
            composite_pattern=composite_pattern,
            mask_pattern=outputs_pattern,
        )
    except PairingError as exc:
        raise MethodError(f"method {spec.name!r}: {exc}") from exc
    return {job.key: job.mask for job in jobs}


def _baseline(
    spec: MethodSpec, adain_weights: Path | None, device: str
) -> tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], dict[str, Any], list[str]]:
    """A baseline's function, what its description adds (an adain's weights) and its notes."""
    if spec.token not in ADAINS:
        return BASELINES[spec.token], {}, []
    variant = ADAIN_VARIANTS[spec.token]
    try:
        found = find_pretrained(variant.files, adain_weights)
        encoder, decoder = found.paths  # one path per name asked for: variant.files is a pair
        adain = MaskedAdaIN(
            encoder, decoder, device=str(resolve_device(device)), variant=variant.token
        )
    except DktError as exc:
        raise MethodError(f"method {spec.token!r}: {exc}") from exc
    notes = []
    if variant.network == DISTILLED_KIND:
        notes.append(
            f"a distilled VGG-19 approximation (cd16x, Collaborative Distillation 16x): masked "
            f"AdaIN of its {variant.depth} features, decoded by its {variant.depth} decoder; "
            "not the real VGG-19"
        )
    return adain, {**adain.describe(), "found_in": found.source}, notes


def open_method(
    spec: MethodSpec,
    *,
    composites: Path,
    composite_pattern: str = "{key}",
    outputs_pattern: str = "{key}",
    backend: str | None = None,
    device: str = "cpu",
    precision: str | None = None,
    size: int | None = None,
    adain_weights: Path | None = None,
) -> OpenMethod:
    """Make ``spec`` runnable: load its model, or index its folder of results."""
    if spec.kind == "baseline":
        fn, extra, notes = _baseline(spec, adain_weights, device)
        return OpenMethod(
            spec,
            lambda key, comp, mask: fn(comp, mask),
            timed=True,
            description={"kind": "baseline", "baseline": spec.token, **extra},
            notes=notes,
        )
    if spec.kind == "model":
        assert spec.path is not None
        start = time.perf_counter()
        try:
            engine = open_backend(spec.path, LoadOptions(device, precision), backend=backend)
        except DktError as exc:
            raise MethodError(f"method {spec.name!r}: {exc}") from exc
        seconds = time.perf_counter() - start
        harmonizer = Harmonizer(engine, size)
        return OpenMethod(
            spec,
            lambda key, comp, mask: harmonizer.harmonize(comp, mask),
            timed=True,
            description={"kind": "model", **engine.describe()},
            close=engine.close,
            seconds_load=seconds,
        )
    outputs = _folder_outputs(spec, composites, composite_pattern, outputs_pattern)
    folder = spec.path
    assert folder is not None  # _classify gives every folder method its path

    def read_output(key: str, comp: np.ndarray, mask: np.ndarray) -> np.ndarray:
        found = outputs.get(key)
        if found is None:
            stem = outputs_pattern.replace("{key}", Path(key).name)
            raise PathError(
                folder / Path(key).parent / stem,
                "no output for this composite (looked for any image suffix)",
            )
        return read_image(found)

    found = sum(p is not None for p in outputs.values())
    return OpenMethod(
        spec,
        read_output,
        timed=False,
        description={"kind": "folder", "folder": str(folder), "outputs_found": found},
    )


def open_methods(specs: Sequence[MethodSpec], **options: Any) -> list[OpenMethod]:
    """Open every method, closing those already open if a later one fails."""
    opened: list[OpenMethod] = []
    try:
        for spec in specs:
            opened.append(open_method(spec, **options))
    except BaseException:
        for method in opened:
            method.close()
        raise
    return opened
