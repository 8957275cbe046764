"""Make the bundled model file from a training run's checkpoints.

``dkt train`` records in each checkpoint how that run went, and the run it was initialised
from only by name and step count. The bundled model was trained in stages (a run, then
fine-tunes of it with ``--init``), so this script writes one file whose provenance lists every
stage (steps, seconds, loss weights, loss network) and their totals, sets the working size the
harmonizer uses by default, and adds the credits of the pretrained tensors it embeds.

    python scripts/package_bundled.py runs/c/model.safetensors \\
        --stage runs/a/model.safetensors --stage runs/b/model.safetensors \\
        --working-size 512 -o dkt/dktnet/weights/dktnet-cd16x.safetensors
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from dkt.dktnet.checkpoint import (
    file_sha256,
    load_checkpoint,
    read_checkpoint_info,
    save_checkpoint,
)

#: Credits of the pretrained tensors a vgg19-relu3 model embeds (../shared/weights/MANIFEST.md).
RELU3_CREDITS = (
    "Frozen encoder: VGG-19 weights by K. Simonyan and A. Zisserman (Visual Geometry Group, "
    "Oxford), CC BY 4.0, in the 'normalised' form of Li et al., Universal Style Transfer via "
    "Feature Transforms (NeurIPS 2017); decoder initialised from the relu3_1 feature inverter of "
    "Li et al.; both files from the public repository pietrocarbo/deep-transfer (Apache-2.0), "
    "commit e87e72f9f8612062431a82289b758ef570da52c3, models/autoencoder_vgg19/vgg19_3/."
)
#: Credits of the pretrained tensors a cd16x-relu4 model embeds (the distilled network).
CD16X_CREDITS = (
    "Frozen encoder and decoder initialisation: the distilled VGG-19 (16x fewer filters) and "
    "its relu4_1 decoder of H. Wang, Y. Li, Y. Wang, H. Hu, M.-H. Yang, Collaborative "
    "Distillation for Ultra-Resolution Universal Style Transfer (CVPR 2020), public repository "
    "MingSun-Tse/Collaborative-Distillation (MIT, Copyright (c) 2020 Huan Wang), commit 4a269dc, "
    "trained_models/wct_se_16x_new/ and wct_se_16x_new_sd/. It is an approximation distilled "
    "from the normalised VGG-19 (K. Simonyan and A. Zisserman, VGG Oxford, CC BY 4.0; "
    "normalisation by Li et al., NeurIPS 2017), not VGG-19 itself."
)
#: Encoder name -> the credits of the pretrained tensors a model with it embeds.
CREDITS = {"vgg19-relu3": RELU3_CREDITS, "cd16x-relu4": CD16X_CREDITS}


def stage_record(path: Path) -> dict[str, Any]:
    """What one training stage's checkpoint says about how it was made."""
    prov = read_checkpoint_info(path).provenance
    config = prov.get("config", {})
    return {
        "file": path.name,
        "sha256": file_sha256(path),
        "steps": prov.get("steps"),
        "train_seconds": prov.get("train_seconds"),
        "samples_seen": prov.get("samples_seen"),
        "size": prov.get("size"),
        "batch_size": config.get("data", {}).get("batch_size"),
        "loss": config.get("loss"),
        "optim": config.get("optim"),
        "initialised_from": (prov.get("initialised_from") or {}).get("file"),
        "device": prov.get("device"),
    }


def package(final: Path, stages: list[Path], working_size: int | None, out: Path) -> None:
    model = load_checkpoint(final)
    if working_size:
        model.config = dataclasses.replace(model.config, working_size=working_size)
    records = [stage_record(p) for p in [*stages, final]]
    provenance = dict(model.provenance)
    provenance["stages"] = records
    provenance["total_steps"] = sum(r["steps"] or 0 for r in records)
    provenance["total_train_seconds"] = round(sum(r["train_seconds"] or 0 for r in records), 1)
    provenance["trained_at_size"] = provenance.get("size")
    provenance["credits"] = CREDITS.get(model.config.encoder)
    save_checkpoint(out, model, provenance=provenance)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("final", type=Path, help="the last stage's checkpoint")
    parser.add_argument(
        "--stage", type=Path, action="append", default=[],
        help="an earlier stage's checkpoint, oldest first (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--working-size", type=int, default=None,
        help="the harmonizer's default working size (long side)",
    )  # fmt: skip
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    package(args.final, args.stage, args.working_size, args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
