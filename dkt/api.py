"""The Python API: harmonize composites, whole folders and pasted cut-outs from code.

It goes through the same front door as the command line and the server
(:mod:`dkt.inference.run`: a model is opened, a folder planned, checked and run by the same
verbs), so a result from Python is the result ``dkt harmonize`` writes, and its errors are
the same typed, one-line errors.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from backends.base import Backend, LoadOptions
from dkt import dktnet
from dkt.dktnet.strength import DEFAULT_STRENGTH, check_strength
from dkt.errors import InputError
from dkt.inference import harmonizer as engine
from dkt.inference import run as front
from dkt.inference.jobs import Existing, RunSummary
from dkt.inference.options import check_batch, check_size, check_upsample, check_workers
from dkt.inference.pairing import Job
from dkt.inference.paste import paste as paste_arrays
from dkt.inference.paste import read_cutout
from dkt.inputs import ImageLike, check_not_empty, convert_image, convert_mask
from dkt.limits import DEFAULT_MAX_INFLIGHT_MB, DEFAULT_MAX_PIXELS

#: ``progress(done, total)``: called after each file of :meth:`Harmonizer.harmonize_folder`.
Progress = Callable[[int, int], None]


class Harmonizer:
    """A loaded model that harmonizes composites: call it on an image and its mask.

    ``model``: a ``.safetensors`` checkpoint, an ``.onnx`` export or a TensorRT ``.engine``
    (the backend follows the suffix unless ``backend`` names one); ``None`` is the bundled
    model. ``device``: ``"auto"`` (a GPU when there is one), ``"cpu"``, ``"cuda[:N]"``.
    ``size`` is the working resolution's long side (``None``: the model's, 0: the image's
    own, else at least 8). A bad ``size`` or ``upsample`` (here or in a call), ``workers``
    or ``batch`` raises :class:`dkt.OptionError` (a ``ValueError``), in the words the
    command line and the server use. ``strength`` is the style strength from 0 (the
    composite as pasted) to 1 (full harmonization, the default); a call may override it.
    A number outside [0, 1] raises
    :class:`dkt.StrengthError` (a ``ValueError``); a model that runs at strength 1 only (an
    ONNX export or engine made before strength existed) raises a ``DktError`` saying to
    re-export it. The model stays loaded until :meth:`close` (or the end of a ``with`` block).

    >>> import dkt
    >>> h = dkt.Harmonizer()                           # doctest: +SKIP
    >>> result = h("composite.jpg", "mask.png")        # doctest: +SKIP
    >>> subtle = h("composite.jpg", "mask.png", strength=0.5)   # doctest: +SKIP
    """

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        backend: str | None = None,
        device: str = "auto",
        precision: str | None = None,
        *,
        size: int | None = None,
        upsample: str = "guided",
        threads: int | None = None,
        allow_cpu_fallback: bool = False,
        strength: float = DEFAULT_STRENGTH,
    ) -> None:
        path = Path(model) if model is not None else dktnet.BUNDLED_MODEL
        # Before the model loads, not after.
        size, upsample = check_size(size), check_upsample(upsample)
        strength = check_strength(strength)
        load = LoadOptions(device, precision, allow_cpu_fallback, threads)
        # The command line's and the server's way in: one place opens a model.
        self._opened = front.open_harmonizer(path, load, size, upsample, strength,
                                             backend=backend)  # fmt: skip
        self.backend: Backend = self._opened.backend
        self.model = path
        self.size, self.upsample, self.threads = size, upsample, threads
        self.strength = strength

    def __call__(
        self,
        image: ImageLike | Sequence[ImageLike],
        mask: ImageLike | Sequence[ImageLike] | None = None,
        *,
        size: int | None = None,
        upsample: str | None = None,
        strength: float | None = None,
    ) -> Any:
        """Harmonize ``image`` inside ``mask``; the result is the same kind as ``image``.

        ``image`` and ``mask`` may each be a path, a PIL image, a numpy array (uint8,
        uint16 or float in [0, 1], (H, W, 3)) or a torch tensor ((3, H, W)); a path gives
        a numpy array back. ``mask=None`` takes the mask from the image's alpha channel. A
        list of images (with a list of masks) gives a list of results, as does a batched
        (B, 3, H, W) tensor a batched tensor. Outside the mask the result is the input.
        ``size``, ``upsample`` and ``strength`` override the harmonizer's own for this call
        (at ``strength=0`` the result is the input, byte for byte).

        >>> out = h(np.asarray(composite), mask_array)    # doctest: +SKIP
        >>> out.shape, out.dtype                           # doctest: +SKIP
        ((480, 640, 3), dtype('uint8'))
        """
        strength = self.strength if strength is None else check_strength(strength)
        size = self.size if size is None else check_size(size)
        upsample = self.upsample if upsample is None else check_upsample(upsample)
        if _is_batch(image):
            return self._batch(image, mask, size, upsample, strength)
        return self._one(image, mask, size, upsample, strength)

    def _one(
        self, image: ImageLike, mask: ImageLike | None, size, upsample, strength: float
    ) -> Any:
        converted = convert_image(image, want_alpha=mask is None)
        hw = converted.image.shape[:2]
        weights = converted.wanted_alpha() if mask is None else convert_mask(mask, hw)
        check_not_empty(weights, image if mask is None else mask)
        runner = engine.Harmonizer(self.backend, size, upsample, strength)
        return converted.restore(runner.harmonize(converted.image, weights), weights)

    def _batch(self, images, masks, size, upsample, strength: float) -> Any:
        masks = _batch_masks(masks, len(images))
        if len(masks) != len(images):
            raise InputError(f"{len(images)} images but {len(masks)} masks")
        results = [
            self._one(i, m, size, upsample, strength) for i, m in zip(images, masks, strict=True)
        ]
        if hasattr(images, "detach"):  # a (B, 3, H, W) tensor gives a (B, 3, H, W) tensor
            import torch

            return torch.stack(results)
        return results

    def harmonize_folder(
        self,
        composites: str | os.PathLike,
        masks: str | os.PathLike,
        out: str | os.PathLike,
        *,
        composite_pattern: str = "{key}",
        mask_pattern: str = "{key}",
        out_pattern: str = "{key}",
        out_suffix: str = ".png",
        existing: str = "fail",
        workers: int = 2,
        batch: int | None = None,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        max_inflight_mb: int | None = DEFAULT_MAX_INFLIGHT_MB,
        progress: Progress | None = None,
    ) -> RunSummary:
        """Harmonize every composite of a folder tree, as ``dkt harmonize --composites``.

        The same streaming pipeline as the command line: images are read, run and written
        on overlapping threads, a bad file fails alone (see ``summary.failures``) and every
        output is written atomically. ``existing``: ``"fail"``, ``"skip"`` or
        ``"overwrite"`` for outputs that are already there.

        >>> summary = h.harmonize_folder("comps", "masks", "out",        # doctest: +SKIP
        ...                              progress=lambda done, total: print(done, total))
        >>> summary.done, summary.failed                                 # doctest: +SKIP
        (40, 0)
        """
        policy = {"fail": Existing.FAIL, "skip": Existing.SKIP, "overwrite": Existing.OVERWRITE}
        workers, batch = check_workers(workers), check_batch(batch)
        if existing not in policy:
            raise InputError(f"existing must be one of {', '.join(policy)}, got {existing!r}")
        options = front.RunOptions(policy[existing], workers, batch, max_pixels, max_inflight_mb)
        inputs = front.Inputs(composites=Path(composites), masks=Path(masks), out=Path(out),
                              composite_pattern=composite_pattern, mask_pattern=mask_pattern,
                              out_pattern=out_pattern, out_suffix=out_suffix)  # fmt: skip
        planned = front.plan(inputs, max_pixels=max_pixels)
        front.check_outputs(planned)
        done = [0]

        def on_done(job: Job) -> None:
            done[0] += 1
            if progress is not None:
                progress(done[0], len(planned.jobs))

        summary = front.run(planned, self._opened, options, on_done)
        summary.notes[:0] = planned.notes  # folders skipped: the command line says so too
        return summary

    def describe(self) -> dict[str, Any]:
        """What is really running: backend, device, precision, model, library versions.

        >>> h.describe()["backend"]                    # doctest: +SKIP
        'torch'
        """
        return self.backend.describe()

    def close(self) -> None:
        """Free the model (GPU memory, runtime sessions); the object is unusable after.

        >>> with dkt.Harmonizer() as h:                # doctest: +SKIP
        ...     result = h("composite.jpg", "mask.png")
        """
        self.backend.close()

    def __enter__(self) -> Harmonizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        extra = "" if self.strength == DEFAULT_STRENGTH else f", strength={self.strength:g}"
        return f"dkt.Harmonizer(model={str(self.model)!r}, backend={self.backend.name!r}{extra})"


def _batch_masks(masks: Any, count: int) -> list[Any]:
    """One mask per image of a batch. A single (H, W) mask (an array or tensor of two
    dimensions) goes with every image: read as a sequence it was H masks of one row."""
    if masks is None:
        return [None] * count
    if getattr(masks, "ndim", None) == 2:
        return [masks] * count
    return list(masks)


def _is_batch(value: object) -> bool:
    if isinstance(value, (list, tuple)):
        return True
    return hasattr(value, "detach") and getattr(value, "ndim", 0) == 4


def paste(
    painting: ImageLike,
    cutout: ImageLike,
    at: tuple[int, int] | None = None,
    scale: float = 1.0,
) -> tuple[Any, Any]:
    """Paste a cut-out (an image with transparency) on a painting: ``(composite, mask)``.

    ``at`` is where the scaled cut-out's top-left corner goes, in painting pixels (``None``:
    centred); ``scale`` resizes the cut-out first. The cut-out's alpha is the mask. For a
    PIL painting both come back as PIL images (RGB, L); otherwise as numpy arrays (uint8
    (H, W, 3) and float32 (H, W)), so ``h(*dkt.paste(...))`` works for either.

    >>> import numpy as np, dkt
    >>> painting = np.zeros((40, 60, 3), np.uint8)
    >>> cutout = np.full((10, 20, 4), 255, np.uint8)
    >>> composite, mask = dkt.paste(painting, cutout)
    >>> composite.shape, float(mask.sum())
    ((40, 60, 3), 200.0)
    """
    background = convert_image(painting, want_alpha=False).image
    if background.dtype != np.uint8:
        background = engine.to_8bit(background)
    composite, mask = paste_arrays(background, _cutout_array(cutout), at, scale)
    if isinstance(painting, Image.Image):
        return Image.fromarray(composite, "RGB"), Image.fromarray(
            np.round(mask * 255).astype(np.uint8), "L"
        )
    return composite, mask


def _cutout_array(cutout: ImageLike) -> np.ndarray:
    if isinstance(cutout, (str, os.PathLike)):
        return read_cutout(Path(cutout))
    converted = convert_image(cutout, want_alpha=True)
    rgb = converted.image if converted.image.dtype == np.uint8 else engine.to_8bit(converted.image)
    alpha = np.round(converted.wanted_alpha() * 255).astype(np.uint8)
    return np.dstack([rgb, alpha])
