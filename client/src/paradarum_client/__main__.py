"""The ``paradarum`` command (``python -m paradarum_client`` where the script is not on
PATH). The library needs httpx alone; the command needs the ``cli`` extra, and says so."""

from __future__ import annotations

import sys

CLI_PACKAGES = {"typer", "rich", "click"}


def main() -> None:
    try:
        from paradarum_client.cli import main as run
    except ImportError as exc:
        if exc.name not in CLI_PACKAGES:
            raise
        sys.exit(
            "Error: the paradarum command needs the client's command-line extra: "
            "pip install 'paradarum-client[cli]'"
        )
    run()


if __name__ == "__main__":
    main()
