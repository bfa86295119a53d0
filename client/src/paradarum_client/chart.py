"""A key's daily use as a small text chart: one bar per day, successes then refusals.

Plain lines of text, not a Rich renderable: the chart reads the same in a terminal,
in a pipe, in a CI log and to a screen reader (every bar has its numbers beside it),
and fits the width it is given (80 columns and less). The numbers are exact; a bar
is scaled to the busiest day, and a day with any use gets at least one character.
"""

from __future__ import annotations

from collections.abc import Sequence

from paradarum_client.models import DayUsage, KeyUsage

DAYS = 30
SUCCESS = "█"
REFUSAL = "░"
MAX_BAR = 50
MIN_BAR = 10


def _scaled(count: int, *, busiest: int, width: int) -> int:
    if not count:
        return 0
    return max(1, round(count * width / busiest))


def _bar(day: DayUsage, *, busiest: int, width: int) -> str:
    successes = _scaled(day.successes, busiest=busiest, width=width)
    refusals = _scaled(day.refusals, busiest=busiest, width=width)
    # Rounding both up to one character each could overflow by one: take it from the larger.
    while successes + refusals > width:
        if successes >= refusals:
            successes -= 1
        else:
            refusals -= 1
    return SUCCESS * successes + REFUSAL * refusals


def usage_chart(usage: KeyUsage, *, width: int = 80, days: int = DAYS) -> list[str]:
    """The last ``days`` days of ``usage`` as lines of at most ``width`` characters."""
    shown: Sequence[DayUsage] = usage.days[-days:]
    successes = sum(day.successes for day in shown)
    refusals = sum(day.refusals for day in shown)
    lines = [f"API key {usage.key_id}: requests per UTC day, the last {len(shown)} days", ""]
    # The server writes its counts every 10 seconds: a request just made may be missing.
    footer = [
        f"Total: {successes:,} succeeded, {refusals:,} refused.",
        "Requests of the last 10 s may not be counted yet.",
    ]
    if not successes and not refusals:
        return [*lines, f"No requests with this key in the last {len(shown)} days.", "", *footer]
    ok_width = max(len("succeeded"), *(len(f"{day.successes:,}") for day in shown))
    no_width = max(len("refused"), *(len(f"{day.refusals:,}") for day in shown))
    bar_width = max(MIN_BAR, min(MAX_BAR, width - (10 + 2 + 2 + ok_width + 2 + no_width)))
    busiest = max(day.successes + day.refusals for day in shown)
    lines[-1:-1] = [f"{SUCCESS} succeeded  {REFUSAL} refused"]
    lines.append(
        f"{'day':<10}  {'':<{bar_width}}  {'succeeded':>{ok_width}}  {'refused':>{no_width}}"
    )
    for day in shown:
        lines.append(
            f"{day.day.isoformat()}  {_bar(day, busiest=busiest, width=bar_width):<{bar_width}}  "
            f"{day.successes:>{ok_width},}  {day.refusals:>{no_width},}"
        )
    return [*lines, "", *footer]
