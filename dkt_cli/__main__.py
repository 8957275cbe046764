"""``python -m dkt_cli`` runs the same application as ``dkt`` and ``python -m dkt``."""

from dkt_cli.app import main

main()
