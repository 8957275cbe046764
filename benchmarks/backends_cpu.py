"""ONNX Runtime against eager PyTorch on the CPU, with PHDNet's generator in the same run.

    python benchmarks/backends_cpu.py [--configs bundled] [--sizes 512] [--threads 1,2]
        [--runs 6] [--no-phdnet] [--profile] [--int8 CALIBRATION_DIR] [--json out.json]

``bundled`` is the shipped model file itself; ``lite`` (``DKTNetConfig()``) and ``vgg19``
(``DKTNetConfig(encoder="vgg19", kernel_dim=64)``) are seeded random-weight checkpoints
written to a temporary folder (weights do not change the work done). Each is exported once to
the dynamic fp32 ONNX file a user would deploy (``dkt export``'s default profile). The eager
side is dkt's torch backend as ``dkt harmonize`` runs it (channels_last maps, its allocator
setting), not a bare ``model(x)``.

For each thread count and size, eager, ORT and (unless ``--no-phdnet``) the PHDNet stand-in
of :mod:`benchmarks.phdnet_standin` (built here from PHDNet's public layer list, random
weights) are warmed up and then timed taking turns, run by run, so load from other processes
hits them alike. Reported: median and 10th-90th percentile, GFLOP per image and the GFLOP/s
achieved, and the speed-up of ORT over eager (eager median / ORT median: above 1, ORT is
faster). ``--profile`` adds ONNX Runtime's own profile of three runs after three warm-up
runs: kernel time by operator type, the share of convolutions, and the kernel calls per run.
``--int8 DIR`` adds the int8 export ``dkt export --precision int8 --calibration DIR`` writes
as one more contender in the same turns.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from backends.base import Backend, LoadOptions
from backends.registry import open_backend
from backends.shapes import build_profile
from dkt import dktnet
from dkt.dktnet.checkpoint import save_checkpoint
from dkt.dktnet.config import DKTNetConfig
from dkt.dktnet.model import DKTNet
from dkt.export.benchmark import count_gflop, interleaved_timings, model_config, synthetic_batch
from dkt.export.calibration import calibration_samples
from dkt.export.onnx import export_onnx

try:
    from benchmarks.phdnet_standin import PHDNetStandIn, build_phdnet_standin
except ImportError:  # run as a script from benchmarks/
    from phdnet_standin import PHDNetStandIn, build_phdnet_standin  # type: ignore[no-redef]

CONFIGS = {
    "lite": DKTNetConfig(),
    "vgg19": DKTNetConfig(encoder="vgg19", kernel_dim=64),
}


class _EagerModule:
    """A bare torch module behind ``run``, so it can take turns with the backends."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module.eval()

    def run(self, composite: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.module(torch.from_numpy(composite), torch.from_numpy(mask)).numpy()


def checkpoint_for(name: str, folder: Path) -> Path:
    if name == "bundled":
        return dktnet.BUNDLED_MODEL
    torch.manual_seed(0)
    path = folder / f"{name}.safetensors"
    save_checkpoint(path, DKTNet(CONFIGS[name]), provenance={"weights": "seeded random"})
    return path


#: Runs of ORT's profile left out before the ones it reports.
_PROFILE_WARMUP = 3


def op_breakdown(onnx_path: Path, size: int, threads: int, runs: int = 3) -> dict[str, Any]:
    """ORT's profile of ``runs`` runs: kernel ms per run by operator type, most first."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.enable_profiling = True
    with tempfile.TemporaryDirectory(prefix="dkt-ort-profile-") as tmp:
        options.profile_file_prefix = str(Path(tmp) / "profile")
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        composite, mask = synthetic_batch(1, size)
        feeds = {"composite": composite, "mask": mask, "strength": np.ones(1, np.float32)}
        # Dropped below: the first run plans memory and the second is the first in the
        # planned block, whose page faults made single full-size operators look 10x slower.
        for _ in range(_PROFILE_WARMUP + runs):
            session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
    per_op: collections.Counter[str] = collections.Counter()
    calls: collections.Counter[str] = collections.Counter()
    kernels = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    kernels = kernels[len(kernels) * _PROFILE_WARMUP // (_PROFILE_WARMUP + runs) :]
    for event in kernels:
        per_op[event["args"]["op_name"]] += event["dur"]
        calls[event["args"]["op_name"]] += 1
    total = sum(per_op.values()) or 1
    return {
        "kernel_ms_per_run": total / runs / 1000,
        "conv_share": per_op.get("Conv", 0) / total,
        "calls_per_run": sum(calls.values()) / runs,
        "ops": [
            {"op": op, "share": us / total, "ms_per_run": us / runs / 1000,
             "calls_per_run": calls[op] / runs}
            for op, us in per_op.most_common()
        ],
    }  # fmt: skip


@contextlib.contextmanager
def contenders(
    checkpoint: Path, onnx_path: Path, threads: int, phdnet: bool, int8_path: Path | None
) -> Iterator[list[tuple[str, Any]]]:
    """(label, runner) pairs, loaded with ``threads`` threads each, closed afterwards."""
    options = LoadOptions(device="cpu", threads=threads)
    with contextlib.ExitStack() as stack:
        runners: list[tuple[str, Backend | _EagerModule]] = [
            (label, stack.enter_context(open_backend(path, options)))
            for label, path in (("eager", checkpoint), ("ort", onnx_path), ("ort_int8", int8_path))
            if path is not None
        ]
        if phdnet:
            runners.append(("phdnet", _EagerModule(build_phdnet_standin(seed=0))))
        yield runners


def phdnet_gflop(size: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = PHDNetStandIn().eval()
        composite, mask = torch.zeros(1, 3, size, size), torch.zeros(1, 1, size, size)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(composite, mask)
    return counter.get_total_flops() / 1e9


def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="dkt-bench-") as tmp:
        for name in args.configs.split(","):
            checkpoint = checkpoint_for(name, Path(tmp))
            config = model_config(checkpoint)
            onnx_path = Path(tmp) / f"{name}.onnx"
            profile = build_profile(dynamic=True, working_size=config.working_size)
            start = time.perf_counter()
            export_onnx(checkpoint, onnx_path, profile=profile, exporter=args.exporter)
            say(f"{name}: exported in {time.perf_counter() - start:.0f} s ({profile.describe()})")
            int8_path = None
            if args.int8:
                int8_path = Path(tmp) / f"{name}-int8.onnx"
                samples = calibration_samples(args.int8, config.working_size, profile)
                export_onnx(checkpoint, int8_path, profile=profile, exporter=args.exporter,
                            precision="int8", calibration=samples)  # fmt: skip
                say(f"{name}: int8 export calibrated on {len(samples)} composites")
            for threads in (int(t) for t in args.threads.split(",")):
                torch.set_num_threads(threads)
                with contenders(
                    checkpoint, onnx_path, threads, not args.no_phdnet, int8_path
                ) as runners:
                    for size in sizes:
                        rows.append(_one(name, config, runners, size, threads, args, onnx_path))
    return rows


def _one(name: str, config: DKTNetConfig, runners: list[tuple[str, Any]], size: int,
         threads: int, args: argparse.Namespace, onnx_path: Path) -> dict[str, Any]:  # fmt: skip
    times = interleaved_timings([r for _, r in runners], batch=1, size=size,
                                warmup=args.warmup, runs=args.runs)  # fmt: skip
    gflop = dict.fromkeys(("eager", "ort", "ort_int8"), count_gflop(config, size))
    if not args.no_phdnet:
        gflop["phdnet"] = phdnet_gflop(size)
    row: dict[str, Any] = {"config": name, "size": size, "threads": threads, "runs": args.runs}
    for (label, _), t in zip(runners, times, strict=True):
        median = statistics.median(t)
        row[label] = {
            "median_ms": median,
            "p10_ms": float(np.percentile(t, 10)),
            "p90_ms": float(np.percentile(t, 90)),
            "gflop": gflop[label],
            "gflop_per_s": gflop[label] / (median / 1000),
        }
    row["ort_speedup"] = row["eager"]["median_ms"] / row["ort"]["median_ms"]
    if "ort_int8" in row:
        row["ort_int8_speedup"] = row["eager"]["median_ms"] / row["ort_int8"]["median_ms"]
    if "phdnet" in row:
        row["eager_speedup_over_phdnet"] = row["phdnet"]["median_ms"] / row["eager"]["median_ms"]
    if args.profile:
        row["ort_profile"] = op_breakdown(onnx_path, size, threads)
    summary = ", ".join(f"{k} {row[k]['median_ms']:.0f} ms" for k, _ in runners)
    say(f"  {name} {size} px, {threads} thread(s): {summary}; ORT {row['ort_speedup']:.2f}x eager")
    return row


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def report(rows: list[dict[str, Any]]) -> str:
    lines = ["| config | size | threads | eager ms (p10-p90) | ORT ms (p10-p90) | ORT speed-up "
             "| eager GFLOP/s | ORT GFLOP/s | PHDNet ms | eager vs PHDNet |",
             "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        e, o, p = r["eager"], r["ort"], r.get("phdnet")
        lines.append(
            f"| {r['config']} | {r['size']} | {r['threads']} "
            f"| {e['median_ms']:.0f} ({e['p10_ms']:.0f}-{e['p90_ms']:.0f}) "
            f"| {o['median_ms']:.0f} ({o['p10_ms']:.0f}-{o['p90_ms']:.0f}) "
            f"| {r['ort_speedup']:.2f}x | {e['gflop_per_s']:.1f} | {o['gflop_per_s']:.1f} "
            + (f"| {p['median_ms']:.0f} | {r['eager_speedup_over_phdnet']:.2f}x |"
               if p else "| - | - |")
        )  # fmt: skip
    int8 = [r for r in rows if "ort_int8" in r]
    if int8:
        lines += ["", "| config | size | threads | ORT int8 ms (p10-p90) "
                  "| int8 speed-up over eager | over ORT fp32 |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        for r in int8:
            q = r["ort_int8"]
            lines.append(
                f"| {r['config']} | {r['size']} | {r['threads']} | {q['median_ms']:.0f} "
                f"({q['p10_ms']:.0f}-{q['p90_ms']:.0f}) | {r['ort_int8_speedup']:.2f}x "
                f"| {r['ort']['median_ms'] / q['median_ms']:.2f}x |"
            )
    for r in rows:
        prof = r.get("ort_profile")
        if not prof:
            continue
        lines += ["", f"ORT kernel time by operator, {r['config']} {r['size']} px, {r['threads']} "
                  f"thread(s): {prof['kernel_ms_per_run']:.0f} ms a run in "
                  f"{prof['calls_per_run']:.0f} kernel calls; Conv {prof['conv_share']:.0%}",
                  "| op | share | ms per run | calls per run |", "|---|---|---|---|"]  # fmt: skip
        lines += [f"| {o['op']} | {o['share']:.1%} | {o['ms_per_run']:.1f} "
                  f"| {o['calls_per_run']:.0f} |" for o in prof["ops"][:12]]  # fmt: skip
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="bundled")
    parser.add_argument("--sizes", default="512")
    parser.add_argument("--threads", default="1,2", help="thread counts, each in turn")
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--exporter", default="dynamo", choices=("dynamo", "torchscript"))
    parser.add_argument("--no-phdnet", action="store_true", help="leave the PHDNet stand-in out")
    parser.add_argument("--profile", action="store_true", help="ORT's op breakdown too")
    parser.add_argument(
        "--int8",
        type=Path,
        default=None,
        metavar="CALIBRATION_DIR",
        help="also time an int8 export calibrated on this folder's composites",
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    say(f"torch {torch.__version__}, cpus {os.cpu_count()}, load {os.getloadavg()[0]:.1f}")
    rows = measure(args)
    print(report(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=float) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
