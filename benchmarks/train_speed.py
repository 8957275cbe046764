"""Training throughput (images/s) and peak memory of both model configs, side by side.

    PYTHONPATH=. python benchmarks/train_speed.py [--configs dktnet-lite,dktnet-vgg19]
        [--size 256] [--batch 4] [--steps 3] [--warmup 1] [--device auto] [--json out.json]

Each config is measured in its own subprocess so its peak memory is its own: the resident
set's high-water mark (ru_maxrss) on the CPU, ``torch.cuda.max_memory_allocated`` on a GPU.
A step is one full training step of the complete objective (the adversarial term on from
step 1, so the discriminator's update is included) on batches drawn before timing, so the
figure is the model's, not the data loader's (which runs in worker processes in a real run).
The loss network is the seeded random-weight VGG-19 (weights do not change the work done).
Reported: median step time after the warm-up, images/s = batch / median, and the ratio of
the two configs in one table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch


def _batch(size: int, batch: int, seed: int) -> dict[str, torch.Tensor]:
    """A synthetic batch with the shapes and mask coverage (about 20%) of real composites."""
    g = torch.Generator().manual_seed(seed)
    painting = torch.rand(batch, 3, size, size, generator=g)
    mask = torch.zeros(batch, 1, size, size)
    lo, hi = size // 4, size // 4 + int(size * 0.45)
    mask[..., lo:hi, lo:hi] = 1.0
    composite = painting * (1 - mask) + torch.rand(batch, 3, size, size, generator=g) * mask
    return {"composite": composite, "mask": mask, "painting": painting}


def measure(config: str, size: int, batch: int, steps: int, warmup: int, device: str) -> dict:
    """One config in this process: median step time and peak memory."""
    from training.config import load_config
    from training.distributed import init_distributed
    from training.loop import Trainer
    from training.lossnet import load_loss_network

    cfg = load_config(
        config,
        [f"data.size={size}", f"data.batch_size={batch}", "adversarial.warmup_steps=0",
         "run.tensorboard=false"],
    )  # fmt: skip
    dist = init_distributed(device)
    trainer = Trainer(cfg, load_loss_network("random:0"), dist)
    batches = [_batch(size, batch, i) for i in range(warmup + steps)]
    times = []
    for i, b in enumerate(batches, start=1):
        if dist.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        trainer.step(b, i)
        if dist.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    timed = times[warmup:]
    median = statistics.median(timed)
    if dist.device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
        memory = "cuda max_memory_allocated"
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        memory = "peak RSS"
    return {
        "config": config,
        "device": str(dist.device),
        "size": size,
        "batch": batch,
        "threads": torch.get_num_threads(),
        "params": trainer.model.parameter_count(),
        "step_s_median": round(median, 3),
        "step_s_min": round(min(timed), 3),
        "step_s_max": round(max(timed), 3),
        "images_per_s": round(batch / median, 3),
        "peak_mb": round(peak_mb, 1),
        "memory": memory,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="dktnet-lite,dktnet-vgg19")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # child mode
    args = parser.parse_args()
    if args.one:
        result = measure(args.one, args.size, args.batch, args.steps, args.warmup, args.device)
        print(json.dumps(result))
        return 0
    print(
        f"torch {torch.__version__}, cpus {os.cpu_count()}, load {os.getloadavg()[0]:.1f}, "
        f"cuda {torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}",
        file=sys.stderr,
    )
    rows = []
    for config in args.configs.split(","):
        cmd = [sys.executable, __file__, "--one", config, "--size", str(args.size),
               "--batch", str(args.batch), "--steps", str(args.steps),
               "--warmup", str(args.warmup), "--device", args.device]  # fmt: skip
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    base = rows[0]["images_per_s"]
    print(f"{'config':<14} {'device':<7} {'size':>4} {'batch':>5} {'params':>11} "
          f"{'step s (med)':>12} {'img/s':>7} {'vs first':>8} {'peak MB':>9}")  # fmt: skip
    for r in rows:
        print(
            f"{r['config']:<14} {r['device']:<7} {r['size']:>4} {r['batch']:>5} {r['params']:>11,} "
            f"{r['step_s_median']:>12.3f} {r['images_per_s']:>7.3f} "
            f"{r['images_per_s'] / base:>8.2f} {r['peak_mb']:>9.1f}"
        )
    print(f"memory: {rows[0]['memory']}; median of {args.steps} steps after {args.warmup} warm-up")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
