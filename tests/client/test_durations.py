"""What the command line takes for spans and moments, how the client checks a grace
period before sending it, and how expiry and daily use are shown. Pure: no server."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest

from paradarum_client import ValidationError, durations
from paradarum_client.chart import usage_chart
from paradarum_client.console import until
from paradarum_client.models import DayUsage, KeyUsage
from paradarum_client.protocol import create_key, create_webhook, grace_minutes

SPANS = [
    ("0", timedelta(0)),
    ("30m", timedelta(minutes=30)),
    ("1h", timedelta(hours=1)),
    ("12h", timedelta(hours=12)),
    ("2d", timedelta(days=2)),
    ("90d", timedelta(days=90)),
    ("1d12h", timedelta(days=1, hours=12)),
    (" 7D ", timedelta(days=7)),
]


@pytest.mark.parametrize(("text", "span"), SPANS)
def test_a_span_is_a_number_and_a_unit(text, span):
    assert durations.span(text) == span


NOT_SPANS = ["", "1", "12", "1 hour", "1.5h", "-1h", "1s", "1w", "h", "soon", "2027-01-31"]


@pytest.mark.parametrize("text", NOT_SPANS)
def test_anything_else_is_not_a_span_and_the_error_says_what_to_type(text):
    with pytest.raises(ValueError, match=r"is not a duration: use a number and a unit") as error:
        durations.span(text)
    assert "30m, 12h or 7d" in str(error.value)


EXPIRIES = [
    ("90d", timedelta(days=90)),
    ("30d", timedelta(days=30)),
    ("12h", timedelta(hours=12)),
    ("2027-01-31", datetime(2027, 2, 1, tzinfo=UTC)),  # through the end of that UTC day
    ("2027-01-31T18:00:00Z", datetime(2027, 1, 31, 18, tzinfo=UTC)),
    ("2027-01-31T18:00:00.250Z", datetime(2027, 1, 31, 18, 0, 0, 250000, tzinfo=UTC)),
    ("2027-01-31T18:00:00+01:00", datetime(2027, 1, 31, 17, tzinfo=UTC)),
    ("2027-01-31 18:00:00z", datetime(2027, 1, 31, 18, tzinfo=UTC)),
]


@pytest.mark.parametrize(("text", "when"), EXPIRIES)
def test_an_expiry_is_a_span_from_now_a_date_or_an_rfc3339_time(text, when):
    assert durations.expiry(text) == when


def test_the_help_of_expires_states_the_same_date_rule():
    """``--help`` is where a person reads what a date means: through that day, UTC, as
    the panel and the docs say, never its start."""
    from typer.testing import CliRunner

    from paradarum_client.cli import build_app

    shown = CliRunner().invoke(build_app(), ["keys", "create", "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    said = " ".join(shown.output.split())
    assert "2027-01-31: the key works through that day, UTC" in said, said
    assert "its start" not in said


NOT_EXPIRIES = [
    ("0", "is now"),
    ("0d", "is now"),
    ("tomorrow", "is not an expiry"),
    ("31.01.2027", "is not an expiry"),
    ("2027-02-30", "is not a date in the calendar"),
    ("2027-01-31T18:00:00", "has no time zone"),
    ("2027-01-31T25:00:00Z", "is not an RFC 3339 time"),
]


@pytest.mark.parametrize(("text", "said"), NOT_EXPIRIES)
def test_an_expiry_that_cannot_be_read_says_why(text, said):
    with pytest.raises(ValueError, match=said):
        durations.expiry(text)


EXPORTED_AT = datetime(2026, 12, 7, 14, 30, tzinfo=UTC)
SINCES = [
    ("7d", EXPORTED_AT - timedelta(days=7)),
    ("12h", EXPORTED_AT - timedelta(hours=12)),
    ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC)),  # the start of that UTC day
    ("2026-12-01T08:00:00+01:00", datetime(2026, 12, 1, 7, tzinfo=UTC)),
]


@pytest.mark.parametrize(("text", "moment"), SINCES)
def test_since_is_a_span_back_from_now_the_start_of_a_date_or_an_rfc3339_time(text, moment):
    assert durations.since(text, now=EXPORTED_AT) == moment


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("yesterday", "is not a time to start from"),
        ("2026-12-01T08:00:00", "has no time zone"),
        ("2026-02-30", "is not a date in the calendar"),
    ],
)
def test_a_since_that_cannot_be_read_says_why(text, said):
    with pytest.raises(ValueError, match=said):
        durations.since(text, now=EXPORTED_AT)


def test_an_unknown_webhook_event_is_refused_naming_the_events_before_anything_is_sent():
    said = re.escape("Not an event: 'api_key.revokd'")
    with pytest.raises(ValidationError, match=said) as refused:
        create_webhook("https://hooks.example.com/", ["api_key.revokd", "api_key.created"])
    assert "api_key.revoked" in refused.value.errors["events"][0]
    call = create_webhook("https://hooks.example.com/", "api_key.revoked")
    assert call.json == {"url": "https://hooks.example.com/", "events": ["api_key.revoked"]}


@pytest.mark.parametrize(
    ("grace", "minutes"),
    [(0, 0), (timedelta(0), 0), (timedelta(hours=1), 60), (timedelta(days=7), 10080)],
)
def test_a_grace_period_is_sent_in_whole_minutes(grace, minutes):
    assert grace_minutes(grace) == minutes


@pytest.mark.parametrize(
    ("grace", "said"),
    [
        (timedelta(days=7, minutes=1), "from 0 to 7 days"),
        (timedelta(minutes=-1), "from 0 to 7 days"),
        (timedelta(seconds=90), "in whole minutes"),
        (60, "must be a timedelta"),
    ],
)
def test_a_grace_period_out_of_range_is_refused_before_anything_is_sent(grace, said):
    with pytest.raises(ValidationError, match=said) as refused:
        grace_minutes(grace)
    assert refused.value.status_code is None and "grace" in refused.value.errors


def test_a_key_without_settings_is_created_with_its_name_only():
    assert create_key("plain").json == {"name": "plain"}
    assert create_key(
        "plain", expires_at=None, allowed_cidrs=None, purge_only=False, zone_ids=None
    ).json == {"name": "plain"}
    body = create_key(
        "set",
        expires_at=datetime(2027, 1, 31),  # naive: UTC
        allowed_cidrs="203.0.113.0/24",
        purge_only=True,
        zone_ids=(3, 4),
    ).json
    assert body == {
        "name": "set",
        "expiresAt": "2027-01-31T00:00:00.000Z",
        "allowedCidrs": ["203.0.113.0/24"],
        "permissions": "purge",
        "zoneIds": [3, 4],
    }


NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("left", "shown"),
    [
        (timedelta(days=6, hours=1), "in 6 days"),
        (timedelta(days=6, hours=23), "in 7 days"),
        (timedelta(days=1), "in 1 day"),
        (timedelta(hours=23, minutes=50), "in 1 day"),
        (timedelta(hours=3), "in 3 hours"),
        (timedelta(minutes=59, seconds=50), "in 1 hour"),
        (timedelta(minutes=12), "in 12 minutes"),
        (timedelta(seconds=5), "in 1 minute"),
        (timedelta(0), "expired"),
        (timedelta(days=-3), "expired"),
    ],
)
def test_expiry_is_shown_as_the_time_left(left, shown):
    assert until(NOW + left, NOW) == shown


def usage(counts: list[tuple[int, int]]) -> KeyUsage:
    first = date(2026, 12, 1) - timedelta(days=len(counts) - 1)
    return KeyUsage(
        key_id=7,
        days=[
            DayUsage(day=first + timedelta(days=n), successes=ok, refusals=no)
            for n, (ok, no) in enumerate(counts)
        ],
    )


def test_the_usage_chart_has_a_bar_per_day_for_the_last_30_days_and_totals():
    counts = [(0, 0)] * 60 + [(n * 10, n % 3) for n in range(29)] + [(1_234_567, 5)]
    lines = usage_chart(usage(counts), width=80)
    days = [line for line in lines if line[:4] == "2026"]
    assert (
        len(days) == 30 and days[0].startswith("2026-11-02") and days[-1].startswith("2026-12-01")
    )
    assert all(len(line) <= 80 for line in lines), lines
    assert days[-1].endswith("1,234,567        5")
    # A day with any use shows, however small next to the busiest.
    assert "█" in days[1] and "░" in days[1] and days[0].split()[1:] == ["0", "0"]
    assert lines[-2] == f"Total: {sum(n * 10 for n in range(29)) + 1_234_567:,} succeeded, " + (
        f"{sum(n % 3 for n in range(29)) + 5} refused."
    )


def test_the_usage_chart_fits_a_narrow_terminal_and_says_when_a_key_was_not_used():
    narrow = usage_chart(usage([(3, 1)] * 30), width=50)
    assert all(len(line) <= 50 for line in narrow), narrow
    unused = usage_chart(usage([(0, 0)] * 90), width=80)
    assert "No requests with this key in the last 30 days." in unused
    assert not any(line.startswith("2026") for line in unused)


def test_a_misspelt_key_setting_is_refused_not_dropped():
    # Dropped, it would give a key without the restriction that was asked for.
    with pytest.raises(TypeError, match="allowed_cidr"):
        create_key("typo", allowed_cidr=["203.0.113.0/24"])
