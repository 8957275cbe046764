"""Eager fp32 vs ONNX Runtime (fp32 and fp16 exports), both model configs: the parity numbers.

    PYTHONPATH=. python benchmarks/export_parity.py [--exporter dynamo] [--images DIR]

No trained model exists yet, so the models are seeded random-weight ones, in two variants:
``random`` as initialised (its decoder's raw output is small, about 0.04 +- 0.03, so it
understates fp16 error), and ``calibrated``, the same network with the last convolution
rescaled so its raw output on the demo sample has mean 0.5 and std 0.25 like a trained
model's image. Cases: random composites with soft masks at the opt size and at sizes that
are not multiples of 8, the built-in demo sample, and real composites from ``--images``
(default: ../shared/data/example_composites when present). Run ``dkt export --verify`` on a
trained model for its own numbers.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

from backends.shapes import ShapeProfile
from dkt.dktnet.checkpoint import save_checkpoint
from dkt.dktnet.config import DKTNetConfig
from dkt.dktnet.model import DKTNet
from dkt.export.onnx import export_onnx
from dkt.export.parity import demo_images, folder_images, real_cases, verify_export

CONFIGS = {"lite": DKTNetConfig(), "vgg19": DKTNetConfig(encoder="vgg19", kernel_dim=64)}
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "example_composites"


@torch.no_grad()
def calibrate(model: DKTNet) -> None:
    """Rescale the last conv so the raw output on the demo sample is about N(0.5, 0.25)."""
    ((_, composite, mask),) = real_cases(demo_images(), None, model.config.working_size)
    raw = model.unblended(torch.from_numpy(composite), torch.from_numpy(mask))
    scale = 0.25 / raw.std().item()
    model.decoder.out.weight.mul_(scale)
    model.decoder.out.bias.mul_(scale).add_(0.5 - raw.mean().item() * scale)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="lite,vgg19")
    parser.add_argument("--exporter", default="dynamo", choices=("dynamo", "torchscript"))
    parser.add_argument("--images", type=Path, default=SHARED if SHARED.is_dir() else None)
    args = parser.parse_args()
    images = demo_images() + (folder_images(args.images, limit=4) if args.images else [])
    profile = ShapeProfile((1, 16, 16), (1, 256, 256), (2, 512, 512))
    print("| config | weights | precision | max abs | mean abs | min PSNR dB | background |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="dkt-parity-") as tmp:
        for name in args.configs.split(","):
            for variant in ("random", "calibrated"):
                torch.manual_seed(0)
                model = DKTNet(CONFIGS[name]).eval()
                if variant == "calibrated":
                    calibrate(model)
                checkpoint = Path(tmp) / f"{name}-{variant}.safetensors"
                save_checkpoint(checkpoint, model)
                for precision in ("fp32", "fp16"):
                    out = Path(tmp) / f"{name}-{variant}-{precision}.onnx"
                    export_onnx(
                        checkpoint,
                        out,
                        profile=profile,
                        precision=precision,
                        exporter=args.exporter,
                    )
                    report = verify_export(
                        checkpoint,
                        out,
                        precision=precision,
                        profile=profile,
                        images=images,
                        working_size=256,
                    )
                    exact = all(c.background_exact for c in report.cases)
                    print(
                        f"| {name} | {variant} | {precision} | {report.max_abs:.2e} | "
                        f"{report.mean_abs:.2e} | {report.min_psnr:.1f} | "
                        f"{'exact' if exact else 'CHANGED'} |",
                        flush=True,
                    )
                    print(f"  {len(report.cases)} cases, passed={report.passed}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
