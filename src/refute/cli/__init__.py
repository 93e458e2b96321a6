"""The `refute` command line."""

from refute.cli.main import cli, main

__all__ = ["cli", "main"]
