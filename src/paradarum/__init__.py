"""Paradarum: the API-key service behind the Paradarum CDN platform."""

from paradarum_client import __version__

__all__ = ["__version__"]
