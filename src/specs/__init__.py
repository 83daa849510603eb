"""specs: run SPEC Engine specifications for real."""

__version__ = "0.1.0"
