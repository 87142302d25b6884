"""``python -m fittingroom.cli ...``: the same command line as the ``fittingroom`` script."""

from fittingroom.cli import main

if __name__ == "__main__":
    main()
