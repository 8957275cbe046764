"""One command for the day a GPU is lent: every inference and training figure, in one report.

    python benchmarks/gpu_check.py [--out gpu_check.json] [--size 512] [--batches 1,8]
    python benchmarks/gpu_check.py --dry-run        # the same code on the CPU, tiny sizes

On a CUDA machine it takes a few minutes (well under 8) and writes one JSON report and
prints a table. Rows:

* eager fp32, fp16, bf16 and channels_last at ``--size``, for each batch of ``--batches``:
  images/s, achieved TFLOP/s, and parity against fp32 on two inputs (random composites,
  and a flat-coloured object, the case where fp16 statistics overflow): max abs
  difference and whether every background pixel came back exactly;
* ``torch.compile`` and CUDA graphs (fp32 and bf16) where they work on this machine;
* ONNX Runtime on each execution provider this onnxruntime build lists, except the CPU's on
  a GPU machine (an fp32 export of the same model);
* training steps/s at ``--train-size`` (256), batch ``--train-batch`` (8), bf16, for the
  bundled model's recipe (``dktnet-cd16x``), the previous default's (``dktnet-relu3``) and
  the paper's ``dktnet-vgg19``, with peak GPU memory. The loss network is the seeded
  random-weight VGG-19 to relu4_1 (``random:0``), whose weights do not change the work done
  (the bundled recipe's real loss network, the exact VGG-19 to relu3_1 plus the distilled
  relu4_1/relu5_1, costs about the same); the cd16x row needs the distilled encoder file
  (``--encoder-init``, carry it from ``../shared/weights``) and says so when it is missing.

TFLOP/s counts convolutions and matrix products (torch's FlopCounterMode, a multiply-add
is 2 FLOPs) and is set against the GPU's dense bf16 peak (a table of known GPUs, or
``--peak-tflops``). A row that cannot run says why (``skipped``) or what failed (``error``);
one failing row never stops the others, so a GPU session is never lost to one of them.

``--dry-run`` runs every row on the CPU at 32 px with batches 1 and 2 and two runs each
(``torch.compile`` with its ``eager`` backend, CUDA graphs skipped): the test suite runs it
so that the GPU run cannot fail on a typo.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]

#: Dense bf16 tensor-core peaks (TFLOP/s, no sparsity), by a substring of the device name.
BF16_PEAK_TFLOPS = {
    "H200": 989.0,
    "H100 SXM": 989.0,
    "H100 PCIe": 756.0,
    "H100": 756.0,
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10G": 70.0,
    "A10": 125.0,
    "RTX 4090": 165.0,
    "T4": 65.0,
}


@dataclass
class Row:
    """One measured configuration; ``status`` is ``ok``, ``skipped: why`` or ``error: what``."""

    group: str
    name: str
    batch: int
    status: str = "ok"
    images_per_s: float | None = None
    median_ms: float | None = None
    tflops: float | None = None
    peak_fraction: float | None = None
    max_abs_diff: dict[str, float] = field(default_factory=dict)
    background_exact: dict[str, bool] = field(default_factory=dict)
    peak_memory_mib: float | None = None
    note: str = ""


@dataclass
class Plan:
    """What to run: the GPU sizes, or the dry run's tiny ones."""

    device: torch.device
    size: int
    batches: list[int]
    warmup: int
    runs: int
    train_size: int
    train_batch: int
    train_steps: int
    dry_run: bool
    exporter: str
    encoder_init: str | None = None  # the distilled encoder file the cd16x training row needs


def make_plan(args: argparse.Namespace) -> Plan:
    if args.dry_run:
        return Plan(
            torch.device("cpu"), 32, [1, 2], 1, 2, 32, 2, 1, True, "torchscript", args.encoder_init
        )
    if not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA device (use --dry-run to check the script here)")
    batches = [int(b) for b in args.batches.split(",")]
    return Plan(
        torch.device("cuda"),
        args.size,
        batches,
        args.warmup,
        args.runs,
        args.train_size,
        args.train_batch,
        args.train_steps,
        False,
        "dynamo",
        args.encoder_init,
    )


# ------------------------------------------------------------------------------ inputs


def inputs(batch: int, size: int, flat: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Composites and masks; ``flat``: the object is one colour (zero variance inside)."""
    g = torch.Generator().manual_seed(batch * 1000 + size)
    composite = torch.rand(batch, 3, size, size, generator=g)
    mask = torch.zeros(batch, 1, size, size)
    lo, hi = size // 4, size // 4 + max(size * 9 // 20, 2)
    mask[..., lo:hi, lo:hi] = 1.0
    if flat:
        composite = torch.where(mask > 0, torch.tensor(0.8), composite)
    return composite, mask


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_runs(fn: Callable[[], Any], plan: Plan) -> float:
    """Median ms of ``plan.runs`` calls after ``plan.warmup`` untimed ones."""
    for _ in range(plan.warmup):
        fn()
    _sync(plan.device)
    times = []
    for _ in range(plan.runs):
        start = time.perf_counter()
        fn()
        _sync(plan.device)
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


# ------------------------------------------------------------------------------ inference


def load_model(device: torch.device) -> torch.nn.Module:
    from dkt import dktnet
    from dkt.dktnet.checkpoint import load_checkpoint

    return load_checkpoint(dktnet.BUNDLED_MODEL).to(device).eval()


def _parity(
    row: Row,
    candidate: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    reference: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    plan: Plan,
    dtype: torch.dtype,
) -> None:
    """Fill ``row``'s parity against fp32 on the random and the flat-object input."""
    for label, flat in (("random", False), ("flat_object", True)):
        composite, mask = (t.to(plan.device) for t in inputs(row.batch, plan.size, flat))
        with torch.inference_mode():
            ref = reference(composite, mask).float()
            out = candidate(composite.to(dtype), mask.to(dtype)).float()
        finite = bool(torch.isfinite(out).all())
        row.max_abs_diff[label] = float((out - ref).abs().max()) if finite else float("inf")
        outside = (mask == 0).expand_as(out)
        row.background_exact[label] = bool(
            torch.equal(out[outside], composite.to(dtype).float()[outside])
        )


def eager_rows(model: torch.nn.Module, plan: Plan, gflop: float) -> list[Row]:
    fp32 = model
    variants: list[tuple[str, torch.dtype, bool]] = [
        ("eager fp32", torch.float32, False),
        ("eager fp16", torch.float16, False),
        ("eager bf16", torch.bfloat16, False),
        ("eager fp32 channels_last", torch.float32, True),
    ]
    rows = []
    for name, dtype, channels_last in variants:
        for batch in plan.batches:
            rows.append(
                _guarded(
                    Row("eager", name, batch),
                    lambda row, d=dtype, c=channels_last: _eager(row, fp32, plan, gflop, d, c),
                )
            )
    return rows


def _eager(
    row: Row,
    fp32: torch.nn.Module,
    plan: Plan,
    gflop: float,
    dtype: torch.dtype,
    channels_last: bool,
) -> None:
    import copy

    model = copy.deepcopy(fp32).to(dtype)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    composite, mask = (
        t.to(plan.device, dtype).contiguous(memory_format=fmt)
        for t in inputs(row.batch, plan.size, False)
    )

    def run() -> torch.Tensor:
        with torch.inference_mode():
            return model(composite, mask)

    _fill_speed(row, time_runs(run, plan), gflop, plan)
    _parity(row, model, fp32, plan, dtype)


def compiled_rows(model: torch.nn.Module, plan: Plan, gflop: float) -> list[Row]:
    rows = []
    for dtype, label in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
        batch = plan.batches[-1]
        rows.append(
            _guarded(
                Row("compiled", f"torch.compile {label}", batch),
                lambda row, d=dtype: _compiled(row, model, plan, gflop, d),
            )
        )
        rows.append(
            _guarded(
                Row("compiled", f"CUDA graphs {label}", batch),
                lambda row, d=dtype: _graphed(row, model, plan, gflop, d),
            )
        )
    return rows


def _compiled(
    row: Row, fp32: torch.nn.Module, plan: Plan, gflop: float, dtype: torch.dtype
) -> None:
    import copy

    model = copy.deepcopy(fp32).to(dtype)
    compiled = torch.compile(model, backend="eager" if plan.dry_run else "inductor")
    composite, mask = (t.to(plan.device, dtype) for t in inputs(row.batch, plan.size, False))
    start = time.perf_counter()
    with torch.inference_mode():
        compiled(composite, mask)  # the first call compiles
    _sync(plan.device)
    row.note = f"compile {time.perf_counter() - start:.1f} s" + (
        " (dry run: the eager backend)" if plan.dry_run else ""
    )

    def run() -> torch.Tensor:
        with torch.inference_mode():
            return compiled(composite, mask)

    _fill_speed(row, time_runs(run, plan), gflop, plan)
    _parity(row, compiled, fp32, plan, dtype)


def _graphed(row: Row, fp32: torch.nn.Module, plan: Plan, gflop: float, dtype: torch.dtype) -> None:
    if plan.device.type != "cuda":
        row.status = "skipped: CUDA graphs need a CUDA device"
        return
    import copy

    model = copy.deepcopy(fp32).to(dtype)
    composite, mask = (t.to(plan.device, dtype) for t in inputs(row.batch, plan.size, False))
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream), torch.inference_mode():
        for _ in range(3):  # warm-up on a side stream, as graph capture requires
            model(composite, mask)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph), torch.inference_mode():
        static_out = model(composite, mask)

    def run() -> torch.Tensor:
        graph.replay()
        return static_out

    _fill_speed(row, time_runs(run, plan), gflop, plan)
    row.note = "replays one captured forward pass (fixed shape)"


def ort_rows(plan: Plan, gflop: float) -> list[Row]:
    try:
        import onnxruntime as ort
    except ImportError:
        return [Row("onnxruntime", "onnxruntime", plan.batches[0], "skipped: not installed")]
    providers = list(ort.get_available_providers())
    if plan.device.type == "cuda":
        providers = [p for p in providers if p != "CPUExecutionProvider"]
    else:
        providers = ["CPUExecutionProvider"]
    with tempfile.TemporaryDirectory(prefix="dkt-gpu-check-") as tmp:
        onnx_path = Path(tmp) / "bundled.onnx"
        try:
            _export(onnx_path, plan)
        except Exception as exc:  # the export itself failing is one row's result
            return [Row("onnxruntime", "export", plan.batches[0], f"error: {_one_line(exc)}")]
        rows = []
        for provider in providers:
            for batch in plan.batches:
                label = f"ORT {provider.removesuffix('ExecutionProvider')}"
                rows.append(
                    _guarded(
                        Row("onnxruntime", label, batch),
                        lambda row, p=provider: _ort(row, onnx_path, p, plan, gflop),
                    )
                )
        return rows


def _export(path: Path, plan: Plan) -> None:
    from backends.shapes import ShapeProfile
    from dkt import dktnet
    from dkt.export.onnx import export_onnx

    top = max(plan.batches)
    profile = ShapeProfile((1, 16, 16), (1, plan.size, plan.size), (top, plan.size, plan.size))
    try:
        export_onnx(dktnet.BUNDLED_MODEL, path, profile=profile, exporter=plan.exporter)
    except Exception:  # no onnxscript there, say: the TorchScript exporter needs nothing more
        if plan.exporter == "torchscript":
            raise
        traceback.print_exc(file=sys.stderr)
        export_onnx(dktnet.BUNDLED_MODEL, path, profile=profile, exporter="torchscript")


def _ort(row: Row, path: Path, provider: str, plan: Plan, gflop: float) -> None:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=[provider])
    loaded = session.get_providers()[0]
    if loaded != provider:
        row.status = f"skipped: {provider} did not load (ran {loaded})"
        return
    composite, mask = (t.numpy() for t in inputs(row.batch, plan.size, False))
    feeds = {"composite": composite, "mask": mask, "strength": np.ones(1, np.float32)}
    _fill_speed(row, time_runs(lambda: session.run(None, feeds), plan), gflop, plan)
    (out,) = session.run(None, feeds)
    outside = np.broadcast_to(mask == 0, out.shape)
    row.background_exact["random"] = bool(np.array_equal(out[outside], composite[outside]))


# ------------------------------------------------------------------------------ training


def training_rows(plan: Plan) -> list[Row]:
    rows = []
    for config in ("dktnet-cd16x", "dktnet-relu3", "dktnet-vgg19"):
        needs_file = _needs_encoder_file(config)
        init = plan.encoder_init if needs_file else None
        if needs_file and init is None:
            why = "skipped: needs --encoder-init cd16x_encoder_relu4_1.pth (its frozen encoder)"
            rows.append(Row("training", f"train {config} bf16", plan.train_batch, why))
            continue
        rows.append(
            _guarded(
                Row("training", f"train {config} bf16", plan.train_batch),
                lambda row, c=config, i=init: _train(row, c, i, plan),
            )
        )
    return rows


def _needs_encoder_file(config: str) -> bool:
    """Whether the preset's frozen encoder loads from a file (the Trainer refuses it without)."""
    from dkt.dktnet.encoders import encoder_kind
    from training.config import load_config

    return encoder_kind(load_config(config).model.encoder).pretrained == "distilled"


def _train(row: Row, config: str, encoder_init: str | None, plan: Plan) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    from training.config import load_config
    from training.distributed import init_distributed
    from training.loop import Trainer
    from training.lossnet import load_loss_network

    sets = [
        f"data.size={plan.train_size}",
        f"data.batch_size={plan.train_batch}",
        "adversarial.warmup_steps=0",
        "run.tensorboard=false",
        "run.precision=bf16",
        "run.decoder_init=null",
        f"run.encoder_init={encoder_init or 'null'}",
    ]
    cfg = load_config(config, sets)
    dist = init_distributed(str(plan.device))
    trainer = Trainer(cfg, load_loss_network("random:0"), dist)
    batch = _train_batch(plan)
    if plan.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with FlopCounterMode(display=False) as counter:
        trainer.step(batch, 1)  # counted once (forward and backward), untimed
    step_flop = counter.get_total_flops()
    times = []
    for step in range(2, 2 + plan.warmup + plan.train_steps):
        _sync(plan.device)
        start = time.perf_counter()
        trainer.step(batch, step)
        _sync(plan.device)
        times.append(time.perf_counter() - start)
    median = statistics.median(times[plan.warmup :])
    row.median_ms = median * 1000.0
    row.images_per_s = plan.train_batch / median
    row.tflops = step_flop / median / 1e12
    row.note = f"{1 / median:.2f} steps/s; loss network random:0 (seeded random weights)"
    if plan.device.type == "cuda":
        row.peak_memory_mib = torch.cuda.max_memory_allocated() / 2**20


def _train_batch(plan: Plan) -> dict[str, torch.Tensor]:
    composite, mask = inputs(plan.train_batch, plan.train_size, False)
    painting = torch.rand_like(composite)
    return {"composite": composite, "mask": mask, "painting": painting}


# ------------------------------------------------------------------------------ report


def _fill_speed(row: Row, median_ms: float, gflop: float, plan: Plan) -> None:
    row.median_ms = median_ms
    row.images_per_s = row.batch * 1000.0 / median_ms
    row.tflops = gflop * row.images_per_s / 1000.0


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]


def _guarded(row: Row, fill: Callable[[Row], None]) -> Row:
    """Run one row; any failure is that row's ``error``, with the traceback on stderr."""
    try:
        fill(row)
    except Exception as exc:  # one row's failure must not cost the others
        row.status = f"error: {_one_line(exc)}"
        traceback.print_exc(file=sys.stderr)
    finally:
        with contextlib.suppress(Exception):
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    return row


def bf16_peak(device: torch.device, override: float | None) -> tuple[float | None, str]:
    if override:
        return override, "given with --peak-tflops"
    if device.type != "cuda":
        return None, "no GPU"
    name = torch.cuda.get_device_name(device)
    for key, peak in BF16_PEAK_TFLOPS.items():
        if key in name:
            return peak, f"{name}: dense bf16 peak of the {key} table entry"
    return None, f"{name}: not in the table (pass --peak-tflops)"


def environment(plan: Plan) -> dict[str, Any]:
    info: dict[str, Any] = {
        "torch": torch.__version__,
        "dry_run": plan.dry_run,
        "device": str(plan.device),
        "python": sys.version.split()[0],
    }
    if plan.device.type == "cuda":
        props = torch.cuda.get_device_properties(plan.device)
        info.update(
            gpu=props.name,
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
        )
    with contextlib.suppress(ImportError):
        import onnxruntime as ort

        info["onnxruntime"] = ort.__version__
        info["ort_providers"] = ort.get_available_providers()
    return info


def table(rows: list[Row], peak: float | None) -> str:
    head = [
        "group",
        "row",
        "batch",
        "images/s",
        "ms",
        "TFLOP/s",
        "of peak",
        "max|d| rand",
        "max|d| flat",
        "bg exact",
        "peak MiB",
        "status / note",
    ]
    lines = [head]
    for r in rows:
        exact = (
            "-" if not r.background_exact else ("yes" if all(r.background_exact.values()) else "NO")
        )
        lines.append(
            [
                r.group,
                r.name,
                str(r.batch),
                _f(r.images_per_s, 2),
                _f(r.median_ms, 1),
                _f(r.tflops, 2),
                "-" if r.tflops is None or not peak else f"{r.tflops / peak:.1%}",
                _e(r.max_abs_diff.get("random")),
                _e(r.max_abs_diff.get("flat_object")),
                exact,
                _f(r.peak_memory_mib, 0),
                r.status if r.status != "ok" else (r.note or "ok"),
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def _f(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _e(value: float | None) -> str:
    return "-" if value is None else f"{value:.1e}"


def run(plan: Plan, peak_override: float | None) -> dict[str, Any]:
    from dkt import dktnet
    from dkt.export.benchmark import count_gflop, model_config

    started = time.perf_counter()
    gflop = count_gflop(model_config(dktnet.BUNDLED_MODEL), plan.size)
    model = load_model(plan.device)
    rows = eager_rows(model, plan, gflop)
    rows += compiled_rows(model, plan, gflop)
    del model
    rows += ort_rows(plan, gflop)
    rows += training_rows(plan)
    peak, peak_source = bf16_peak(plan.device, peak_override)
    for row in rows:
        if row.tflops is not None and peak:
            row.peak_fraction = row.tflops / peak
    return {
        "environment": environment(plan),
        "size": plan.size,
        "gflop_per_image": gflop,
        "bf16_peak_tflops": peak,
        "peak_source": peak_source,
        "seconds": round(time.perf_counter() - started, 1),
        "rows": [asdict(r) for r in rows],
        "table": table(rows, peak),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("gpu_check.json"))
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes: check the script")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--train-size", type=int, default=256)
    parser.add_argument("--train-batch", type=int, default=8)
    parser.add_argument("--train-steps", type=int, default=10)
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument(
        "--encoder-init", default=None,
        help="the distilled encoder (cd16x_encoder_relu4_1.pth) for the dktnet-cd16x training row",
    )  # fmt: skip
    args = parser.parse_args(argv)
    plan = make_plan(args)
    torch.manual_seed(0)
    report = run(plan, args.peak_tflops)
    from dkt.atomic import atomic_write_bytes

    atomic_write_bytes(args.out, (json.dumps(report, indent=2) + "\n").encode("utf-8"))
    print(report["table"])
    print(
        f"\n{report['environment']} | {report['gflop_per_image']:.1f} GFLOP/image at "
        f"{plan.size} px | bf16 peak {report['bf16_peak_tflops']} ({report['peak_source']}) | "
        f"{report['seconds']} s | wrote {args.out}"
    )
    errors = [r for r in report["rows"] if r["status"].startswith("error")]
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
