"""Contour: the command-line entry point, the configuration object and the embedded stack."""

__version__ = "0.1.0"
