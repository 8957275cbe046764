"""``python -m dkt`` runs the same application as the ``dkt`` console script."""

from dkt_cli.app import main

main()
