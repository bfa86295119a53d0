"""docs/security.md names the test behind each guarantee: every one it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("web", "db", "unit", "e2e", "client", "scale", "browser", "wordpress")
# `web/test_x.py::test_name`, `web/test_x.py::TestClass::test_name`, or `::test_name`
# (the file named before it).
REFERENCE = re.compile(
    r"`((?:" + "|".join(FOLDERS) + r")/[\w/]+\.py)?(?:::(?:(Test\w+)::)?(\w+))?`"
)


def test_every_test_named_in_docs_security_exists():
    named: list[tuple[str, str | None, str | None]] = []
    current: str | None = None
    for match in REFERENCE.finditer((ROOT / "docs" / "security.md").read_text()):
        path, cls, name = match.group(1), match.group(2), match.group(3)
        current = path or current
        if path or name:
            assert current is not None, match.group(0)
            named.append((current, cls, name))
    assert len(named) > 40
    assert {path.partition("/")[0] for path, _, _ in named} >= {"e2e", "client", "scale"}
    for path, cls, name in named:
        source = ROOT / "tests" / path
        assert source.exists(), path
        text = source.read_text()
        if cls:
            assert f"class {cls}" in text, f"{path}::{cls}"
        if name:
            assert f"def {name}(" in text, f"{path}::{name}"
