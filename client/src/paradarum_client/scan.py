"""Find Paradarum API keys in files before they leave the machine: ``paradarum scan``.

A key committed to a repository is a key anyone who reads the repository can use.
This scanner reports each key by file, line and column — and by its 8-character
prefix only, so that its own output (a CI log, a terminal shared on a call) does
not leak the key a second time. Only strings with a valid checksum count: an
example such as ``pdm_`` followed by 28 made-up characters is not reported.

Standard library only, on purpose: the pre-commit hook (``client/hooks/paradarum-scan``)
runs this module on whatever Python runs pre-commit, with nothing installed.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, TextIO

from paradarum_client import keyformat

STDIN = "-"
STDIN_NAME = "<stdin>"
# A NUL byte in the first block means binary (as git and grep decide it).
BINARY_SNIFF = 8192
SKIPPED_DIRECTORIES = frozenset({".git"})


# No slots=True: the hook may run on Python 3.9, like pre-commit itself.
@dataclass(frozen=True)
class Finding:
    """A key in a file: where it is, and the part of it that is safe to show."""

    path: str
    line: int
    column: int
    prefix: str

    def __str__(self) -> str:
        return (
            f"{self.path}:{self.line}:{self.column}: Paradarum API key {self.prefix}… "
            "(revoke it and create a new one)"
        )


def find_in_text(text: str, *, path: str) -> Iterator[Finding]:
    """Every key in ``text`` (valid checksum only); lines and columns count from 1."""
    for match in keyformat.find_keys(text):
        start = match.start()
        line_start = text.rfind("\n", 0, start) + 1
        yield Finding(
            path=path,
            line=text.count("\n", 0, start) + 1,
            column=start - line_start + 1,
            prefix=match.group(0)[: keyformat.DISPLAY_PREFIX_LENGTH],
        )


def is_binary(data: bytes) -> bool:
    return b"\0" in data[:BINARY_SNIFF]


def find_in_bytes(data: bytes, *, path: str) -> Iterator[Finding]:
    if is_binary(data):
        return iter(())
    return find_in_text(data.decode("utf-8", errors="replace"), path=path)


def files_under(top: str, *, on_error: Callable[[str, OSError], None]) -> Iterator[str]:
    """The files under a directory in path order, without descending into ``.git``.

    Symbolic links to directories are not followed (no loops, nothing outside the tree).
    """
    try:
        entries = sorted(os.scandir(top), key=lambda entry: entry.name)
    except OSError as exc:
        on_error(top, exc)
        return
    for entry in entries:
        if entry.name in SKIPPED_DIRECTORIES:
            continue
        if entry.is_dir(follow_symlinks=False):
            yield from files_under(entry.path, on_error=on_error)
        elif entry.is_file():  # a dangling link is neither: it holds no text
            yield entry.path


def run(paths: Sequence[str], *, stdin: BinaryIO, out: TextIO, err: TextIO) -> int:
    """Scan ``paths`` (standard input for none or ``-``), report to ``out``.

    Returns the exit status: 1 when a key was found, else 2 when a path could not be
    read, else 0.
    """
    found = False
    unreadable = False

    def report(findings: Iterator[Finding]) -> None:
        nonlocal found
        for finding in findings:
            found = True
            print(finding, file=out)

    def complain(path: str, exc: OSError) -> None:
        nonlocal unreadable
        unreadable = True
        print(f"paradarum scan: {path}: {exc.strerror or exc}", file=err)

    for given in paths or [STDIN]:
        if given == STDIN:
            report(find_in_bytes(stdin.read(), path=STDIN_NAME))
            continue
        if os.path.isdir(given):
            candidates: Iterator[str] = files_under(given, on_error=complain)
        elif os.path.exists(given):
            candidates = iter([given])
        else:
            complain(given, FileNotFoundError(errno.ENOENT, "no such file or directory"))
            continue
        for candidate in candidates:
            try:
                with open(candidate, "rb") as handle:
                    data = handle.read()
            except OSError as exc:
                complain(candidate, exc)
                continue
            report(find_in_bytes(data, path=candidate))
    if found:
        return 1
    return 2 if unreadable else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``paradarum-scan [PATH...]``: the pre-commit hook's entry point (no Typer needed)."""
    parser = argparse.ArgumentParser(
        prog="paradarum-scan",
        description="Find Paradarum API keys in files (standard input when no path or -).",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH")
    arguments = parser.parse_args(argv)
    return run(arguments.paths, stdin=sys.stdin.buffer, out=sys.stdout, err=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
