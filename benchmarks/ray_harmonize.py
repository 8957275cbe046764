"""Benchmark ``dkt harmonize --ray`` against the local run, and Ray's own overhead.

    python benchmarks/ray_harmonize.py                       # 40 composites, size 512, 3 runs
    python benchmarks/ray_harmonize.py --count 16 --runs 1   # a quick look

What it measures, side by side in one run, on the first ``--count`` example composites of
the shared data (read in place) at working size ``--size``, with the bundled model:

* ``local pipeline``: :func:`dkt.inference.pipeline.run_all` as ``dkt harmonize`` runs it
  (2 reader/writer threads, the model on the cores they leave);
* ``local, 1 image at a time, 1 thread``: what one Ray worker does, in this process;
* ``ray, N worker(s)``: :func:`dkt.inference.ray_engine.harmonize_on_ray` on a local Ray
  instance of ``--cpus`` CPUs (each worker one CPU, one model thread), for each N in
  ``--workers``. A run's time includes starting its actors, shipping and loading the model
  (every run of ``dkt harmonize --ray`` pays them), so the table also gives the time to the
  first result and the rate after it.

Ray's start-up (``ray.init`` of a local instance) is timed once. Each configuration runs
once as a warm-up and then ``--runs`` times, interleaved so that load from other programs
falls on all alike; the table gives medians (and the range of images/s). Per-image
overhead of Ray = (steady seconds per image of 1 Ray worker) - (seconds per image of the
local one-at-a-time run): the same work in the same order, in an actor instead of here.
The machine's load average is printed before and after: on a shared machine it matters.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = Path(os.environ.get("DKT_SHARED_DATA", ROOT.parent / "shared" / "data"))


def _jobs(folder: Path, out: Path, count: int):
    from dkt.inference.pairing import plan_folder

    jobs = plan_folder(folder, folder, out, composite_pattern="{key}_comp",
                       mask_pattern="{key}_mask")  # fmt: skip
    if len(jobs) < count:
        raise SystemExit(f"{folder}: only {len(jobs)} composites, --count {count} asked")
    return jobs[:count]


def _local(jobs, size: int, pipeline: bool) -> dict[str, float]:
    from backends.base import LoadOptions
    from backends.registry import open_backend
    from dkt.dktnet import BUNDLED_MODEL
    from dkt.inference.cpu import pipeline_threads
    from dkt.inference.harmonizer import Harmonizer
    from dkt.inference.jobs import Existing
    from dkt.inference.pipeline import run_all

    threads = pipeline_threads(2) if pipeline else 1
    engine = open_backend(BUNDLED_MODEL, LoadOptions(device="cpu", threads=threads))
    start = time.perf_counter()
    summary = run_all(jobs, Harmonizer(engine, size), Existing.OVERWRITE,
                      workers=2 if pipeline else 0, threads=threads)  # fmt: skip
    seconds = time.perf_counter() - start
    assert summary.done == len(jobs), summary.failures
    return {"seconds": seconds, "first": float("nan"), "steady_per_image": seconds / len(jobs)}


def _ray(jobs, size: int, workers: int) -> dict[str, float]:
    from backends.base import LoadOptions
    from dkt.dktnet import BUNDLED_MODEL
    from dkt.inference.jobs import Existing
    from dkt.inference.ray_engine import ClusterOptions, ModelOptions, harmonize_on_ray

    options = ModelOptions(load=LoadOptions(device="cpu", threads=1), size=size)
    times: list[float] = []
    start = time.perf_counter()
    run = harmonize_on_ray(jobs, BUNDLED_MODEL, options,
                           Existing.OVERWRITE, lambda job: times.append(time.perf_counter()),
                           cluster=ClusterOptions(workers=workers))  # fmt: skip
    seconds = time.perf_counter() - start
    assert run.summary.done == len(jobs), run.summary.failures
    first = times[0] - start
    steady = (times[-1] - times[0]) / (len(times) - 1) * workers if len(times) > 1 else 0.0
    return {"seconds": seconds, "first": first, "steady_per_image": steady}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", default="1,2", help="Ray worker counts, e.g. 1,2")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray instance")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    import ray
    import torch

    torch.set_num_threads(1)
    folder = DATA / "example_composites"
    work = Path(tempfile.mkdtemp(prefix="dkt-ray-bench-"))
    load_before = os.getloadavg()
    start = time.perf_counter()
    ray.init(address="local", num_cpus=args.cpus, include_dashboard=False,
             logging_level="WARNING")  # fmt: skip
    ray_start = time.perf_counter() - start
    configs = {
        "local pipeline": lambda jobs: _local(jobs, args.size, True),
        "local, 1 image at a time, 1 thread": lambda jobs: _local(jobs, args.size, False),
    }
    for n in (int(w) for w in args.workers.split(",")):
        configs[f"ray, {n} worker{'s' if n > 1 else ''}"] = lambda jobs, n=n: _ray(
            jobs, args.size, n
        )
    results: dict[str, list[dict[str, float]]] = {name: [] for name in configs}
    try:
        for round_ in range(args.runs + 1):  # round 0 warms up
            for name, run in configs.items():
                out = work / f"out-{round_}-{len(results[name])}"
                record = run(_jobs(folder, out, args.count))
                shutil.rmtree(out, ignore_errors=True)
                print(f"round {round_} {name}: {record['seconds']:.1f} s", file=sys.stderr)
                if round_:
                    results[name].append(record)
    finally:
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    _report(results, args, ray_start, load_before, os.getloadavg())


def _report(results, args, ray_start: float, load_before, load_after) -> None:
    base = statistics.median(r["seconds"] for r in results["local pipeline"])
    one = statistics.median(r["seconds"] for r in results["local, 1 image at a time, 1 thread"])
    print(f"{args.count} example composites, --size {args.size}, bundled model, "
          f"{os.cpu_count()} cores, medians of {args.runs} runs after a warm-up")  # fmt: skip
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    print(f"ray.init (start a local instance of {args.cpus} CPUs): {ray_start:.1f} s\n")
    print(
        "| configuration | seconds | images/s (range) | vs local pipeline | first result "
        "| steady s/image |"
    )
    print("|---|---|---|---|---|---|")
    summary = {}
    for name, records in results.items():
        seconds = statistics.median(r["seconds"] for r in records)
        rates = [args.count / r["seconds"] for r in records]
        first = statistics.median(r["first"] for r in records)
        steady = statistics.median(r["steady_per_image"] for r in records)
        first_text = "-" if first != first else f"{first:.1f} s"
        print(
            f"| {name} | {seconds:.1f} | {args.count / seconds:.2f} ({min(rates):.2f}-"
            f"{max(rates):.2f}) | {base / seconds:.2f}x | {first_text} | {steady:.2f} |"
        )
        summary[name] = {"seconds": seconds, "images_per_second": args.count / seconds,
                         "first_result_s": first, "steady_s_per_image": steady}  # fmt: skip
    ray_one = [name for name in results if name.startswith("ray, 1 ")]
    if ray_one:
        overhead = summary[ray_one[0]]["steady_s_per_image"] - one / args.count
        print(f"\nRay per-image overhead (1 worker steady - local one at a time): "
              f"{overhead * 1000:.0f} ms")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"ray_init_s": ray_start, "results": summary,
                                         "load": [load_before, load_after]}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
