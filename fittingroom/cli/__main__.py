"""``python -m fittingroom.cli`` = the ``fittingroom`` command."""

from fittingroom.cli import main

main()
