"""``python -m dkt.cli`` runs the same application as ``dkt`` and ``python -m dkt``."""

from dkt.cli.app import main

main()
