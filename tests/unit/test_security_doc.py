"""docs/security.md names the test behind each guarantee: every one it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = re.compile(r"`((?:web|db|unit)/[\w/]+\.py)?(?:::(\w+))?`")


def test_every_test_named_in_docs_security_exists():
    named: list[tuple[str, str | None]] = []
    current: str | None = None
    for match in REFERENCE.finditer((ROOT / "docs" / "security.md").read_text()):
        path, name = match.group(1), match.group(2)
        current = path or current
        if path or name:
            assert current is not None, match.group(0)
            named.append((current, name))
    assert len(named) > 40
    for path, name in named:
        source = ROOT / "tests" / path
        assert source.exists(), path
        if name:
            assert f"def {name}(" in source.read_text(), f"{path}::{name}"
