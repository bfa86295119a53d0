"""Paradarum: the API-key service behind the Paradarum CDN platform."""

__version__ = "0.1.0"
