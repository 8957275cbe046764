"""ONNX Runtime vs eager PyTorch on the CPU, both model configs, side by side.

    PYTHONPATH=. python benchmarks/backends_cpu.py [--sizes 256,512] [--runs 7] [--json out.json]

For each config (``lite`` = DKTNetConfig(), ``vgg19`` = DKTNetConfig(encoder="vgg19",
kernel_dim=64)) a seeded random-weight checkpoint is written to a temporary folder and
exported once to a dynamic fp32 ONNX file (1x3x16x16 to 1x3x512x512), the file a user would
deploy. Weights do not change the work done, so these numbers are about speed only. For each
size both backends are loaded, warmed up, then timed in turns (eager, ORT, eager, ORT, ...)
so that load from other processes on the machine hits both alike. Reported: median and
10th-90th percentile per backend, and the time ratio ORT / eager (below 1: ORT is faster).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from dkt.backends.benchmark import interleaved_timings
from dkt.backends.export_onnx import export_onnx
from dkt.backends.registry import open_backend
from dkt.backends.shapes import ShapeProfile
from dkt.dktnet.checkpoint import save_checkpoint
from dkt.dktnet.config import DKTNetConfig
from dkt.dktnet.model import DKTNet

CONFIGS = {
    "lite": DKTNetConfig(),
    "vgg19": DKTNetConfig(encoder="vgg19", kernel_dim=64),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="lite,vgg19")
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--exporter", default="dynamo", choices=("dynamo", "torchscript"))
    parser.add_argument("--threads", type=int, default=None, help="both backends (default: own)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    print(
        f"torch {torch.__version__}, threads {args.threads or torch.get_num_threads()}, "
        f"cpus {os.cpu_count()}, load {os.getloadavg()[0]:.1f}",
        file=sys.stderr,
    )
    with tempfile.TemporaryDirectory(prefix="dkt-bench-") as tmp:
        for name in args.configs.split(","):
            torch.manual_seed(0)
            checkpoint = Path(tmp) / f"{name}.safetensors"
            save_checkpoint(checkpoint, DKTNet(CONFIGS[name]), provenance={"weights": "random"})
            onnx_path = Path(tmp) / f"{name}.onnx"
            profile = ShapeProfile(
                (1, 16, 16), (args.batch, 256, 256), (args.batch, *[max(sizes)] * 2)
            )
            start = time.perf_counter()
            export_onnx(checkpoint, onnx_path, profile=profile, exporter=args.exporter)
            print(f"{name}: exported in {time.perf_counter() - start:.0f} s", file=sys.stderr)
            with (
                open_backend(checkpoint, device="cpu", threads=args.threads) as eager,
                open_backend(onnx_path, device="cpu", threads=args.threads) as ort,
            ):
                for size in sizes:
                    times = interleaved_timings(
                        [eager, ort],
                        batch=args.batch,
                        size=size,
                        warmup=args.warmup,
                        runs=args.runs,
                    )
                    med = [statistics.median(t) for t in times]
                    spread = [(np.percentile(t, 10), np.percentile(t, 90)) for t in times]
                    rows.append(
                        {
                            "config": name,
                            "size": size,
                            "batch": args.batch,
                            "runs": args.runs,
                            "eager_median_ms": med[0],
                            "ort_median_ms": med[1],
                            "eager_p10_p90_ms": spread[0],
                            "ort_p10_p90_ms": spread[1],
                            "ratio_ort_over_eager": med[1] / med[0],
                        }
                    )
                    print(
                        f"  {name} {size}: eager {med[0]:.1f} ms, ort {med[1]:.1f} ms",
                        file=sys.stderr,
                    )
    print("| config | size | eager median ms (p10-p90) | ORT median ms (p10-p90) | ORT / eager |")
    print("|---|---|---|---|---|")
    for r in rows:
        e, o = r["eager_p10_p90_ms"], r["ort_p10_p90_ms"]
        print(
            f"| {r['config']} | {r['size']} | {r['eager_median_ms']:.1f} ({e[0]:.0f}-{e[1]:.0f}) "
            f"| {r['ort_median_ms']:.1f} ({o[0]:.0f}-{o[1]:.0f}) "
            f"| {r['ratio_ort_over_eager']:.2f} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=float) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
