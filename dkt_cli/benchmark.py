"""``dkt benchmark``: the same batches through several backends, side by side."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from dkt import dktnet
from dkt.backends.benchmark import BenchmarkResult, benchmark_backend, model_for_backend
from dkt.backends.registry import open_backend
from dkt.cli.console import EXIT_FAILED, err, fail, human_bytes, print_json
from dkt.dktnet.errors import DktError


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
        title=f"batch {first.batch} x {first.size}x{first.size}, "
        f"{first.runs} runs after {first.warmup} warm-up",
        title_justify="left",
    )
    for column in (
        "backend",
        "device",
        "prec",
        "median ms",
        "p10-p90 ms",
        "images/s",
        "peak memory",
    ):
        table.add_column(column, justify="right" if "ms" in column or "/" in column else "left")
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
    device: Annotated[
        str, typer.Option(help="auto, cpu, cuda[:N]; tensorrt[:N] = ORT's TensorRT provider.")
    ] = "auto",
    precision: Annotated[
        str, typer.Option(help="fp32, fp16 (bf16: torch only). Exports use it too.")
    ] = "fp32",
    threads: Annotated[
        int | None, typer.Option(help="CPU threads for torch and onnxruntime.", min=1)
    ] = None,
    allow_cpu_fallback: Annotated[
        bool,
        typer.Option(
            "--allow-cpu-fallback", help="Let onnxruntime run on the CPU if the GPU provider fails."
        ),
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Time backends on the same random batches: median, spread, images/s and peak memory."""
    names = parse_backends(backends)
    models = model or [dktnet.BUNDLED_MODEL]
    results: list[BenchmarkResult] = []
    with tempfile.TemporaryDirectory(prefix="dkt-bench-") as tmp:
        try:
            for name in names:
                path, note = model_for_backend(
                    name,
                    models,
                    Path(tmp),
                    precision=precision,
                    batch=batch,
                    size=size,
                    device=device,
                )
                if note:
                    err.print(note)
                load_precision = precision if name == "torch" else None
                with open_backend(
                    path,
                    backend=name,
                    device=device,
                    precision=load_precision,
                    allow_cpu_fallback=allow_cpu_fallback,
                    threads=threads,
                ) as engine:
                    results.append(
                        benchmark_backend(engine, batch=batch, size=size, warmup=warmup, runs=runs)
                    )
        except DktError as exc:
            if not results:
                fail(str(exc))
            err.print(f"[bold red]error:[/] {escape(str(exc))}")
            _finish(results, json_output)
            raise typer.Exit(EXIT_FAILED) from None
    _finish(results, json_output)


def _finish(results: list[BenchmarkResult], json_output: bool) -> None:
    if json_output:
        print_json({"results": [r.to_dict() for r in results]})
    if results:
        err.print(_table(results))
