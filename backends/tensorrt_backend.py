"""TensorRT backend: runs a ``.engine``/``.plan`` file built by ``dkt export --format trt``.

I/O goes through torch CUDA tensors (no pycuda): the backend keeps one device buffer per
tensor, hands their addresses to TensorRT by tensor name (``set_tensor_address``) and runs
with ``execute_async_v3`` on a torch CUDA stream. When a batch of a new shape arrives it
re-binds: ``set_input_shape`` for both inputs, new buffers, the output's shape read back
from the context. A shape outside the engine's optimization profile is refused before
TensorRT sees it, with the profile in the message.

Loading first reads the sidecar JSON (:mod:`backends.engine_sidecar`) and refuses an engine
built by another TensorRT release or for another GPU, then deserializes it and warms it up
at the profile's opt shape so the first real batch does not pay for lazy initialisation.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from backends.base import Backend, BackendDescriptor, LoadOptions
from backends.engine_sidecar import EngineMetadata, check_compatible, read_sidecar
from backends.onnx_metadata import EXPORT_PRECISIONS
from backends.registry import require_module
from backends.shapes import CHANNELS, INPUT_NAMES, OUTPUT_NAMES, STRENGTH_INPUT, format_shape
from dkt.dktnet.checkpoint import file_sha256
from dkt.dktnet.model import MULTIPLE
from dkt.errors import BackendError, ShapeError
from dkt.limits import MIN_IMAGE_SIDE

MIN_TENSORRT_MAJOR = 10
WARMUP_RUNS = 2


def import_tensorrt() -> Any:
    """The ``tensorrt`` module, version 10 or newer, or a one-line error with the fix."""
    trt = require_module("tensorrt", "the tensorrt backend")
    if tensorrt_major(trt) < MIN_TENSORRT_MAJOR:
        raise BackendError(
            f"TensorRT {trt.__version__} is too old: dkt needs TensorRT "
            f"{MIN_TENSORRT_MAJOR} or newer (pip install 'dkt[trt]')"
        )
    return trt


def tensorrt_major(trt: Any) -> int:
    return int(str(trt.__version__).split(".")[0])


def cuda_index(device: str) -> int:
    """The GPU index for ``auto``, ``cuda`` or ``cuda:N``; TensorRT has no CPU fallback."""
    if device in ("auto", "cuda"):
        return 0
    kind, _, index = device.partition(":")
    if kind == "cuda" and index.isdigit():
        return int(index)
    if kind == "cpu":
        raise BackendError(
            "TensorRT engines run on NVIDIA GPUs only; on the CPU run the ONNX export "
            "(dkt export MODEL --format onnx) with the onnxruntime backend"
        )
    raise BackendError(f"invalid device '{device}' for TensorRT (use cuda or cuda:N)")


def gpu_identity(index: int) -> tuple[str, str]:
    """(name, compute capability 'major.minor') of a CUDA GPU, as torch sees it."""
    major, minor = torch.cuda.get_device_capability(index)
    return torch.cuda.get_device_name(index), f"{major}.{minor}"


def torch_dtype(trt: Any, trt_type: Any) -> torch.dtype:
    table = {trt.float32: torch.float32, trt.float16: torch.float16}
    if hasattr(trt, "bfloat16"):
        table[trt.bfloat16] = torch.bfloat16
    if trt_type not in table:
        raise BackendError(f"engine I/O type {trt_type} is not supported (float32/16 only)")
    return table[trt_type]


#: What :meth:`TensorRTBackend.load` opens an engine with when given no options.
_ON_CUDA = LoadOptions(device="cuda")


class TensorRTBackend(Backend):
    descriptor: ClassVar[BackendDescriptor] = BackendDescriptor(
        name="tensorrt",
        suffixes=(".engine", ".plan"),
        devices=("auto", "cuda"),  # no CPU: cuda_index refuses it with the ONNX way out
        precisions=tuple(EXPORT_PRECISIONS),  # engines are built from the ONNX export
        size_multiple=MULTIPLE,
        min_side=MIN_IMAGE_SIDE,
        dynamic_shapes=True,  # re-binds per shape within the engine's optimization profile
        extra="trt",
    )

    def __init__(
        self,
        trt: Any,
        engine: Any,
        context: Any,
        metadata: EngineMetadata,
        path: Path,
        device: torch.device,
        stream: Any = None,
    ) -> None:
        self.trt = trt
        self.engine = engine
        self.context = context
        self.metadata = metadata
        self.profile = metadata.profile
        self.path = path
        self.device = device
        self.stream = stream
        self.buffers: dict[str, torch.Tensor] = {}
        self.bound_shape: tuple[int, ...] | None = None
        self.rebinds = 0
        #: The TensorRT runtime :meth:`load` deserialized the engine with; kept here
        #: because the engine must not outlive it.
        self._runtime: Any = None
        self._check_io()

    def _check_io(self) -> None:
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        #: Whether the engine takes a strength (built from an export that has the input).
        self.has_strength = STRENGTH_INPUT in names
        inputs = (*INPUT_NAMES, STRENGTH_INPUT) if self.has_strength else INPUT_NAMES
        if sorted(names) != sorted((*inputs, *OUTPUT_NAMES)):
            raise BackendError(
                f"{self.path}: engine I/O {names} is not dkt's "
                f"{[*INPUT_NAMES, *OUTPUT_NAMES]} (+ '{STRENGTH_INPUT}'); re-export it with "
                "dkt export"
            )
        if self.has_strength and (
            self.engine.get_tensor_mode(STRENGTH_INPUT) != self.trt.TensorIOMode.INPUT
        ):
            raise BackendError(f"{self.path}: engine tensor '{STRENGTH_INPUT}' is not an input")
        for name in INPUT_NAMES:
            if self.engine.get_tensor_mode(name) != self.trt.TensorIOMode.INPUT:
                raise BackendError(f"{self.path}: engine tensor '{name}' is not an input")
            low, _, high = (tuple(s) for s in self.engine.get_tensor_profile_shape(name, 0))
            expected = self.profile.tensor_shapes(name)
            if (low, high) != (tuple(expected[0]), tuple(expected[2])):
                raise BackendError(
                    f"{self.path}: the engine's profile for '{name}' ({low} to {high}) does "
                    f"not match its metadata file ({self.profile.describe()}); re-export it"
                )

    @classmethod
    def load(cls, model: Path, options: LoadOptions = _ON_CUDA) -> TensorRTBackend:
        """``options.threads`` and ``allow_cpu_fallback`` do not apply: an engine runs on the
        GPU it was built for or not at all."""
        model, precision = Path(model), options.precision
        index = cuda_index(options.device)
        if not model.is_file():
            raise BackendError(f"{model}: no such file")
        metadata = read_sidecar(model)
        if precision is not None and precision != metadata.precision:
            raise BackendError(
                f"{model}: built for {metadata.precision}; an engine's precision is fixed "
                f"(drop --precision, or re-export with --precision {precision})"
            )
        trt = import_tensorrt()
        if not torch.cuda.is_available():
            raise BackendError(
                "the tensorrt backend needs a CUDA GPU visible to torch (its I/O buffers are "
                "torch CUDA tensors), and this torch sees none"
            )
        name, capability = gpu_identity(index)
        check_compatible(
            metadata,
            model,
            tensorrt_version=trt.__version__,
            gpu_name=name,
            compute_capability=capability,
        )
        dev = torch.device("cuda", index)
        with torch.cuda.device(dev):
            logger = trt.Logger(trt.Logger.WARNING)
            runtime = trt.Runtime(logger)
            engine = runtime.deserialize_cuda_engine(model.read_bytes())
            if engine is None:
                raise BackendError(
                    f"{model}: TensorRT {trt.__version__} could not deserialize the engine; "
                    "re-export it on this machine"
                )
            context = engine.create_execution_context()
            stream = torch.cuda.Stream(device=dev)
        backend = cls(trt, engine, context, metadata, model, dev, stream)
        backend._runtime = runtime  # the engine must not outlive its runtime
        backend.warm_up()
        return backend

    @classmethod
    def inspect(cls, model: Path) -> dict[str, Any]:
        """The engine's JSON sidecar (``model.engine.json``); TensorRT is not needed."""
        model = Path(model)
        if not model.is_file():
            raise BackendError(f"{model}: no such file")
        return {
            "path": str(model),
            "format": "TensorRT engine",
            "file_size": model.stat().st_size,
            "sha256": file_sha256(model),
            "engine": read_sidecar(model).to_dict(),
        }

    @property
    def min_input_hw(self) -> tuple[int, int]:
        return self.profile.min_hw

    @property
    def working_size(self) -> int | None:
        return self.metadata.working_size

    def _scope(self) -> contextlib.AbstractContextManager:
        if self.device.type != "cuda":
            return contextlib.nullcontext()
        return torch.cuda.device(self.device)

    def _bind(self, batch: int, height: int, width: int) -> None:
        """Set the input shapes and (re)allocate every buffer for them."""
        self.buffers.clear()
        for name in INPUT_NAMES:  # the strength's shape is fixed in the engine
            shape = (batch, CHANNELS[name], height, width)
            if not self.context.set_input_shape(name, shape):
                raise ShapeError(f"TensorRT refused shape {shape} for '{name}'")
        strength = (STRENGTH_INPUT,) if self.has_strength else ()
        for name in (*INPUT_NAMES, *strength, *OUTPUT_NAMES):
            shape = tuple(self.context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise BackendError(f"TensorRT could not infer the shape of '{name}': {shape}")
            dtype = torch_dtype(self.trt, self.engine.get_tensor_dtype(name))
            buffer = torch.empty(shape, dtype=dtype, device=self.device)
            self.context.set_tensor_address(name, buffer.data_ptr())
            self.buffers[name] = buffer
        self.bound_shape = (batch, height, width)
        self.rebinds += 1

    @property
    def strength_refusal(self) -> str | None:
        if self.has_strength:
            return None
        return (
            f"{self.path.name} was built from an ONNX export without a strength input (by an "
            "older dkt), so it runs at strength 1 only; re-export it with dkt export --format "
            "trt to choose a strength"
        )

    def run_tensors(
        self, composite: torch.Tensor, mask: torch.Tensor, strength: float = 1.0
    ) -> torch.Tensor:
        """Run on tensors (any device); returns the output buffer on the GPU (reused)."""
        self.check_strength(strength)
        batch, _, height, width = composite.shape
        self.profile.check(
            tuple(composite.shape),
            f"the engine was built for {self.profile.describe()}: re-export with a larger "
            "--max-shape, or pass a smaller --size",
        )
        if tuple(mask.shape) != (batch, 1, height, width):
            raise ShapeError(
                f"mask {format_shape(tuple(mask.shape[:1]) + tuple(mask.shape[2:]), 1)} "
                f"does not match composite {format_shape((batch, height, width))}"
            )
        with self._scope():
            if self.bound_shape != (batch, height, width):
                self._bind(batch, height, width)
            stream_scope = (
                torch.cuda.stream(self.stream)
                if self.stream is not None
                else contextlib.nullcontext()
            )
            with stream_scope:
                self.buffers["composite"].copy_(composite, non_blocking=True)
                self.buffers["mask"].copy_(mask, non_blocking=True)
                if self.has_strength:
                    self.buffers[STRENGTH_INPUT].fill_(strength)
                handle = self.stream.cuda_stream if self.stream is not None else 0
                if not self.context.execute_async_v3(handle):
                    raise BackendError(f"{self.path}: TensorRT execution failed")
            if self.stream is not None:
                self.stream.synchronize()
        return self.buffers[OUTPUT_NAMES[0]]

    def run(self, composite: np.ndarray, mask: np.ndarray, strength: float = 1.0) -> np.ndarray:
        out = self.run_tensors(
            torch.from_numpy(np.ascontiguousarray(composite, dtype=np.float32)),
            torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32)),
            strength,
        )
        return out.float().cpu().numpy()

    def warm_up(self, runs: int = WARMUP_RUNS) -> None:
        batch, height, width = self.profile.opt
        composite = torch.rand(batch, 3, height, width)
        mask = torch.zeros(batch, 1, height, width)
        mask[..., height // 4 : -(height // 4) or None, width // 4 : -(width // 4) or None] = 1.0
        for _ in range(runs):
            self.run_tensors(composite, mask)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "device": str(self.device),
            "gpu": self.metadata.gpu_name,
            "compute_capability": self.metadata.compute_capability,
            "tensorrt": str(self.trt.__version__),
            "precision": self.metadata.precision,
            "profile": self.profile.describe(),
            "strength_input": self.has_strength,
            "bound_shape": list(self.bound_shape) if self.bound_shape else None,
            "model": str(self.path),
            "model_sha256": file_sha256(self.path),
            "source_sha256": self.metadata.source_sha256,
        }

    def close(self) -> None:
        self.buffers = {}
        self.context = None
        self.engine = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
