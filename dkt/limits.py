"""The size limits that several packages share, named for what each one bounds.

They used to be four constants all called ``MIN_SIDE`` (8, 9, 16 and 32) meaning four
different things; each now says which side it limits and why it has its value. The defaults
of the harmonizing options live here too: the command line shows them in ``--help``, which
must answer without importing numpy or torch.
"""

from __future__ import annotations

#: The deepest stride of any encoder: inputs are padded to a multiple of it.
MODEL_STRIDE = 8
#: The side the model pads a smaller input up to: the stride-8 map needs two positions for
#: its reflection-padded convolutions.
MODEL_PADDED_SIDE = 2 * MODEL_STRIDE
#: The smallest image side a backend accepts: two positions at stride 8 before the model pads
#: to a multiple of 8, i.e. 9 px.
MIN_IMAGE_SIDE = MODEL_STRIDE + 1
#: The smallest side a working shape is scaled down to, so a thin strip keeps a few pixels
#: across at any working size.
MIN_WORKING_SIDE = 8
#: The smallest side the training discriminator scores (its receptive field).
MIN_DISCRIMINATOR_SIDE = 32

#: Pillow's own hard limit (twice ``Image.MAX_IMAGE_PIXELS``): about 179 Mpx, far above
#: any real painting or photo, far below what a crafted file can claim in its header.
DEFAULT_MAX_PIXELS: int = 178_956_970
#: Default memory for images in flight: room for four 24-megapixel photos at a working size
#: of 512 (or some thirty 1024x768 images run at full size), so that one is in the model
#: while the next is decoded and the last encoded; small next to the model's own working
#: memory at those sizes.
DEFAULT_MAX_INFLIGHT_MB = 1024
#: How a result reaches full resolution: a local colour transform (keeps fine detail), or
#: the upsampled change.
UPSAMPLERS: tuple[str, ...] = ("guided", "residual")
