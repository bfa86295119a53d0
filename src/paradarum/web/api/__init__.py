"""JSON API routes, mounted under ``/api``."""
