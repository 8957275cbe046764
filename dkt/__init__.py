"""dkt: painterly image harmonization with DKTNet."""

from dkt._version import __version__

__all__ = ["__version__"]
