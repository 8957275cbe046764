"""``python -m dkt`` runs the same application as the ``dkt`` console script."""

from dkt.cli.app import main

main()
