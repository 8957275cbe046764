"""How composites are drawn unless told otherwise.

Plain numbers in a module that imports nothing, so a command's ``--help`` can show them
without importing torch, and :class:`training.data.CompositeConfig` and the command agree.
"""

from __future__ import annotations

#: Objects covering less or more of their own photo than this are left out.
OBJECT_RATIO: tuple[float, float] = (0.05, 0.30)
#: Side of the square composites.
COMPOSITE_SIZE = 256
#: Area of the pasted object, as a fraction of the composite.
FG_RATIO: tuple[float, float] = (0.05, 0.30)
#: Chance of a random placement (else the object keeps its place in the photo).
RANDOM_POSITION_PROB = 0.5
#: Chance of a mirror flip, for painting and object separately.
FLIP_PROB = 0.5
