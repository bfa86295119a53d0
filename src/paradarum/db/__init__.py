"""Storage: tables, the per-app database handle and migrations."""
