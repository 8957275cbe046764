"""``dkt doctor``: what this environment can run, for a user to check and paste into an issue.

The facts come from :func:`dkt.doctor.doctor_report`; this command only lays them out (a
table per section on stderr, like ``dkt info``) or prints them as JSON on stdout.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from dkt.doctor import NOT_FOUND, doctor_report
from dkt_cli.console import EXIT_FAILED, err, fail, human_bytes, print_json


def _table(title: str, rows: Iterator[tuple[str, str]]) -> Table:
    """Aligned lines without borders: they paste into an issue as they are, and a sha256
    still fits on one 80-column line."""
    table = Table(
        show_header=False,
        box=None,
        padding=(0, 0, 0, 2),
        title=title,
        title_justify="left",
        title_style="bold",
    )
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for label, text in rows:
        table.add_row(escape(label), escape(text))
    return table


def _versions(report: dict[str, Any]) -> Iterator[tuple[str, str]]:
    yield from report["versions"].items()
    providers = report["onnxruntime_providers"]
    yield (
        "onnxruntime providers",
        ", ".join(providers) if isinstance(providers, list) else providers,
    )
    yield "python executable", report["python_executable"]


def _cuda(cuda: dict[str, Any]) -> Iterator[tuple[str, str]]:
    build = cuda.get("cuda_version")
    yield "torch CUDA build", build or "none (CPU-only torch)"
    devices = cuda.get("devices") or []
    if not devices:
        yield "devices", "none" + (f" ({cuda['error']})" if cuda.get("error") else "")
    for device in devices:
        yield f"cuda:{device['index']}", f"{device['name']}, {human_bytes(device['memory_bytes'])}"


def _cpu(cpu: dict[str, Any]) -> Iterator[tuple[str, str]]:
    yield "torch threads", str(cpu["torch_threads"])
    yield "CPUs", str(cpu["cpu_count"])


def _weights(weights: dict[str, dict[str, Any]]) -> Iterator[tuple[str, str]]:
    """One row per file: where it is (or why not), then where the lookup looked.

    The lookup's own reason is shown only when a variable named a place: for an empty cache
    it just repeats "looked in", but for a set variable it says what is wrong with its value.
    """
    for key, entry in weights.items():
        where = entry["path"]
        if where != NOT_FOUND and entry.get("source"):
            where += f" (from {entry['source']})"
        looked = entry.get("looked_in") or []
        named = any(p.startswith("$") and not p.endswith("(unset)") for p in looked)
        lines = [entry.get("what", key), where]
        if entry.get("reason") and (named or not looked):
            lines.append(entry["reason"])
        lines += [entry[extra] for extra in ("note", "hint") if entry.get(extra)]
        if looked:
            lines.append("looked in: " + ", ".join(looked))
        yield key, "\n".join(lines)


def _bundled(model: dict[str, Any]) -> Iterator[tuple[str, str]]:
    yield "path", model["path"]
    if "error" in model:
        yield "error", model["error"]
    if "size" in model:
        yield "size", f"{human_bytes(model['size'])} ({model['size']:,} bytes)"
    if "sha256" in model:
        yield "sha256", model["sha256"]
    if "parameters" in model:
        yield "parameters", f"{model['parameters']:,}"


def doctor(
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Check the environment: versions, CUDA devices, threads, pretrained weights, bundled model.

    Missing optional packages and weights are reported, not errors; the exit status is 1 only
    when the bundled model file is missing or unreadable (the install is broken).
    """
    report = doctor_report()
    if json_output:
        print_json(report)
    else:
        for title, rows in (
            ("versions", _versions(report)),
            ("cuda", _cuda(report["cuda"])),
            ("cpu", _cpu(report["cpu"])),
            ("weights", _weights(report["weights"])),
            ("bundled model", _bundled(report["bundled_model"])),
        ):
            err.print(_table(title, rows))
    problem = report["bundled_model"].get("error")
    if problem:
        fail(f"bundled model unusable: {problem}", code=EXIT_FAILED)
