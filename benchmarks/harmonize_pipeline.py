"""Benchmark ``dkt harmonize`` over a folder: pipeline on and off, working size and full size.

    python benchmarks/harmonize_pipeline.py                      # everything, defaults below
    python benchmarks/harmonize_pipeline.py --images 40 --repeats 1 --memory-images 200

What it measures, side by side in one run, for a generated folder of ``--images`` synthetic
painterly composites of ``--full-size`` (default 200 images of 1024x768):

* for ``--size 512`` (the network at 512, the result carried back to 1024x768) and for
  ``--size 0`` (the network at the full 1024x768):
  - the real CLI, ``python -m dkt harmonize``, with ``--workers 0`` (one image at a time)
    and with the pipeline (``--workers W``): wall time of the run (model loading excluded:
    the CLI reports it apart), images/s, the model's time inside the run, and the process's
    peak resident memory (``ru_maxrss`` of that child alone, from ``os.wait4``);
  - the *pure model time* for each: only ``backend.run`` on the same images in the same
    batches, inputs prepared beforehand and not timed, **with the same torch thread count
    as that run** (the CLI gives the model all cores without the pipeline and leaves one
    core per worker with it; ``--threads`` forces one count for all).
  Each configuration runs ``--repeats`` times, interleaved (pure, off, pure, on, then again)
  so that load from other jobs falls on all alike, after one warm-up run over the first ten
  images; the table gives medians, and the spread of the wall times. The ratio of wall to
  pure model time is taken per repeat, each run against the pure run just before it, and
  the table gives the median and range of those ratios: this machine's speed drifts by ten
  per cent and more over minutes, and a ratio of two medians taken minutes apart carries
  that drift, while adjacent runs share it.
* bounded memory: one pipelined run over ``--memory-images`` images (default 1,000, small
  ones so it takes minutes), peak resident memory after the first 20 images and at the end,
  and resident memory at a few marks between.

Each measurement runs in its own child process so peaks do not mix. The folder is written
under ``--workdir`` (a temporary folder by default): ``--distinct`` samples are generated
with :func:`dkt.demo.samples.make_demo_sample` (seconds each on a slow CPU) and the rest are
flipped, rolled and re-tinted variants of them, so every file differs and costs the same to
decode and encode as a fresh sample would. The model is ``--model``, else the bundled model
if it exists, else a randomly initialised default-size DKTNet saved into the workdir (speed
and memory do not depend on the weights' values). Timings on a shared machine vary with
whatever else runs there; the report prints the usable cores and the load average before
and after each part for that reason.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- data


def make_folder(root: Path, count: int, height: int, width: int, distinct: int) -> None:
    """``count`` composites and masks under ``root/comps`` and ``root/masks`` (PNG)."""
    from dkt.demo.samples import make_demo_sample
    from dkt.imaging.imageio import write_image

    comps, masks = root / "comps", root / "masks"
    if comps.is_dir() and len(list(comps.glob("*.png"))) == count:
        return
    shutil.rmtree(root, ignore_errors=True)
    bases = []
    for seed in range(min(distinct, count)):
        sample = make_demo_sample(height, width, seed=seed)
        mask = np.asarray(sample.mask)
        bases.append((np.asarray(sample.composite, dtype=np.uint8), mask))
        _log(f"  sample {seed + 1}/{min(distinct, count)}")
    rng = np.random.default_rng(0)
    for i in range(count):
        composite, mask = bases[i % len(bases)]
        if i >= len(bases):  # a variant: flipped, rolled, slightly re-tinted
            if rng.random() < 0.5:
                composite, mask = composite[:, ::-1], mask[:, ::-1]
            shift = int(rng.integers(-width // 8, width // 8))
            composite, mask = np.roll(composite, shift, axis=1), np.roll(mask, shift, axis=1)
            tint = rng.uniform(0.9, 1.1, 3)
            outside = (mask == 0)[..., None] if mask.ndim == 2 else mask == 0
            composite = np.where(outside, np.clip(composite * tint, 0, 255), composite)
        write_image(comps / f"{i:05d}.png", np.ascontiguousarray(composite, dtype=np.uint8))
        write_image(masks / f"{i:05d}.png", _mask_uint8(mask))


def _mask_uint8(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype != np.uint8:
        mask = np.rint(np.clip(mask, 0, 1) * 255).astype(np.uint8)
    return np.ascontiguousarray(mask)


def model_path(given: Path | None, workdir: Path) -> tuple[Path, str]:
    """The model to time, and a line saying which it is."""
    from dkt import dktnet

    if given is not None:
        return given, f"model: {given}"
    if dktnet.BUNDLED_MODEL.is_file():
        return dktnet.BUNDLED_MODEL, f"model: the bundled model ({dktnet.BUNDLED_MODEL})"
    from dkt.dktnet.checkpoint import save_checkpoint
    from dkt.dktnet.config import DKTNetConfig
    from dkt.dktnet.model import DKTNet

    path = workdir / "random-default.safetensors"
    if not path.is_file():
        import torch

        torch.manual_seed(0)
        note = {"note": "random weights, for timing only"}
        save_checkpoint(path, DKTNet(DKTNetConfig()).eval(), provenance=note)
    return path, f"model: no bundled model; DKTNet(DKTNetConfig()) with random weights ({path})"


# --------------------------------------------------------------------------- children


def child_model_time(args: argparse.Namespace) -> dict[str, object]:
    """Seconds inside ``backend.run`` alone for the folder's images, in batches of ``batch``."""
    from backends.base import LoadOptions
    from backends.registry import open_backend
    from dkt.inference.harmonizer import Harmonizer
    from dkt.inference.jobs import prepare_job
    from dkt.inference.pairing import plan_folder

    jobs = plan_folder(args.folder / "comps", args.folder / "masks", args.folder / "unused")
    backend = open_backend(args.model, LoadOptions(args.device, threads=args.threads or None))
    harmonizer = Harmonizer(backend, args.size)
    seconds = 0.0
    for start in range(0, len(jobs), args.batch):
        prepared = [prepare_job(job, harmonizer) for job in jobs[start : start + args.batch]]
        composite = np.stack([p.model_composite for p in prepared])
        mask = np.stack([p.model_mask for p in prepared])
        if start == 0:
            backend.run(composite, mask)  # warm-up, not counted
        t0 = time.perf_counter()
        backend.run(composite, mask)
        seconds += time.perf_counter() - t0
    import torch

    return {"images": len(jobs), "seconds_model": seconds, "threads": torch.get_num_threads()}


def child_memory(args: argparse.Namespace) -> dict[str, object]:
    """Peak resident memory after the first 20 images and after all of them, pipelined."""
    from backends.base import LoadOptions
    from backends.registry import open_backend
    from dkt.inference.cpu import CoreShare, usable_cores
    from dkt.inference.harmonizer import Harmonizer
    from dkt.inference.jobs import Existing
    from dkt.inference.pairing import plan_folder
    from dkt.inference.pipeline import run_pipelined

    out = args.folder / "out-memory"
    jobs = plan_folder(args.folder / "comps", args.folder / "masks", out)
    backend = open_backend(args.model, LoadOptions(args.device, threads=args.threads or None))
    marks: dict[str, float] = {}
    current: dict[str, float] = {}
    count = {"n": 0}

    def on_done(job: object) -> None:
        count["n"] += 1
        if count["n"] in (20, 100, 250, 500, 750) or count["n"] == len(jobs):
            marks[str(count["n"])] = _peak_mb()
            current[str(count["n"])] = _current_mb()

    share = CoreShare(usable_cores(), args.threads) if backend.on_cpu else None
    summary = run_pipelined(jobs, Harmonizer(backend, args.size), Existing.OVERWRITE, on_done,
                            workers=args.workers, batch=args.batch, share=share)  # fmt: skip
    shutil.rmtree(out, ignore_errors=True)
    return {"images": len(jobs), "done": summary.done, "peak_mb_after": marks,
            "rss_mb_at": current, "seconds_total": summary.seconds_total,
            "threads": args.threads, "batch": args.batch, "size": args.size}  # fmt: skip


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _current_mb() -> float:
    """Resident memory now (a peak only ever grows; this shows whether anything accumulates)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


# --------------------------------------------------------------------------- orchestration


def _run_child(argv: list[str], env: dict[str, str]) -> tuple[str, float]:
    """Run a child to the end; its stdout and its own peak resident memory in MB."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env, cwd=ROOT, text=True)
    stdout = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({proc.returncode}): {' '.join(argv)}")
    return stdout, usage.ru_maxrss / 1024.0


def run_cli(folder: Path, model: Path, size: int, workers: int, batch: int, threads: int,
            device: str, env: dict[str, str]) -> dict[str, object]:  # fmt: skip
    out = folder / f"out-{size}-{workers}"
    shutil.rmtree(out, ignore_errors=True)
    argv = [sys.executable, "-m", "dkt", "harmonize", "--composites", str(folder / "comps"),
            "--masks", str(folder / "masks"), "--out", str(out), "--size", str(size),
            "--workers", str(workers), "--batch", str(batch), "--threads", str(threads),
            "--model", str(model), "--device", device, "--json", "--quiet"]  # fmt: skip
    stdout, peak = _run_child(argv, env)
    data = json.loads(stdout)
    shutil.rmtree(out, ignore_errors=True)
    return {**data, "peak_mb": peak}


def run_self(mode: str, folder: Path, model: Path, size: int, workers: int, batch: int,
             threads: int, device: str, env: dict[str, str]) -> dict[str, object]:  # fmt: skip
    argv = [sys.executable, __file__, mode, "--folder", str(folder), "--model", str(model),
            "--size", str(size), "--workers", str(workers), "--batch", str(batch),
            "--threads", str(threads), "--device", device]  # fmt: skip
    stdout, peak = _run_child(argv, env)
    return {**json.loads(stdout), "peak_mb": peak}


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _subset(folder: Path, count: int) -> Path:
    """The first ``count`` pairs of ``folder`` as a folder of links (for the warm-up)."""
    sub = folder.parent / f"{folder.name}-first{count}"
    for kind in ("comps", "masks"):
        (sub / kind).mkdir(parents=True, exist_ok=True)
        for path in sorted((folder / kind).glob("*.png"))[:count]:
            link = sub / kind / path.name
            if not link.exists():
                link.symlink_to(path)
    return sub


def _median(values: list[float]) -> float:
    return float(np.median(values))


def main_benchmark(args: argparse.Namespace) -> None:
    from dkt.inference.cpu import pipeline_threads, usable_cores

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="dkt-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    width, height = (int(v) for v in args.full_size.lower().split("x"))
    model, model_note = model_path(args.model, workdir)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cores = usable_cores()
    batch = args.batch or (1 if args.device == "cpu" else 4)
    threads = {
        0: args.threads or cores,
        args.workers: args.threads or pipeline_threads(args.workers),
    }
    header = [
        f"machine: {os.cpu_count()} CPUs ({cores} usable), load average {_load()} at start "
        "(1/5/15 min; other jobs share these cores)",
        model_note,
        f"pipeline: --workers {args.workers} --batch {batch}; torch threads: "
        f"{threads[0]} without the pipeline, {threads[args.workers]} with it; "
        f"device {args.device}; medians of {args.repeats} interleaved runs after a warm-up",
    ]
    results: dict[str, object] = {"header": header, "throughput": [], "memory": None}
    if args.images:
        folder = workdir / f"folder-{args.images}-{width}x{height}"
        _log(f"generating {args.images} composites of {width}x{height} in {folder}")
        make_folder(folder, args.images, height, width, args.distinct)
        warm = _subset(folder, min(10, args.images))
        for size in args.sizes:
            label = f"--size {size}" if size else f"full ({width}x{height})"
            load_before = _load()
            _log(f"{label}: warm-up")
            run_cli(warm, model, size, 0, batch, threads[0], args.device, env)
            runs: dict[int, list[dict[str, object]]] = {0: [], args.workers: []}
            pures: dict[int, list[dict[str, object]]] = {0: [], args.workers: []}
            for repeat in range(args.repeats):
                for workers in (0, args.workers):
                    _log(f"{label}: pure model, {threads[workers]} thread(s) [{repeat + 1}]")
                    same = (size, workers, batch, threads[workers], args.device, env)
                    pures[workers].append(run_self("model-time", folder, model, *same))
                    _log(f"{label}: CLI with --workers {workers} [{repeat + 1}]")
                    runs[workers].append(run_cli(folder, model, *same))
            best_pure = min(_median([p["seconds_model"] for p in pures[w]]) for w in pures)
            for workers in (0, args.workers):
                walls = [r["seconds_total"] for r in runs[workers]]
                pure = _median([p["seconds_model"] for p in pures[workers]])
                ratios = [r["seconds_total"] / p["seconds_model"]
                          for r, p in zip(runs[workers], pures[workers], strict=True)]  # fmt: skip
                results["throughput"].append({
                    "size": label, "workers": workers, "threads": threads[workers],
                    "batch": batch, "done": runs[workers][0]["done"],
                    "seconds_total": _median(walls), "wall_min": min(walls),
                    "wall_max": max(walls),
                    "seconds_model": _median([r["seconds_model"] for r in runs[workers]]),
                    "pure_model_s": pure, "best_pure_model_s": best_pure,
                    "ratio": _median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
                    "peak_mb": _median([r["peak_mb"] for r in runs[workers]]),
                    "load": f"{load_before} -> {_load()}", "runs": runs[workers],
                    "pures": pures[workers],
                })  # fmt: skip
    if args.memory_images:
        mem_h, mem_w = args.memory_full_size
        folder = workdir / f"folder-{args.memory_images}-{mem_w}x{mem_h}"
        _log(f"generating {args.memory_images} composites of {mem_w}x{mem_h} in {folder}")
        make_folder(folder, args.memory_images, mem_h, mem_w, args.distinct)
        _log("bounded memory run")
        load_before = _load()
        results["memory"] = run_self("memory", folder, model, args.memory_size, args.workers,
                                     batch, threads[args.workers], args.device, env)  # fmt: skip
        results["memory"]["load"] = f"{load_before} -> {_load()}"
        results["memory"]["full_size"] = f"{mem_w}x{mem_h}"
    (workdir / "results.json").write_text(json.dumps(results, indent=2))
    print(render(results))
    if args.workdir is None and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)


def render(results: dict[str, object]) -> str:
    lines = [*results["header"], ""]
    if results["throughput"]:
        lines += [
            "| working size | pipeline | torch threads | images | wall s (range) | images/s "
            "| model s in run | pure model s, same threads "
            "| wall / pure, same threads, per repeat (range) "
            "| wall / fastest pure | peak RSS MB | load avg before -> after |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in results["throughput"]:
            mode = "off (--workers 0)" if r["workers"] == 0 else f"on (--workers {r['workers']})"
            wall = r["seconds_total"]
            lines.append(
                f"| {r['size']} | {mode} | {r['threads']} | {r['done']} "
                f"| {wall:.1f} ({r['wall_min']:.1f}-{r['wall_max']:.1f}) "
                f"| {r['done'] / wall:.2f} | {r['seconds_model']:.1f} | {r['pure_model_s']:.1f} "
                f"| {r['ratio']:.2f} ({r['ratio_min']:.2f}-{r['ratio_max']:.2f}) "
                f"| {wall / r['best_pure_model_s']:.2f} "
                f"| {r['peak_mb']:.0f} | {r['load']} |"
            )
    memory = results["memory"]
    if memory:
        marks = memory["peak_mb_after"]
        last = marks[str(memory["images"])]
        lines += [
            "",
            f"bounded memory: {memory['done']} images of {memory.get('full_size', '?')} at "
            f"--size {memory.get('size', '?')}, {memory.get('threads')} torch thread(s), "
            f"batch {memory.get('batch')}, {memory['seconds_total']:.0f} s, load "
            f"{memory.get('load', '?')}",
            f"peak RSS after 20: {marks['20']:.0f} MB, after all: {last:.0f} MB "
            f"(x{last / marks['20']:.3f}); peak at marks: "
            + ", ".join(f"{k}: {v:.0f}" for k, v in marks.items()),
            "resident memory at those marks (MB): "
            + ", ".join(f"{k}: {v:.0f}" for k, v in memory.get("rss_mb_at", {}).items()),
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", default="benchmark",
                        choices=["benchmark", "model-time", "memory"])  # fmt: skip
    parser.add_argument("--images", type=int, default=200, help="throughput folder size (0: skip)")
    parser.add_argument("--full-size", default="1024x768", help="WxH of the generated images")
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 0],
                        help="working sizes to compare (0 = full resolution)")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=3, help="runs per configuration")
    parser.add_argument("--memory-images", type=int, default=1000, help="0: skip")
    parser.add_argument("--memory-full-size", type=lambda s: tuple(int(v) for v in
                        s.lower().split("x"))[::-1], default=(384, 512), help="WxH")  # fmt: skip
    parser.add_argument("--memory-size", type=int, default=256, help="working size, memory run")
    parser.add_argument("--distinct", type=int, default=20, help="samples generated afresh")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=0,
                        help="0: as the CLI, 1 on the CPU and 4 on a GPU")  # fmt: skip
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads for every run; 0: as the CLI chooses")  # fmt: skip
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the temporary workdir")
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode == "model-time":
        print(json.dumps(child_model_time(args)))
    elif args.mode == "memory":
        print(json.dumps(child_memory(args)))
    else:
        main_benchmark(args)


if __name__ == "__main__":
    main()
