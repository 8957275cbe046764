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

from dkt.backends.base import Backend

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
    if runs < 1 or warmup < 0:
        raise ValueError("runs must be >= 1 and warmup >= 0")
    description = backend.describe()
    composite, mask = synthetic_batch(batch, size, seed)
    cuda = _on_cuda(description)
    torch_cuda = None
    if cuda:
        import torch

        torch_cuda = torch.cuda if torch.cuda.is_available() else None
    gc.collect()
    if torch_cuda is not None:
        torch_cuda.synchronize()
        torch_cuda.reset_peak_memory_stats()
        memory_kind = "cuda max_memory_allocated (torch allocator)"
    else:
        memory_kind = (
            "peak RSS (VmHWM, reset per backend)"
            if reset_peak_rss()
            else ("peak RSS of the process so far (could not reset)")
        )
    for _ in range(warmup):
        backend.run(composite, mask)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        backend.run(composite, mask)
        times.append((time.perf_counter() - start) * 1000.0)
    if torch_cuda is not None:
        peak: int | None = int(torch_cuda.max_memory_allocated())
    else:
        peak = peak_rss_bytes()
    median = statistics.median(times)
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
        images_per_s=batch * 1000.0 / median,
        peak_memory_bytes=peak,
        memory_kind=memory_kind,
        description=description,
    )


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
    from dkt.backends.base import BackendError
    from dkt.backends.registry import get
    from dkt.backends.shapes import ShapeProfile

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
        from dkt.backends.export_onnx import export_onnx

        out = workdir / f"{checkpoints[0].stem}-{export_precision}.onnx"
        if not out.exists():
            export_onnx(checkpoints[0], out, profile=profile, precision=export_precision)
    else:
        from dkt.backends.tensorrt_backend import cuda_index
        from dkt.backends.trt_build import export_engine

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
