"""The version of specs (one place: pyproject reads it, `specs --version` prints it)."""

__version__ = "0.1.0"
