"""Static int8 quantization of an exported fp32 graph, calibrated on real composites.

Why this form (measured on the bundled model at 512 px, this project's 2-core CPU):

* Static QDQ with per-channel int8 Conv weights and uint8 activations, Conv only: the
  convolutions are three quarters of an fp32 ONNX Runtime run and everything else (masked
  statistics, dynamic kernels, the blend) stays float32, so the region statistics and the
  background-exact blend are exactly what they are in fp32.
* Activation ranges from the 99.99th percentile of each tensor's histogram, not its
  min/max: a few bright outliers set a min/max scale so coarse that the object moved 3.4 to
  4.8 levels (mean, 8-bit) from the fp32 result; with the percentile 1.7 to 2.9.
* The calibrator needs one shape for every sample, so each composite is fitted into one
  box, :func:`calibration_shape`: the working size, within the export's shape profile (a
  static export's own shape), edge-padded as the model pads and its mask zero-padded. That
  is what the network sees, at the scale it works at.

ONNX Runtime's own quantization tooling does the work (``onnxruntime.quantization``); it
keeps every calibration sample's intermediate tensors in memory until it has seen them all,
about 1 GB per 512 px sample for this model, hence :data:`MAX_CALIBRATION_IMAGES`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from backends.registry import require_module
from backends.shapes import STRENGTH_INPUT, STRENGTH_SHAPE, ShapeProfile, Triple
from dkt.errors import BackendError

#: Percentile of each activation's histogram that sets its int8 range.
CALIBRATION_PERCENTILE = 99.99
#: Calibration samples used at most (see the module docstring for the memory it takes).
MAX_CALIBRATION_IMAGES = 8

Sample = tuple[np.ndarray, np.ndarray]  # (3, h, w) composite and (1, h, w) mask, float32


def calibration_shape(profile: ShapeProfile, working_size: int) -> Triple:
    """(batch, height, width) every sample is fed at: the smallest batch the profile allows
    and the working size, clamped into the profile (a static profile: its one shape)."""
    (batch, min_h, min_w), (_, max_h, max_w) = profile.min, profile.max
    return batch, min(max(working_size, min_h), max_h), min(max(working_size, min_w), max_w)


def pad_sample(composite: np.ndarray, mask: np.ndarray, box: tuple[int, int]) -> Sample:
    """A (3,h,w)/(1,h,w) pair no larger than ``box`` padded to exactly ``box`` (height, width)."""
    (_, h, w), (box_h, box_w) = composite.shape, box
    if h > box_h or w > box_w:
        raise BackendError(f"calibration sample {h}x{w} does not fit in {box_h}x{box_w}")
    pad = ((0, 0), (0, box_h - h), (0, box_w - w))
    return (
        np.pad(composite, pad, mode="edge").astype(np.float32, copy=False),
        np.pad(mask, pad).astype(np.float32, copy=False),
    )


class _Feeds:
    """The calibration samples as ONNX Runtime's data reader wants them: one batch at a time
    (a sample repeated to fill a batch the profile fixes: the same ranges, the right shape).

    A graph with a strength input is calibrated at strength 1, where the features move
    furthest from the composite's; a lower strength interpolates within those ranges.
    """

    def __init__(self, samples: Sequence[Sample], batch: int, strength: bool = False) -> None:
        self._items: Iterator[Sample] = iter(samples)
        self._batch = batch
        self._extra = {STRENGTH_INPUT: np.ones(STRENGTH_SHAPE, np.float32)} if strength else {}

    def get_next(self) -> dict[str, np.ndarray] | None:
        item = next(self._items, None)
        if item is None:
            return None
        composite, mask = (np.repeat(a[None], self._batch, axis=0) for a in item)
        return {"composite": composite, "mask": mask, **self._extra}


def quantize_int8(proto: Any, samples: Sequence[Sample], shape: Triple) -> Any:
    """The fp32 graph ``proto`` with its convolutions quantized to int8, as a new ModelProto.

    ``shape`` is the graph profile's :func:`calibration_shape`; every sample has its size.
    """
    if not samples:
        raise BackendError("int8 needs calibration composites with masks; none were given")
    batch, h, w = shape
    if any(composite.shape[1:] != (h, w) for composite, _ in samples):
        raise BackendError(f"calibration samples must be {h}x{w} for this export's shapes")
    onnx = require_module("onnx", "int8 quantization")
    quantization = require_module("onnxruntime.quantization", "int8 quantization")
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="dkt-int8-") as tmp:
        source, prepared, output = (Path(tmp) / n for n in ("fp32.onnx", "pre.onnx", "q.onnx"))
        onnx.save_model(proto, str(source))
        # Shape annotations let the quantizer see every Conv's tensors; ONNX's own inference
        # is enough (the symbolic one cannot follow the pad-to-8 arithmetic).
        try:
            with _quiet():
                quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
                strength = any(i.name == STRENGTH_INPUT for i in proto.graph.input)
                feeds = _Feeds(samples[:MAX_CALIBRATION_IMAGES], batch, strength)
                _quantize(quantization, prepared, output, feeds)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise BackendError(f"int8 calibration failed: {first}") from exc
        return onnx.load_model(str(output))


def _quantize(quantization: Any, prepared: Path, output: Path, feeds: _Feeds) -> None:
    quantization.quantize_static(
        str(prepared),
        str(output),
        feeds,
        quant_format=quantization.QuantFormat.QDQ,
        op_types_to_quantize=["Conv"],
        per_channel=True,
        activation_type=quantization.QuantType.QUInt8,
        weight_type=quantization.QuantType.QInt8,
        calibrate_method=quantization.CalibrationMethod.Percentile,
        extra_options={"CalibPercentile": CALIBRATION_PERCENTILE},
    )


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """ONNX Runtime's quantizer prints its progress on stdout and warns through the root
    logger; ``dkt export --json`` owns stdout, and none of it is for a dkt user."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)
