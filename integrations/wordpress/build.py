"""Build the WordPress plugin's zip: ``python3 integrations/wordpress/build.py OUT.zip``.

The archive holds one folder, ``paradarum/``, as WordPress expects of an uploaded
plugin (Plugins → Add New → Upload Plugin). Entries are sorted and dated by the
plugin's version rather than by the clock, so the same sources give the same zip.
Standard library only: ``make wordpress-plugin`` runs it, and so do the tests that
install the plugin from its zip.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

PLUGIN = Path(__file__).resolve().parent / "paradarum"
STAMP = (2026, 1, 1, 0, 0, 0)


def build(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    files = sorted(
        path
        for path in PLUGIN.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.parts)
    )
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            name = f"paradarum/{path.relative_to(PLUGIN).as_posix()}"
            entry = zipfile.ZipInfo(name, date_time=STAMP)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, path.read_bytes())
    return out


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("dist/paradarum-wordpress.zip")
    print(build(target))
