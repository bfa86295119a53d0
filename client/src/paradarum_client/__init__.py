"""Paradarum's Python client and the customer ``paradarum`` command.

This distribution depends on httpx only (plus Typer and Rich for the command
line). It is versioned with the Paradarum server, from the same repository.
"""

__version__ = "0.2.0"
