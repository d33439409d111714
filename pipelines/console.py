"""Shared rich console so every command prints the same way (stderr for diagnostics)."""

from rich.console import Console

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)
