"""``python -m specs``: the same as the ``specs`` command."""

from specs.cli import main

if __name__ == "__main__":
    main()
