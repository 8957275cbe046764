"""The size limits that several packages share, named for what each one bounds.

They used to be four constants all called ``MIN_SIDE`` (8, 9, 16 and 32) meaning four
different things; each now says which side it limits and why it has its value.
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
