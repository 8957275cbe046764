"""Load benchmark for ``dkt serve``: requests/s and latency with 1, 4 and 16 concurrent clients.

    python benchmarks/serve_load.py                     # 512 px, the bundled model, 1/4/16 clients
    python benchmarks/serve_load.py --quick             # 64 px, 1 and 2 clients: a smoke test
    python benchmarks/serve_load.py --json results.json --requests 64

It starts the server as a user does (``python -m dkt serve``: uvicorn, in a subprocess on a
free port, with ``--max-concurrent`` runs and a queue long enough for the largest client
count unless ``--max-queue`` says otherwise), waits for ``/v1/health``, sends ``--warmup``
requests, then for each client count sends ``--requests`` requests from that many clients
at once, each client sending its next request as soon as its last one is answered. A 503
(server busy) is counted and retried after 0.1 s; its wait is part of that request's
latency, as it would be for a user.

The input is a real composite and its mask from ``../shared/data/example_composites`` when
that folder exists (the first whose long side reaches ``--size``), resized to a long side
of ``--size``, else the demo sample :func:`dkt.demo.samples.make_demo_sample`; the working
size is ``--size`` as well, so the network runs at 512 px by default. Client and server
share this machine's cores (the client's share is small: it only sends bytes), and the
report gives the load average before and after each client count, because other jobs on
a shared machine change the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EXAMPLES = ROOT.parent / "shared" / "data" / "example_composites"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _resized(composite: np.ndarray, mask: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    height, width = mask.shape
    scale = size / max(height, width)
    shape = (max(8, round(width * scale)), max(8, round(height * scale)))
    if shape == (width, height):
        return composite, mask
    image = Image.fromarray(composite).resize(shape, Image.Resampling.LANCZOS)
    small_mask = Image.fromarray(mask).resize(shape, Image.Resampling.BILINEAR)
    return np.asarray(image), np.asarray(small_mask)


def sample(size: int) -> tuple[bytes, bytes, str]:
    """The composite and mask to send, as PNG bytes, and a line saying what they are."""
    from dkt.imaging.imageio import read_image, read_mask

    if EXAMPLES.is_dir():
        for comp in sorted(EXAMPLES.glob("*_comp.*")):
            mask_path = comp.with_name(comp.name.replace("_comp", "_mask")).with_suffix(".png")
            if not mask_path.is_file():
                continue
            composite = read_image(comp)
            if max(composite.shape[:2]) < size:
                continue
            mask = np.round(read_mask(mask_path, expected_hw=composite.shape[:2]) * 255)
            composite, mask = _resized(composite, mask.astype(np.uint8), size)
            h, w = mask.shape
            return _png(composite), _png(mask), f"image: {comp.name} and its mask at {w}x{h}"
    from dkt.demo.samples import make_demo_sample

    demo = make_demo_sample(max(32, round(size * 0.75)), max(32, size), seed=0)
    h, w = demo.mask.shape
    note = f"image: the demo sample (make_demo_sample) at {w}x{h}"
    return _png(np.asarray(demo.composite)), _png(np.asarray(demo.mask)), note


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def server(args: argparse.Namespace, max_queue: int):
    """``python -m dkt serve`` on a free port until the block ends; yields its base URL."""
    import httpx

    port = _free_port()
    argv = [sys.executable, "-m", "dkt", "serve", "--port", str(port), "--device", args.device,
            "--size", str(args.size), "--max-concurrent", str(args.max_concurrent),
            "--max-queue", str(max_queue)]  # fmt: skip
    if args.model is not None:
        argv += ["--model", str(args.model)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    with tempfile.TemporaryFile("w+") as output:
        process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                if process.poll() is not None:
                    output.seek(0)
                    raise SystemExit(
                        f"dkt serve exited with {process.returncode}:\n{output.read()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(base + "/v1/health", timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise SystemExit("dkt serve did not answer /v1/health in 120 s")
                time.sleep(0.2)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


async def run_clients(
    base: str, files: dict[str, tuple[str, bytes, str]], fields: dict[str, str],
    clients: int, requests: int,
) -> dict[str, object]:  # fmt: skip
    """``requests`` requests from ``clients`` concurrent clients; latencies and counts."""
    import httpx

    latencies: list[float] = []
    model_seconds: list[float] = []
    busy = [0]
    left = [requests]
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(http: httpx.AsyncClient) -> None:
        while left[0] > 0:
            left[0] -= 1
            started = time.perf_counter()
            while True:
                reply = await http.post("/v1/harmonize", files=files, data=fields)
                if reply.status_code != 503:
                    break
                busy[0] += 1
                await asyncio.sleep(0.1)
            if reply.status_code != 200:
                raise SystemExit(f"request failed: {reply.status_code} {reply.text}")
            latencies.append(time.perf_counter() - started)
            model_seconds.append(float(reply.headers["x-dkt-seconds-model"]))

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=600) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        wall = time.perf_counter() - started
    return {
        "clients": clients,
        "requests": len(latencies),
        "busy_503": busy[0],
        "wall_s": wall,
        "requests_per_s": len(latencies) / wall,
        "p50_ms": float(np.percentile(latencies, 50) * 1000),
        "p95_ms": float(np.percentile(latencies, 95) * 1000),
        "model_s_mean": float(np.mean(model_seconds)),
    }


def render(results: dict[str, object]) -> str:
    lines = [*results["header"], "",
             "| clients | requests | 503 retries | wall s | requests/s | p50 latency ms "
             "| p95 latency ms | model s per request | load avg before -> after |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in results["rows"]:
        lines.append(
            f"| {row['clients']} | {row['requests']} | {row['busy_503']} | {row['wall_s']:.1f} "
            f"| {row['requests_per_s']:.2f} | {row['p50_ms']:.0f} | {row['p95_ms']:.0f} "
            f"| {row['model_s_mean']:.3f} | {row['load']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512, help="image long side and working size")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--requests", type=int, default=32, help="requests per client count")
    parser.add_argument("--warmup", type=int, default=2, help="requests before timing")
    parser.add_argument("--model", type=Path, default=None, help="default: the bundled model")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-concurrent", type=int, default=1)
    parser.add_argument("--max-queue", type=int, default=None,
                        help="default: the largest client count (no client refused)")  # fmt: skip
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--quick", action="store_true",
                        help="64 px, 1 and 2 clients, 4 requests each: a smoke test")  # fmt: skip
    args = parser.parse_args()
    if args.quick:
        args.size, args.clients, args.requests, args.warmup = 64, [1, 2], 4, 1
    max_queue = args.max_queue if args.max_queue is not None else max(args.clients)
    composite, mask, image_note = sample(args.size)
    files = {"composite": ("composite.png", composite, "image/png"),
             "mask": ("mask.png", mask, "image/png")}  # fmt: skip
    fields = {"size": str(args.size)}
    from dkt import dktnet

    model = args.model or dktnet.BUNDLED_MODEL
    header = [
        f"machine: {os.cpu_count()} CPUs, load average {_load()} at start (1/5/15 min); "
        "client and server share these cores",
        f"model: {model} on {args.device}; working size {args.size}",
        image_note + f" (PNG, {len(composite) / 1024:.0f} KiB + {len(mask) / 1024:.0f} KiB)",
        f"server: dkt serve --max-concurrent {args.max_concurrent} --max-queue {max_queue}; "
        f"{args.requests} requests per row after {args.warmup} warm-up request(s); "
        "latency is from sending to the whole reply, 503 retries included",
    ]
    rows = []
    with server(args, max_queue) as base:
        _log(f"server up at {base}; warming up")
        if args.warmup:
            asyncio.run(run_clients(base, files, fields, 1, args.warmup))
        for clients in args.clients:
            _log(f"{clients} client(s): {args.requests} requests")
            before = _load()
            row = asyncio.run(run_clients(base, files, fields, clients, args.requests))
            rows.append({**row, "load": f"{before} -> {_load()}"})
    results = {"header": header, "rows": rows, "size": args.size, "model": str(model)}
    print(render(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
