"""Benchmark ``dkt harmonize`` over a folder: pipeline on and off, working size and full size.

    python benchmarks/harmonize_pipeline.py                      # everything, defaults below
    python benchmarks/harmonize_pipeline.py --images 40 --memory-images 200   # a quick look

What it measures, side by side in one run, for a generated folder of ``--images`` synthetic
painterly composites of ``--full-size`` (default 200 images of 1024x768):

* for ``--size 512`` (the network at 512, the result carried back to 1024x768) and for
  ``--size 0`` (the network at the full 1024x768):
  - the *pure model time*: only ``backend.run`` on the same images, in the same batches,
    inputs prepared beforehand and not timed;
  - the real CLI, ``python -m dkt_cli harmonize``, with ``--workers 0`` (one image at a time)
    and with the pipeline (``--workers W --batch B``): wall time of the run (model loading
    excluded: the CLI reports it apart), images/s, the model's share, and the process's
    peak resident memory (``ru_maxrss`` of that child alone, from ``os.wait4``);
* bounded memory: one pipelined run over ``--memory-images`` images (default 1,000), peak
  resident memory after the first 20 images and at the end.

Each measurement runs in its own child process so peaks do not mix. The folder is written
under ``--workdir`` (a temporary folder by default): ``--distinct`` samples are generated
with :func:`dktnet.samples.make_demo_sample` (seconds each on a slow CPU) and the rest are
flipped, rolled and re-tinted variants of them, so every file differs and costs the same to
decode and encode as a fresh sample would. The model is ``--model``, else the bundled model
if it exists, else a randomly initialised default-size DKTNet saved into the workdir (speed
and memory do not depend on the weights' values). Timings on a shared machine vary with
whatever else runs there; the report prints the CPU count and load average for that reason.
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
    from dktnet.imageio import write_image
    from dktnet.samples import make_demo_sample

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
    import dktnet

    if given is not None:
        return given, f"model: {given}"
    if dktnet.BUNDLED_MODEL.is_file():
        return dktnet.BUNDLED_MODEL, f"model: the bundled model ({dktnet.BUNDLED_MODEL})"
    from dktnet.checkpoint import save_checkpoint
    from dktnet.config import DKTNetConfig
    from dktnet.model import DKTNet

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
    from backends.harmonizer import Harmonizer
    from backends.registry import open_backend
    from dkt_cli.jobs import prepare_job
    from dkt_cli.pairing import plan_folder

    jobs = plan_folder(args.folder / "comps", args.folder / "masks", args.folder / "unused")
    backend = open_backend(args.model, device=args.device)
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
    return {"images": len(jobs), "seconds_model": seconds}


def child_memory(args: argparse.Namespace) -> dict[str, object]:
    """Peak resident memory after the first 20 images and after all of them, pipelined."""
    from backends.harmonizer import Harmonizer
    from backends.registry import open_backend
    from dkt_cli.jobs import Existing
    from dkt_cli.pairing import plan_folder
    from dkt_cli.pipeline import run_pipelined

    out = args.folder / "out-memory"
    jobs = plan_folder(args.folder / "comps", args.folder / "masks", out)
    backend = open_backend(args.model, device=args.device)
    marks: dict[str, float] = {}
    current: dict[str, float] = {}
    count = {"n": 0}

    def on_done(job: object) -> None:
        count["n"] += 1
        if count["n"] in (20, 100, 250, 500, 750) or count["n"] == len(jobs):
            marks[str(count["n"])] = _peak_mb()
            current[str(count["n"])] = _current_mb()

    summary = run_pipelined(jobs, Harmonizer(backend, args.size), Existing.OVERWRITE, on_done,
                            workers=args.workers, batch=args.batch)  # fmt: skip
    shutil.rmtree(out, ignore_errors=True)
    return {"images": len(jobs), "done": summary.done, "peak_mb_after": marks,
            "rss_mb_at": current, "seconds_total": summary.seconds_total}  # fmt: skip


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


def run_cli(folder: Path, model: Path, size: int, workers: int, batch: int, device: str,
            env: dict[str, str]) -> dict[str, object]:  # fmt: skip
    out = folder / f"out-{size}-{workers}"
    shutil.rmtree(out, ignore_errors=True)
    argv = [sys.executable, "-m", "dkt_cli", "harmonize", "--composites", str(folder / "comps"),
            "--masks", str(folder / "masks"), "--out", str(out), "--size", str(size),
            "--workers", str(workers), "--batch", str(batch), "--model", str(model),
            "--device", device, "--json", "--quiet"]  # fmt: skip
    stdout, peak = _run_child(argv, env)
    data = json.loads(stdout)
    shutil.rmtree(out, ignore_errors=True)
    return {**data, "peak_mb": peak}


def run_self(mode: str, folder: Path, model: Path, size: int, workers: int, batch: int,
             device: str, env: dict[str, str]) -> dict[str, object]:  # fmt: skip
    argv = [sys.executable, __file__, mode, "--folder", str(folder), "--model", str(model),
            "--size", str(size), "--workers", str(workers), "--batch", str(batch),
            "--device", device]  # fmt: skip
    stdout, peak = _run_child(argv, env)
    return {**json.loads(stdout), "peak_mb": peak}


def main_benchmark(args: argparse.Namespace) -> None:
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="dkt-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    width, height = (int(v) for v in args.full_size.lower().split("x"))
    model, model_note = model_path(args.model, workdir)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    load = os.getloadavg()
    header = [
        f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
        " at start (other jobs share these cores)",
        model_note,
        f"torch threads: {args.threads or 'default'}; pipeline: --workers {args.workers} "
        f"--batch {args.batch}; device {args.device}",
    ]
    results: dict[str, object] = {"header": header, "throughput": [], "memory": None}
    if args.images:
        folder = workdir / f"folder-{args.images}-{width}x{height}"
        _log(f"generating {args.images} composites of {width}x{height} in {folder}")
        make_folder(folder, args.images, height, width, args.distinct)
        for size in args.sizes:
            label = f"--size {size}" if size else f"full ({width}x{height})"
            _log(f"{label}: pure model time")
            pure = run_self("model-time", folder, model, size, args.workers, args.batch,
                            args.device, env)  # fmt: skip
            for workers in (0, args.workers):
                _log(f"{label}: CLI with --workers {workers}")
                run = run_cli(folder, model, size, workers, args.batch, args.device, env)
                results["throughput"].append(
                    {"size": label, "workers": workers, "pure_model_s": pure["seconds_model"],
                     **{k: run[k] for k in ("done", "seconds_total", "seconds_model",
                                            "images_per_second", "peak_mb")}}
                )  # fmt: skip
    if args.memory_images:
        mem_h, mem_w = args.memory_full_size
        folder = workdir / f"folder-{args.memory_images}-{mem_w}x{mem_h}"
        _log(f"generating {args.memory_images} composites of {mem_w}x{mem_h} in {folder}")
        make_folder(folder, args.memory_images, mem_h, mem_w, args.distinct)
        _log("bounded memory run")
        results["memory"] = run_self("memory", folder, model, args.memory_size, args.workers,
                                     args.batch, args.device, env)  # fmt: skip
    (workdir / "results.json").write_text(json.dumps(results, indent=2))
    print(render(results))
    if args.workdir is None and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)


def render(results: dict[str, object]) -> str:
    lines = [*results["header"], ""]
    if results["throughput"]:
        lines += [
            "| working size | pipeline | images | wall s | images/s | model s (in run) "
            "| pure model s | wall / pure model | peak RSS MB |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in results["throughput"]:
            mode = "off (--workers 0)" if r["workers"] == 0 else f"on (--workers {r['workers']})"
            lines.append(
                f"| {r['size']} | {mode} | {r['done']} | {r['seconds_total']:.1f} "
                f"| {r['images_per_second']:.2f} | {r['seconds_model']:.1f} "
                f"| {r['pure_model_s']:.1f} | {r['seconds_total'] / r['pure_model_s']:.2f} "
                f"| {r['peak_mb']:.0f} |"
            )
    memory = results["memory"]
    if memory:
        marks = memory["peak_mb_after"]
        last = marks[str(memory["images"])]
        lines += [
            "",
            f"bounded memory: {memory['done']} images, peak RSS after 20: {marks['20']:.0f} MB, "
            f"after all: {last:.0f} MB (x{last / marks['20']:.3f}); "
            + ", ".join(f"{k}: {v:.0f}" for k, v in marks.items()),
            "resident memory at those points (MB): "
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
    parser.add_argument("--memory-images", type=int, default=1000, help="0: skip")
    parser.add_argument("--memory-full-size", type=lambda s: tuple(int(v) for v in
                        s.lower().split("x"))[::-1], default=(384, 512), help="WxH")  # fmt: skip
    parser.add_argument("--memory-size", type=int, default=256, help="working size, memory run")
    parser.add_argument("--distinct", type=int, default=20, help="samples generated afresh")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=0, help="OMP_NUM_THREADS for children")
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
