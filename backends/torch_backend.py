"""Eager PyTorch backend: runs a ``.safetensors`` DKTNet checkpoint directly."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from backends.allocator import keep_freed_memory
from backends.base import Backend, BackendDescriptor, LoadOptions
from dkt.dktnet.checkpoint import file_sha256, load_checkpoint, read_checkpoint_info
from dkt.dktnet.model import MULTIPLE, DKTNet
from dkt.dktnet.strength import DEFAULT_STRENGTH, check_strength
from dkt.errors import BackendError
from dkt.limits import MIN_IMAGE_SIDE

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(device: str) -> torch.device:
    """A torch device (``auto``: the GPU if there is one), refusing one that is not there."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise BackendError(f"invalid device '{device}' (use cpu, cuda, cuda:N or mps)") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BackendError(f"device '{device}' asked for, but this torch sees no CUDA GPU")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise BackendError(f"device '{device}' asked for, but this torch sees {count} CUDA GPU(s)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise BackendError(f"device '{device}' asked for, but MPS is not available")
    return dev


class TorchBackend(Backend):
    descriptor: ClassVar[BackendDescriptor] = BackendDescriptor(
        name="torch",
        suffixes=(".safetensors",),
        devices=("auto", "cpu", "cuda", "mps"),
        precisions=tuple(PRECISIONS),
        size_multiple=MULTIPLE,
        min_side=MIN_IMAGE_SIDE,
        dynamic_shapes=True,
    )

    def __init__(self, model: DKTNet, path: Path, device: torch.device, dtype: torch.dtype) -> None:
        self.model = model
        self.path = path
        self.device = device
        self.dtype = dtype
        self.requested_device = str(device)

    @classmethod
    def load(cls, model: Path, options: LoadOptions = LoadOptions()) -> TorchBackend:
        device, precision = options.device, options.precision or "fp32"
        if precision not in PRECISIONS:
            raise BackendError(f"unknown precision '{precision}' (use {', '.join(PRECISIONS)})")
        note = None
        try:
            dev = resolve_device(device)
        except BackendError as exc:
            if not (options.allow_cpu_fallback and device.partition(":")[0] in ("cuda", "mps")):
                raise
            dev, precision = torch.device("cpu"), "fp32"
            note = f"{exc}; falling back to the CPU in fp32 (--allow-cpu-fallback)"
        dtype = PRECISIONS[precision]
        if options.threads:
            torch.set_num_threads(options.threads)
        if dev.type == "cpu" and dtype != torch.float32:
            raise BackendError(f"precision {precision} is for GPUs; on the CPU use fp32")
        if dev.type == "cpu":
            keep_freed_memory()  # else every forward pass page-faults its feature maps anew
        network = load_checkpoint(model, device=dev).to(dtype)
        backend = cls(network, Path(model), dev, dtype)
        backend.requested_device = device
        backend.fallback_note = note
        return backend

    @classmethod
    def inspect(cls, model: Path) -> dict[str, Any]:
        """The checkpoint's header: config, parameter count, provenance (no tensor is read)."""
        details = read_checkpoint_info(model)
        return {
            "path": str(details.path),
            "format_version": details.format_version,
            "parameters": details.parameter_count,
            "tensors": details.tensor_count,
            "file_size": details.file_size,
            "sha256": details.sha256,
            "config": details.config.to_dict(),
            "provenance": details.provenance,
        }

    @property
    def working_size(self) -> int | None:
        return self.model.config.working_size

    def working_bytes(self, height: int, width: int) -> int | None:
        fp32 = self.model.working_bytes(height, width)
        return fp32 * torch.finfo(self.dtype).bits // 32

    @property
    def on_cpu(self) -> bool:
        return self.device.type == "cpu"

    @property
    def strength_refusal(self) -> str | None:
        return None  # the eager model takes any strength

    @torch.inference_mode()
    def run(self, composite: np.ndarray, mask: np.ndarray, strength: float = 1.0) -> np.ndarray:
        c = torch.from_numpy(np.ascontiguousarray(composite)).to(self.device, self.dtype)
        m = torch.from_numpy(np.ascontiguousarray(mask)).to(self.device, self.dtype)
        out = self.model(c, m, self._strength(strength))
        return out.float().cpu().numpy()

    def _strength(self, strength: float) -> torch.Tensor | None:
        """The network's strength input: float32 of shape [1]; ``None`` at full strength,
        which runs the network exactly as before strength existed (no extra operation)."""
        strength = check_strength(strength)
        if strength == DEFAULT_STRENGTH:
            return None
        return torch.tensor([strength], dtype=torch.float32, device=self.device)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "device": str(self.device),
            "device_requested": self.requested_device,
            "precision": {v: k for k, v in PRECISIONS.items()}[self.dtype],
            "model": str(self.path),
            "model_sha256": file_sha256(self.path),
            "encoder": self.model.config.encoder,
            "parameters": self.model.parameter_count(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        }

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
