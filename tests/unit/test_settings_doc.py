"""docs/operations.md documents every setting: a field added to Settings without a line
there fails this test."""

from __future__ import annotations

import re
from pathlib import Path

from paradarum.config import Settings

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def test_every_setting_is_in_docs_operations():
    text = OPERATIONS.read_text()
    documented = set(re.findall(r"`(PARADARUM_[A-Z0-9_]+)`", text))
    missing = [
        f"PARADARUM_{name.upper()}"
        for name in Settings.model_fields
        if f"PARADARUM_{name.upper()}" not in documented
    ]
    assert missing == [], f"not in docs/operations.md: {', '.join(missing)}"
