"""``dkt benchmark``: the same batches through several backends, side by side."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from backends.base import Backend, LoadOptions
from backends.registry import open_backend
from dkt import dktnet
from dkt.errors import DktError
from dkt.export.benchmark import (
    BenchmarkResult,
    benchmark_backends,
    count_gflop,
    model_config,
    model_for_backend,
)
from dkt_cli.console import EXIT_FAILED, err, fail, human_bytes, print_json, stderr_console
from dkt_cli.options import AllowCpuFallback, Device


def parse_backends(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        fail("--backends needs at least one name, e.g. torch,onnxruntime")
    if len(set(names)) != len(names):
        fail(f"--backends lists a backend twice: {text}")
    return names


def _table(results: list[BenchmarkResult]) -> Table:
    first = results[0]
    table = Table(
        title=f"batch {first.batch} x {first.size}x{first.size}, {first.runs} runs each after "
        f"{first.warmup} warm-up, backends taking turns run by run",
        title_justify="left",
    )
    for column in (
        "backend",
        "device",
        "prec",
        "median ms",
        "p10-p90 ms",
        "images/s",
        "GFLOP/image",
        "GFLOP/s",
        "peak memory",
    ):
        numeric = "ms" in column or "/" in column
        table.add_column(column, justify="right" if numeric else "left")
    for r in results:
        providers = r.description.get("providers")
        device = providers[0].removesuffix("ExecutionProvider") if providers else r.device
        peak = human_bytes(r.peak_memory_bytes) if r.peak_memory_bytes is not None else "-"
        table.add_row(
            r.backend,
            device,
            r.precision,
            f"{r.median_ms:.1f}",
            f"{r.p10_ms:.1f}-{r.p90_ms:.1f}",
            f"{r.images_per_s:.2f}",
            "-" if r.gflop_per_image is None else f"{r.gflop_per_image:.1f}",
            "-" if r.gflop_per_s is None else f"{r.gflop_per_s:.1f}",
            peak,
        )
    return table


def benchmark(
    model: Annotated[
        list[Path] | None,
        typer.Option(
            "--model",
            "-m",
            help="Model file(s); repeat for one per backend. A "
            ".safetensors is exported on the fly for backends that need another "
            "format. Default: the bundled model.",
        ),
    ] = None,
    backends: Annotated[
        str, typer.Option(help="Comma-separated backends: torch,onnxruntime,tensorrt.")
    ] = "torch",
    size: Annotated[int, typer.Option(help="Square input side, pixels.", min=9)] = 512,
    batch: Annotated[int, typer.Option(help="Images per run.", min=1)] = 1,
    runs: Annotated[int, typer.Option(help="Timed runs per backend.", min=1)] = 20,
    warmup: Annotated[int, typer.Option(help="Untimed runs first.", min=0)] = 3,
    device: Device = "auto",
    precision: Annotated[
        str, typer.Option(help="fp32, fp16 (bf16: torch only). Exports use it too.")
    ] = "fp32",
    threads: Annotated[
        int | None, typer.Option(help="CPU threads for torch and onnxruntime.", min=1)
    ] = None,
    allow_cpu_fallback: AllowCpuFallback = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Time backends on the same random batches, taking turns run by run: median, spread,
    images/s, GFLOP per image and the GFLOP/s achieved, and peak memory."""
    names = parse_backends(backends)
    models = model or [dktnet.BUNDLED_MODEL]
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dkt-bench-") as tmp, contextlib.ExitStack() as open_:
        engines = []
        for name in names:
            try:
                engines.append(open_.enter_context(_open(name, models, Path(tmp), device,
                                                         precision, batch, size, threads,
                                                         allow_cpu_fallback)))  # fmt: skip
            except DktError as exc:
                errors.append(str(exc))
        if not engines:
            fail(errors[-1])
        for message in errors:
            err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
        results = benchmark_backends(engines, batch=batch, size=size, warmup=warmup, runs=runs,
                                     gflop_per_image=_gflop(models, size))  # fmt: skip
    _finish(results, json_output)
    if errors:
        raise typer.Exit(EXIT_FAILED)


def _open(
    name: str,
    models: list[Path],
    workdir: Path,
    device: str,
    precision: str,
    batch: int,
    size: int,
    threads: int | None,
    allow_cpu_fallback: bool,
) -> Backend:
    """Load ``name``'s model (exported into ``workdir`` on the fly if needed)."""
    path, note = model_for_backend(name, models, workdir, precision=precision, batch=batch,
                                   size=size, device=device)  # fmt: skip
    if note:
        err.print(note, soft_wrap=True)
    # An export's precision is its file's: the one asked for went into the export.
    load = LoadOptions(device, precision if name == "torch" else None, allow_cpu_fallback, threads)
    return open_backend(path, load, backend=name)


def _gflop(models: list[Path], size: int) -> float | None:
    """The model's GFLOP per image, from the first file that records its config."""
    for path in models:
        with contextlib.suppress(DktError, OSError, ValueError):
            config = model_config(path)
            if config is not None:
                return count_gflop(config, size)
    return None


def _finish(results: list[BenchmarkResult], json_output: bool) -> None:
    if json_output:
        print_json({"results": [r.to_dict() for r in results]})
    if results:
        # Off a terminal (a log, CI) rich would cut the table to 80 columns.
        out = err if err.is_terminal else stderr_console(width=140)
        out.print(_table(results))
