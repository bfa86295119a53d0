"""``python -m paradarum_client``: the ``paradarum`` command where the script is not on PATH."""

from paradarum_client.cli import main

main()
