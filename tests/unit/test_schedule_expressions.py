"""Schedule expressions as EventBridge documents and validates them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from plldb.local.schedule_expressions import (
    At,
    Cron,
    ExpressionError,
    Rate,
    parse_rule_expression,
    parse_schedule_expression,
)

UTC = timezone.utc
START = datetime(2024, 1, 31, 23, 59, 30, tzinfo=UTC)  # a Wednesday; 2024 is a leap year


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("rate(1 minute)", 60),
        ("rate(5 minutes)", 300),
        ("rate(1 hour)", 3600),
        ("rate(12 hours)", 43200),
        ("rate(1 day)", 86400),
        ("rate(7 days)", 604800),
    ],
)
def test_valid_rates(text, seconds):
    rate = parse_rule_expression(text)
    assert rate == Rate(text, seconds)
    assert rate.next_after(START) == START + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "text",
    [
        "rate(1 minutes)",  # the docs' own examples of invalid forms: plural for 1 ...
        "rate(5 minute)",  # ... and singular for more than 1
        "rate(1 hours)",
        "rate(5 hour)",
        "rate(2 day)",
        "rate(0 minutes)",
        "rate(-1 minutes)",
        "rate(1.5 hours)",
        "rate(1 second)",
        "rate(2 weeks)",
        "rate(minute)",
        "rate(1minute)",
        "every(1 minute)",
        "",
    ],
)
def test_invalid_rates(text):
    with pytest.raises(ExpressionError):
        parse_rule_expression(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The examples of "Schedule expressions for rules" in the EventBridge User Guide.
        ("cron(0 10 * * ? *)", datetime(2024, 2, 1, 10, 0)),  # 10:00 every day
        ("cron(15 12 * * ? *)", datetime(2024, 2, 1, 12, 15)),
        ("cron(0 18 ? * MON-FRI *)", datetime(2024, 2, 1, 18, 0)),  # Thursday
        ("cron(0 8 1 * ? *)", datetime(2024, 2, 1, 8, 0)),
        ("cron(0/15 * * * ? *)", datetime(2024, 2, 1, 0, 0)),
        ("cron(0/10 * ? * MON-FRI *)", datetime(2024, 2, 1, 0, 0)),
        ("cron(0/5 8-17 ? * MON-FRI *)", datetime(2024, 2, 1, 8, 0)),
        ("cron(0 9 ? * 2#1 *)", datetime(2024, 2, 5, 9, 0)),  # first Monday of February
        ("cron(1/10 * * * ? *)", datetime(2024, 2, 1, 0, 1)),
        ("cron(59 23 * * ? *)", datetime(2024, 2, 1, 23, 59)),  # 23:59:30 is past 23:59
        ("cron(0 8 L * ? *)", datetime(2024, 2, 29, 8, 0)),  # last day, leap year
        ("cron(0 8 ? * 6L *)", datetime(2024, 2, 23, 8, 0)),  # last Friday
        ("cron(0 8 ? * L *)", datetime(2024, 2, 3, 8, 0)),  # Saturday, the week's last day
        ("cron(0 8 3W * ? *)", datetime(2024, 2, 2, 8, 0)),  # the 3rd is a Saturday
        ("cron(0 8 4W * ? *)", datetime(2024, 2, 5, 8, 0)),  # the 4th is a Sunday
        ("cron(0 8 1W JUN ? *)", datetime(2024, 6, 3, 8, 0)),  # 1 June is Saturday: Monday
        ("cron(0 0 1 JAN,JUL ? 2025-2026)", datetime(2025, 1, 1, 0, 0)),
        ("cron(30 6 ? * SUN *)", datetime(2024, 2, 4, 6, 30)),
        ("cron(0 12 29 2 ? *)", datetime(2024, 2, 29, 12, 0)),
    ],
)
def test_cron_next_run(text, expected):
    cron = parse_rule_expression(text)
    assert isinstance(cron, Cron)
    assert cron.next_after(START) == expected.replace(tzinfo=UTC)


def test_cron_keeps_going_after_each_run():
    cron = parse_rule_expression("cron(0/20 * * * ? *)")
    runs, moment = [], START
    for _ in range(4):
        moment = cron.next_after(moment)
        runs.append(moment.strftime("%H:%M"))
    assert runs == ["00:00", "00:20", "00:40", "01:00"]


def test_a_cron_with_no_run_left_has_no_next():
    assert parse_rule_expression("cron(0 0 1 1 ? 1999)").next_after(START) is None


@pytest.mark.parametrize(
    "text",
    [
        "cron(0 10 * * * *)",  # * in both day fields
        "cron(0 10 ? * ? *)",  # ? in both
        "cron(0 10 1 * MON *)",  # a value in both
        "cron(0 10 * * ?)",  # five fields
        "cron(0 10 * * ? * *)",  # seven
        "cron(60 10 * * ? *)",
        "cron(0 24 * * ? *)",
        "cron(0 10 32 * ? *)",
        "cron(0 10 0 * ? *)",
        "cron(0 10 * 13 ? *)",
        "cron(0 10 ? * 8 *)",
        "cron(0 10 ? * FOO *)",
        "cron(0 10 * * ? 1969)",
        "cron(0 10 * * ? 2200)",
        "cron(0 10 ? * 2#6 *)",
        "cron(0 10 ? * # *)",
        "cron(a 10 * * ? *)",
        "cron(0 10 * * ? *",
        "cron(0 5-1 * * ? *)",
        "cron(0/0 * * * ? *)",
    ],
)
def test_invalid_crons(text):
    with pytest.raises(ExpressionError):
        parse_rule_expression(text)


def test_rules_have_no_at_expressions():
    with pytest.raises(ExpressionError, match="Scheduler"):
        parse_rule_expression("at(2024-02-01T10:00:00)")


def test_at_runs_once_in_its_time_zone():
    zone = ZoneInfo("Europe/Paris")
    at = parse_schedule_expression("at(2024-02-01T10:00:00)", zone)
    assert at == At("at(2024-02-01T10:00:00)", datetime(2024, 2, 1, 9, 0, tzinfo=UTC))
    assert at.next_after(START) == datetime(2024, 2, 1, 9, 0, tzinfo=UTC)
    assert at.next_after(at.moment) is None


@pytest.mark.parametrize(
    "text", ["at(2024-02-30T10:00:00)", "at(2024-02-01 10:00:00)", "at(2024-02-01T10:00)"]
)
def test_invalid_at(text):
    with pytest.raises(ExpressionError):
        parse_schedule_expression(text)


def test_scheduler_cron_follows_its_time_zone():
    cron = parse_schedule_expression("cron(0 10 * * ? *)", ZoneInfo("America/New_York"))
    assert cron.next_after(START) == datetime(2024, 2, 1, 15, 0, tzinfo=UTC)
