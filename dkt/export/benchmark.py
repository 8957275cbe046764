"""Time any backend on the same synthetic batches: warm-up, many timed runs, robust statistics.

Each timed run is one ``Backend.run`` call on a (B,3,S,S) composite and its mask, host
arrays in and out, so the numbers include what a caller pays (host<->device copies on a
GPU). Reported: median, spread (10th to 90th percentile, min, max), images per second from
the median, and peak memory:

* CPU: the process's resident-set high-water mark (``VmHWM``), reset before each backend
  through ``/proc/self/clear_refs`` where Linux allows it, so each backend gets its own
  peak; where it cannot be reset (or off Linux, via ``resource.getrusage``) the number is
  the process's peak so far and the result says so.
* GPU: ``torch.cuda.max_memory_allocated`` (reset before each backend): memory that torch's
  allocator handed out, which covers the torch backend and the TensorRT backend's I/O
  buffers but not memory ONNX Runtime or TensorRT allocate themselves.
"""

from __future__ import annotations

import gc
import resource
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from backends.base import Backend
from dkt.dktnet.config import DKTNetConfig

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass
class BenchmarkResult:
    backend: str
    device: str
    precision: str
    batch: int
    size: int
    warmup: int
    runs: int
    median_ms: float
    p10_ms: float
    p90_ms: float
    min_ms: float
    max_ms: float
    images_per_s: float
    peak_memory_bytes: int | None
    memory_kind: str
    description: dict[str, Any] = field(default_factory=dict)
    #: Convolution and matmul GFLOP per image (:func:`count_gflop`), and that times images/s.
    gflop_per_image: float | None = None
    gflop_per_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def synthetic_batch(batch: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random composites with a centred elliptical object mask (soft rim)."""
    rng = np.random.default_rng(seed)
    composite = rng.random((batch, 3, size, size), dtype=np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    r = np.sqrt(((yy - 0.55) / 0.25) ** 2 + ((xx - 0.45) / 0.2) ** 2)
    mask = np.clip((1.1 - r) / 0.2, 0.0, 1.0).astype(np.float32)
    return composite, np.broadcast_to(mask, (batch, 1, size, size)).copy()


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark for this process (Linux); True if it worked."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def peak_rss_bytes() -> int:
    """VmHWM from /proc (Linux), else the peak from getrusage (KiB on Linux, bytes on macOS)."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _on_cuda(description: dict[str, Any]) -> bool:
    device = str(description.get("device", ""))
    providers = description.get("providers") or []
    on_gpu_provider = bool(providers) and providers[0] != "CPUExecutionProvider"
    return device.startswith("cuda") or description.get("backend") == "tensorrt" or on_gpu_provider


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def benchmark_backend(
    backend: Backend, *, batch: int, size: int, warmup: int = 3, runs: int = 20, seed: int = 0
) -> BenchmarkResult:
    """One backend alone: :func:`benchmark_backends` with a single entry."""
    return benchmark_backends([backend], batch=batch, size=size, warmup=warmup, runs=runs,
                              seed=seed)[0]  # fmt: skip


def benchmark_backends(
    backends: list[Backend],
    *,
    batch: int,
    size: int,
    warmup: int = 3,
    runs: int = 20,
    seed: int = 0,
    gflop_per_image: float | None = None,
) -> list[BenchmarkResult]:
    """Time several loaded backends on the same batch, taking turns run by run.

    Run back to back, another job on a core skews whichever backend happens to run then (in
    two runs under load torch's p90 was 10x its median while ORT's was not); interleaved,
    each backend sees the same conditions, so the ratios hold even when the absolute
    numbers do not. Peak memory is measured first, one backend at a time, over one run
    (on the CPU: the RSS high-water mark above what all the loaded backends already hold).
    """
    if runs < 1 or warmup < 0:
        raise ValueError("runs must be >= 1 and warmup >= 0")
    composite, mask = synthetic_batch(batch, size, seed)
    peaks = [_peak_memory(backend, composite, mask) for backend in backends]
    times = interleaved_timings(backends, batch=batch, size=size, warmup=warmup, runs=runs,
                                seed=seed)  # fmt: skip
    return [
        _result(backend, batch, size, warmup, runs, backend_times, peak, kind, gflop_per_image)
        for backend, backend_times, (peak, kind) in zip(backends, times, peaks, strict=True)
    ]


def _peak_memory(
    backend: Backend, composite: np.ndarray, mask: np.ndarray
) -> tuple[int | None, str]:
    """(peak bytes, what the number is) over one run of ``backend``."""
    torch_cuda = None
    if _on_cuda(backend.describe()):
        import torch

        torch_cuda = torch.cuda if torch.cuda.is_available() else None
    gc.collect()
    if torch_cuda is not None:
        torch_cuda.synchronize()
        torch_cuda.reset_peak_memory_stats()
        backend.run(composite, mask)
        return int(torch_cuda.max_memory_allocated()), "cuda max_memory_allocated (torch allocator)"
    kind = (
        "peak RSS (VmHWM, reset before this backend's run)"
        if reset_peak_rss()
        else "peak RSS of the process so far (could not reset)"
    )
    backend.run(composite, mask)
    return peak_rss_bytes(), kind


def _result(
    backend: Backend,
    batch: int,
    size: int,
    warmup: int,
    runs: int,
    times: list[float],
    peak: int | None,
    memory_kind: str,
    gflop_per_image: float | None,
) -> BenchmarkResult:
    description = backend.describe()
    median = statistics.median(times)
    images_per_s = batch * 1000.0 / median
    return BenchmarkResult(
        backend=str(description.get("backend", backend.name)),
        device=str(description.get("device", "?")),
        precision=str(description.get("precision", "?")),
        batch=batch,
        size=size,
        warmup=warmup,
        runs=runs,
        median_ms=median,
        p10_ms=percentile(times, 10),
        p90_ms=percentile(times, 90),
        min_ms=min(times),
        max_ms=max(times),
        images_per_s=images_per_s,
        peak_memory_bytes=peak,
        memory_kind=memory_kind,
        description=description,
        gflop_per_image=gflop_per_image,
        gflop_per_s=None if gflop_per_image is None else gflop_per_image * images_per_s,
    )


def count_gflop(config: DKTNetConfig, height: int, width: int | None = None) -> float:
    """GFLOP of one image through the model, counted on shapes alone (meta tensors).

    Convolutions and matrix products, a multiply-add counted as 2 FLOPs (torch's
    ``FlopCounterMode``), so elementwise work is left out: the number to set beside a
    machine's FMA peak. Counting needs no weights and no time, even at 2048 px.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from dkt.dktnet.model import DKTNet

    width = height if width is None else width
    with torch.device("meta"):
        model = DKTNet(config).eval()
        composite = torch.zeros(1, 3, height, width)
        mask = torch.zeros(1, 1, height, width)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(composite, mask)
    return counter.get_total_flops() / 1e9


def model_config(path: Path) -> DKTNetConfig | None:
    """The model config a checkpoint or a dkt export records; ``None`` if it records none."""
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from dkt.dktnet.checkpoint import read_checkpoint_info

        return read_checkpoint_info(path).config
    if suffix == ".onnx":
        from backends.onnx_metadata import read_metadata

        recorded = read_metadata(path).get("config")
        return DKTNetConfig.from_dict(recorded) if recorded else None
    return None


def model_for_backend(
    backend: str,
    models: list[Path],
    workdir: Path,
    *,
    precision: str,
    batch: int,
    size: int,
    device: str = "cuda",
) -> tuple[Path, str | None]:
    """The model file ``backend`` loads: one of ``models`` with its suffix, else one exported
    from the ``.safetensors`` among them into ``workdir``. Returns (path, note)."""
    from backends.registry import get
    from backends.shapes import ShapeProfile
    from dkt.errors import BackendError

    suffixes = get(backend).descriptor.suffixes
    for model in models:
        if model.suffix.lower() in suffixes:
            return model, None
    checkpoints = [m for m in models if m.suffix.lower() == ".safetensors"]
    if not checkpoints or backend not in ("onnxruntime", "tensorrt"):
        raise BackendError(
            f"no model for backend '{backend}': pass --model with a {'/'.join(suffixes)} file"
        )
    profile = ShapeProfile.static((batch, size, size))
    export_precision = "fp16" if precision in ("fp16", "bf16") else "fp32"
    if backend == "onnxruntime":
        from dkt.export.onnx import export_onnx

        out = workdir / f"{checkpoints[0].stem}-{export_precision}.onnx"
        if not out.exists():
            export_onnx(checkpoints[0], out, profile=profile, precision=export_precision)
    else:
        from backends.tensorrt_backend import cuda_index
        from dkt.export.tensorrt import export_engine

        out = workdir / f"{checkpoints[0].stem}-{export_precision}.engine"
        if not out.exists():
            export_engine(
                checkpoints[0],
                out,
                profile=profile,
                precision=export_precision,
                device_index=cuda_index(device),
            )
    return out, f"{backend}: exported {checkpoints[0].name} -> {out.name} ({profile.describe()})"


def interleaved_timings(
    backends: list[Backend],
    *,
    batch: int,
    size: int,
    warmup: int = 2,
    runs: int = 10,
    seed: int = 0,
) -> list[list[float]]:
    """Per-backend run times in ms, taking turns run by run.

    On a machine shared with other work, load changes over seconds; alternating the
    backends exposes them to the same conditions, which a back-to-back comparison does not.
    """
    composite, mask = synthetic_batch(batch, size, seed)
    for _ in range(warmup):
        for backend in backends:
            backend.run(composite, mask)
    times: list[list[float]] = [[] for _ in backends]
    for _ in range(runs):
        for index, backend in enumerate(backends):
            start = time.perf_counter()
            backend.run(composite, mask)
            times[index].append((time.perf_counter() - start) * 1000.0)
    return times
