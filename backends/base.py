"""The one interface every inference backend implements.

A backend turns a model file into something that harmonizes batches of float32 NCHW arrays.
It knows nothing of files of images, folders or the CLI: resizing, full-resolution transfer
and the final exact blend live above it in :mod:`dkt.inference.harmonizer`, shared by all.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from dkt.errors import BackendError
from dkt.limits import MIN_IMAGE_SIDE


@dataclass(frozen=True)
class BackendDescriptor:
    """What a backend is, readable without its runtime installed and without a model file.

    ``dkt doctor``, ``--backend`` help and suffix-based backend choice all need these facts
    before (or instead of) loading anything, so they live on the class, not on an instance.
    Per-file limits (an export's shape profile, an engine's fixed precision) are the loaded
    backend's business: see :attr:`Backend.min_input_hw`.

    ``devices`` are the device kinds ``--device`` takes (a GPU kind also takes ``:N``);
    ``precisions`` those a model for it can run at; ``size_multiple`` the multiple the network
    pads H and W up to; ``min_side`` the smallest side it accepts; ``dynamic_shapes`` whether
    one loaded model takes more than one input shape (for an export: within its profile);
    ``extra`` the pip extra that installs its optional runtime (``None``: it needs none).
    """

    name: str
    suffixes: tuple[str, ...]
    devices: tuple[str, ...]
    precisions: tuple[str, ...]
    size_multiple: int
    min_side: int
    dynamic_shapes: bool
    extra: str | None = None

    def __post_init__(self) -> None:
        # A bad descriptor is a programming error in the backend: fail where it is declared,
        # not later as a model file that mysteriously matches no backend.
        if not self.name or self.name.split() != [self.name]:
            raise ValueError(f"backend name {self.name!r} is empty or has spaces")
        for suffix in self.suffixes:
            if not suffix.startswith(".") or suffix != suffix.lower():
                raise ValueError(f"backend '{self.name}': suffix {suffix!r} is not '.lowercase'")
        if not self.devices or not self.precisions:
            raise ValueError(f"backend '{self.name}' declares no devices or no precisions")
        if self.size_multiple < 1 or self.min_side < 1:
            raise ValueError(f"backend '{self.name}': size_multiple and min_side must be >= 1")

    def install_hint(self, package: str = "dkt") -> str:
        """The pip command that installs this backend's runtime, or ``""`` if it needs none."""
        return f"pip install '{package}[{self.extra}]'" if self.extra else ""

    def summary(self) -> str:
        """One line for ``--backend`` help and ``dkt doctor``."""
        parts = [
            ", ".join(self.suffixes) or "no model suffix",
            "devices " + ", ".join(self.devices),
            "/".join(self.precisions),
            f"sides >= {self.min_side}, padded to x{self.size_multiple}",
        ]
        if not self.dynamic_shapes:
            parts.append("fixed input shape")
        return f"{self.name}: {'; '.join(parts)}"


@dataclass(frozen=True)
class LoadOptions:
    """How to open a model: one value for every backend, so a new option is one field here,
    not a parameter added to every ``load`` and every caller.

    ``device``: ``cpu``, ``cuda[:N]`` and whatever else the backend's descriptor lists.
    ``precision`` ``None`` means the model's own: fp32 for a checkpoint, whatever an exported
    file was built for (a backend refuses a precision its file cannot run).
    ``allow_cpu_fallback``: if the GPU asked for is not usable, run on the CPU (saying so in
    :meth:`Backend.describe` and :attr:`Backend.fallback_note`) instead of failing.
    ``threads``: CPU threads (``None``: the runtime's default).
    """

    device: str = "cpu"
    precision: str | None = None
    allow_cpu_fallback: bool = False
    threads: int | None = None


class Backend(ABC):
    """Load a model, run batches, describe itself, close.

    Subclasses set ``descriptor``; ``name`` (what ``--backend`` takes) and ``suffixes`` (model
    files it loads when ``--backend`` is not given) are copied from it, so the two can never
    disagree.
    """

    descriptor: ClassVar[BackendDescriptor]
    name: ClassVar[str]
    suffixes: ClassVar[tuple[str, ...]] = ()
    #: Set by :meth:`load` when ``allow_cpu_fallback`` made it run on the CPU instead of the
    #: device asked for: one line saying so, which the CLI prints (a silent fallback turns a
    #: one-hour GPU job into a two-day CPU one without a word).
    fallback_note: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        descriptor = cls.__dict__.get("descriptor")
        if descriptor is not None:
            cls.name = descriptor.name
            cls.suffixes = descriptor.suffixes

    @classmethod
    @abstractmethod
    def load(cls, model: Path, options: LoadOptions = LoadOptions()) -> Backend:
        """Open ``model`` as ``options`` say; raise :class:`BackendError` with a one-line reason."""

    @classmethod
    def inspect(cls, model: Path) -> dict[str, Any]:
        """What ``model`` records about itself, read without loading it into a runtime.

        For ``dkt info``: a JSON-able record with at least ``path``, ``file_size`` and
        ``sha256``. Raise :class:`BackendError` (or another one-line ``DktError``) naming the
        file when it is not this backend's kind of model.
        """
        raise BackendError(f"{model}: the {cls.name} backend cannot describe its model files")

    @abstractmethod
    def run(self, composite: np.ndarray, mask: np.ndarray, strength: float = 1.0) -> np.ndarray:
        """Harmonize a batch: (B,3,H,W) and (B,1,H,W) float32 in [0,1] -> (B,3,H,W) float32.

        The result equals ``composite`` wherever ``mask`` is 0. ``strength`` in [0, 1] is the
        style strength (:mod:`dkt.dktnet.strength`); callers pass it only when it is not 1,
        so a backend that runs at full strength only may keep a two-argument ``run``, and
        says so in :attr:`strength_refusal`.
        """

    @property
    def strength_refusal(self) -> str | None:
        """Why this loaded model runs at strength 1 only (one line), or ``None`` if it runs at
        any strength.

        A property of the model file as much as of the backend (an export made before
        strength existed has no input for it), so it is asked of the loaded backend, and
        before any image is read: a folder run must not fail on every file for it.
        """
        return f"the {self.name} backend runs at style strength 1 only"

    def check_strength(self, strength: float) -> None:
        """Raise :class:`BackendError` (:attr:`strength_refusal`) if ``strength`` is not 1 and
        this model cannot run at it."""
        reason = self.strength_refusal
        if strength != 1.0 and reason is not None:
            raise BackendError(f"strength {strength:g}: {reason}")

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """What is really running (backend, device, precision, model, versions), for logs."""

    @property
    def working_size(self) -> int | None:
        """The long side the model was trained for, if the model file records it."""
        return None

    def working_bytes(self, height: int, width: int) -> int | None:
        """Estimated peak bytes of :meth:`run` on one image of this working shape.

        The harmonizer refuses a file whose estimate exceeds the memory left (a CPU backend
        past it is killed by the kernel, taking the whole run along). ``None``: unknown,
        nothing is refused up front (a GPU runtime raises a clean out-of-memory instead).
        """
        return None

    @property
    def min_input_hw(self) -> tuple[int, int]:
        """The smallest (H, W) :meth:`run` accepts; the harmonizer pads smaller inputs up.

        The network needs 9 px a side (2 positions at stride 8 for its reflection-padded
        convolutions); an exported model may also have a shape profile with a larger minimum.
        """
        return MIN_IMAGE_SIDE, MIN_IMAGE_SIDE

    @property
    def on_cpu(self) -> bool:
        """Whether batches run on the CPU, where batching saves nothing and costs memory.

        A CPU convolution is already as efficient on one image as on several (measured: 0.24
        s per 512x384 image alone, 0.26 in fours, with four times the memory), so the
        pipeline batches only for a GPU. ``False`` unless a backend knows better.
        """
        return False

    def close(self) -> None:  # noqa: B027 - optional hook; most backends hold nothing to free
        """Release device memory and handles; the backend is unusable afterwards."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
