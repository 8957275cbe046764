"""Export fixtures shared with the other test folders."""

from tests.export_fixtures import (  # noqa: F401
    dynamo_onnx,
    fp16_onnx,
    tiny_checkpoint,
    torchscript_odd_onnx,
)
