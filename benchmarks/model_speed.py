"""Inference speed of dkt models against PHDNet's generator, timed in one run, side by side.

    PYTHONPATH=. python benchmarks/model_speed.py [MODEL.safetensors ...] [--size 512]
        [--repeats 5] [--warmup 1] [--threads 1,2] [--target 5] [--json out.json]

The models: (a) :mod:`benchmarks.phdnet_standin`, a seeded random-weight, layer-for-layer
stand-in of PHDNet's dual-domain generator (82,999,249 parameters, the released
configuration; weights do not change the work done), and (b) each dkt model file given on
the command line (default: the bundled model, ``dktnet.BUNDLED_MODEL``), loaded with
``dktnet.checkpoint.load_checkpoint``. Every model gets the same synthetic composite (B=1,
3 x size x size in [0, 1]) and soft elliptical mask, under ``torch.inference_mode()``.

For each torch thread count: a warm-up of ``--warmup`` passes per model, then ``--repeats``
rounds, each running every model once (round-robin, the starting model rotating from round
to round) so that noise from other processes hits every model alike. Reported per model:
parameters, GFLOP per image (``torch.utils.flop_counter.FlopCounterMode``: a multiply-add
is 2 FLOPs; convolutions and matrix products only, so elementwise work and the stand-in's
FFTs are not in it), the file size on disk, and per thread count the median seconds per
image, min-max, and the speed-up over PHDNet (PHDNet median / model median). A line per
dkt model and thread count says whether the speed-up reaches ``--target``; with several dkt
models, a line per later model says how many times the speed of the first one it runs at
(``old.safetensors new.safetensors``: the new default against the old, in the same run).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from dkt import dktnet
from dkt.dktnet.checkpoint import load_checkpoint

try:
    from benchmarks.phdnet_standin import PHDNetStandIn, build_phdnet_standin
except ImportError:  # run as ``python benchmarks/model_speed.py``: benchmarks/ is on sys.path
    from phdnet_standin import PHDNetStandIn, build_phdnet_standin  # type: ignore[no-redef]

PHDNET_NAME = "PHDNet (random-weight stand-in)"


@dataclass
class Entry:
    name: str
    model: nn.Module
    kind: str  # "phdnet" or "dkt"
    path: Path | None = None
    parameters: int = 0
    gflop: float | None = None
    flop_method: str = ""
    file_bytes: int | None = None
    runs: dict[int, list[float]] = field(default_factory=dict)


def synthetic_inputs(size: int, batch: int = 1, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """A random composite in [0, 1] and a soft elliptical object mask, (B,3,S,S), (B,1,S,S)."""
    rng = np.random.default_rng(seed)
    composite = rng.random((batch, 3, size, size), dtype=np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    r = np.sqrt(((yy - 0.55) / 0.25) ** 2 + ((xx - 0.45) / 0.2) ** 2)
    mask = np.clip((1.1 - r) / 0.2, 0.0, 1.0).astype(np.float32)
    mask = np.broadcast_to(mask, (batch, 1, size, size)).copy()
    return torch.from_numpy(composite), torch.from_numpy(mask)


def count_gflop(model: nn.Module, size: int) -> tuple[float, str]:
    """GFLOP of one forward pass at batch 1, counted on meta tensors where the model allows.

    Meta tensors carry shapes but no data, so counting costs nothing even at 512 px; a model
    that needs real values (a data-dependent branch) is counted on one real CPU pass.
    """
    composite, mask = synthetic_inputs(size)
    try:
        if isinstance(model, PHDNetStandIn):
            with torch.device("meta"):
                meta = PHDNetStandIn()
        else:
            meta = copy.deepcopy(model).to("meta")
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            out = meta(composite.to("meta"), mask.to("meta"))
        method = "meta"
    except Exception:  # any failure on meta: count on one real pass instead
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            out = model(composite, mask)
        method = "cpu"
    if tuple(out.shape) != (1, 3, size, size):
        raise RuntimeError(f"output shape {tuple(out.shape)}, expected (1, 3, {size}, {size})")
    return counter.get_total_flops() / 1e9, method


def _timed(model: nn.Module, composite: torch.Tensor, mask: torch.Tensor) -> float:
    with torch.inference_mode():
        start = time.perf_counter()
        model(composite, mask)
        return time.perf_counter() - start


def time_interleaved(
    entries: list[Entry],
    composite: torch.Tensor,
    mask: torch.Tensor,
    threads: int,
    warmup: int,
    repeats: int,
) -> None:
    """Fill ``entry.runs[threads]``: warm-up passes, then round-robin timed rounds."""
    torch.set_num_threads(threads)
    for _ in range(warmup):
        for entry in entries:
            _timed(entry.model, composite, mask)
    for entry in entries:
        entry.runs[threads] = []
    for round_index in range(repeats):
        shift = round_index % len(entries)
        for entry in entries[shift:] + entries[:shift]:
            entry.runs[threads].append(_timed(entry.model, composite, mask))
        print(
            f"  threads {threads}, round {round_index + 1}/{repeats}: "
            + ", ".join(f"{e.name} {e.runs[threads][-1]:.3f} s" for e in entries),
            file=sys.stderr,
        )


def _median(entry: Entry, threads: int) -> float:
    return statistics.median(entry.runs[threads])


def _size_text(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:.2f} MiB"


def print_table(entries: list[Entry], thread_counts: list[int], target: float) -> None:
    phd = entries[0]
    head = ["model", "parameters", "GFLOP/image", "file size"]
    for t in thread_counts:
        head += [f"{t} thr median s", f"{t} thr min-max s", f"{t} thr speed-up"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for entry in entries:
        row = [
            entry.name,
            f"{entry.parameters:,}",
            "-" if entry.gflop is None else f"{entry.gflop:.2f}",
            _size_text(entry.file_bytes),
        ]
        for t in thread_counts:
            runs = entry.runs[t]
            ratio = _median(phd, t) / _median(entry, t)
            row += [
                f"{_median(entry, t):.4f}",
                f"{min(runs):.4f}-{max(runs):.4f}",
                "1.00x (reference)" if entry is phd else f"{ratio:.2f}x",
            ]
        print("| " + " | ".join(row) + " |")
    for entry in entries[1:]:
        for t in thread_counts:
            ratio = _median(phd, t) / _median(entry, t)
            verdict = "meets" if ratio >= target else "does NOT meet"
            print(f"{entry.name}, {t} thread(s): {ratio:.2f}x, {verdict} the {target:g}x target")
    # Several dkt models: each against the first one given (an old default against a new one).
    first = entries[1] if len(entries) > 2 else None
    for entry in entries[2:]:
        for t in thread_counts:
            ratio = _median(first, t) / _median(entry, t)
            print(f"{entry.name}, {t} thread(s): {ratio:.2f}x the speed of {first.name}")


def _figures(entries: list[Entry], thread_counts: list[int]) -> list[dict[str, Any]]:
    phd = entries[0]
    out = []
    for entry in entries:
        timings = {}
        for t in thread_counts:
            runs = entry.runs[t]
            timings[str(t)] = {
                "median_s": _median(entry, t),
                "min_s": min(runs),
                "max_s": max(runs),
                "runs_s": runs,
                "speedup_vs_phdnet": _median(phd, t) / _median(entry, t),
                "speedup_vs_first_model": _median(entries[1], t) / _median(entry, t),
            }
        out.append(
            {
                "name": entry.name,
                "kind": entry.kind,
                "path": None if entry.path is None else str(entry.path),
                "parameters": entry.parameters,
                "gflop_per_image": entry.gflop,
                "flops_counted_on": entry.flop_method,
                "file_bytes": entry.file_bytes,
                "timings": timings,
            }
        )
    return out


def _parse_threads(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of integers: {text!r}"
        ) from err
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"thread counts must be >= 1: {text!r}")
    return counts


def _label(path: Path, seen: set[str]) -> str:
    name = path.name
    if name in seen:
        name = str(path)
    seen.add(name)
    return name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "models",
        nargs="*",
        type=Path,
        help=f"dkt model files (default: the bundled model, {dktnet.BUNDLED_MODEL.name})",
    )
    parser.add_argument("--size", type=int, default=512, help="square side in px (default 512)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up passes (default 1)")
    parser.add_argument("--threads", type=_parse_threads, default=[1, 2], help="default 1,2")
    parser.add_argument("--target", type=float, default=5.0, help="speed-up to check (5)")
    parser.add_argument("--seed", type=int, default=0, help="stand-in weights and inputs")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.size < 8 or args.size % 8:
        parser.error("--size must be a positive multiple of 8 (PHDNet's encoder needs it)")
    if args.repeats < 1 or args.warmup < 0:
        parser.error("--repeats must be >= 1 and --warmup >= 0")
    paths = args.models or [dktnet.BUNDLED_MODEL]
    for path in paths:
        if not path.is_file():
            parser.error(f"no such model file: {path}")

    threads_before = torch.get_num_threads()
    load_before = os.getloadavg()[0]
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"cpus {os.cpu_count()}, load {load_before:.2f}, size {args.size}, batch 1, "
        f"threads {args.threads}, warm-up {args.warmup}, repeats {args.repeats}",
        file=sys.stderr,
    )
    entries = [Entry(PHDNET_NAME, build_phdnet_standin(seed=args.seed), "phdnet")]
    seen: set[str] = set()
    for path in paths:
        model = load_checkpoint(path).eval().requires_grad_(False)
        entries.append(
            Entry(_label(path, seen), model, "dkt", path=path, file_bytes=path.stat().st_size)
        )
    for entry in entries:
        entry.parameters = sum(p.numel() for p in entry.model.parameters())
        entry.gflop, entry.flop_method = count_gflop(entry.model, args.size)
        print(
            f"  {entry.name}: {entry.parameters:,} parameters, {entry.gflop:.2f} GFLOP "
            f"(counted on {entry.flop_method})",
            file=sys.stderr,
        )

    composite, mask = synthetic_inputs(args.size, seed=args.seed)
    try:
        for threads in args.threads:
            time_interleaved(entries, composite, mask, threads, args.warmup, args.repeats)
    finally:
        torch.set_num_threads(threads_before)
    load_after = os.getloadavg()[0]

    print(
        f"\nsize {args.size}x{args.size}, batch 1, median of {args.repeats} after "
        f"{args.warmup} warm-up, load average {load_before:.2f} -> {load_after:.2f}\n"
    )
    print_table(entries, args.threads, args.target)
    if args.json:
        figures = {
            "size": args.size,
            "batch": 1,
            "repeats": args.repeats,
            "warmup": args.warmup,
            "threads": args.threads,
            "target_speedup": args.target,
            "torch": torch.__version__,
            "cpu_count": os.cpu_count(),
            "load_average": [load_before, load_after],
            "models": _figures(entries, args.threads),
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
