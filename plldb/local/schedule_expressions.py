"""EventBridge schedule expressions: rate(), cron() and (EventBridge Scheduler only) at().

The syntax is AWS's, as documented in "Schedule expressions for rules"
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html) and
"Schedule types on EventBridge Scheduler"
(https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo

_RATE = re.compile(r"^rate\((\d+)\s+([a-z]+)\)$")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_CRON = re.compile(r"^cron\((.*)\)$")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}  # JAN -> 1
_DAYS = {d: i for i, d in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), 1)}
_LAST_YEAR = 2199
UTC = timezone.utc


class ExpressionError(ValueError):
    """A schedule expression AWS would refuse (or the offline cloud cannot follow)."""


@dataclass(frozen=True)
class Rate:
    """rate(value unit): every `seconds`, counted from when the rule or schedule is created."""

    text: str
    seconds: int

    def next_after(self, moment: datetime) -> datetime:
        return moment + timedelta(seconds=self.seconds)


@dataclass(frozen=True)
class At:
    """at(yyyy-mm-ddThh:mm:ss): once, at that wall-clock time."""

    text: str
    moment: datetime

    def next_after(self, moment: datetime) -> datetime | None:
        return self.moment if self.moment > moment else None


@dataclass(frozen=True)
class _Field:
    values: frozenset[int]
    any: bool = False  # `?`
    last: bool = False  # `L`
    weekday_near: int | None = None  # day-of-month `NW`
    last_weekday: int | None = None  # day-of-week `NL`
    nth: tuple[int, int] | None = None  # day-of-week `N#k`


@dataclass(frozen=True)
class Cron:
    """cron(minutes hours day-of-month month day-of-week year), evaluated in `zone` (UTC)."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    day_of_month: _Field
    months: frozenset[int]
    day_of_week: _Field
    years: frozenset[int]
    zone: tzinfo = UTC

    def next_after(self, moment: datetime) -> datetime | None:
        """The first matching minute strictly after `moment`; None when none is left."""
        local = moment.astimezone(self.zone).replace(tzinfo=None, second=0, microsecond=0)
        start = local + timedelta(minutes=1)
        day = start.date()
        while day.year <= _LAST_YEAR:
            if day.year not in self.years:
                day = date(day.year + 1, 1, 1)
                continue
            if day.month not in self.months:
                day = _first_of_next_month(day)
                continue
            if self._day_matches(day):
                found = self._time_on(day, start)
                if found is not None:
                    return found.replace(tzinfo=self.zone).astimezone(UTC)
            day += timedelta(days=1)
        return None

    def _time_on(self, day: date, start: datetime) -> datetime | None:
        for hour in sorted(self.hours):
            for minute in sorted(self.minutes):
                candidate = datetime(day.year, day.month, day.day, hour, minute)
                if candidate >= start:
                    return candidate
        return None

    def _day_matches(self, day: date) -> bool:
        if self.day_of_month.any:
            return _day_of_week_matches(self.day_of_week, day)
        return _day_of_month_matches(self.day_of_month, day)


def parse_rule_expression(text: str) -> Rate | Cron:
    """A ScheduleExpression of an AWS::Events::Rule (PutRule): rate() or cron(), in UTC."""
    expression = parse_schedule_expression(text)
    if isinstance(expression, At):
        raise ExpressionError(f"{text}: at() is for EventBridge Scheduler, not for rules")
    return expression


def parse_schedule_expression(text: str, zone: tzinfo = UTC) -> Rate | Cron | At:
    """An EventBridge Scheduler ScheduleExpression; cron() and at() are read in `zone`."""
    text = text.strip()
    if match := _RATE.match(text):
        return _rate(text, int(match[1]), match[2])
    if match := _AT.match(text):
        try:
            moment = datetime.fromisoformat(match[1]).replace(tzinfo=zone)
        except ValueError as error:
            raise ExpressionError(f"{text}: {error}") from None
        return At(text, moment.astimezone(UTC))
    if match := _CRON.match(text):
        return _cron(text, match[1].split(), zone)
    raise ExpressionError(f"{text}: not a rate(...), cron(...) or at(...) expression")


def _rate(text: str, value: int, unit: str) -> Rate:
    singular = unit.removesuffix("s")
    if singular not in _UNITS:
        raise ExpressionError(f"{text}: the unit must be minute(s), hour(s) or day(s)")
    if value < 1:
        raise ExpressionError(f"{text}: the value must be a positive number")
    # AWS: "If the value is equal to 1, then the unit must be singular", plural otherwise.
    if (value == 1) != (unit == singular):
        wanted = singular if value == 1 else f"{singular}s"
        raise ExpressionError(f"{text}: with value {value} the unit must be {wanted}")
    return Rate(text, value * _UNITS[singular])


def _cron(text: str, fields: list[str], zone: tzinfo) -> Cron:
    if len(fields) != 6:
        raise ExpressionError(f"{text}: cron needs six fields, got {len(fields)}")
    minutes, hours, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise ExpressionError(
            f"{text}: exactly one of day-of-month and day-of-week must be ? (AWS's rule)"
        )
    try:
        return Cron(
            text=text,
            minutes=_values(minutes, 0, 59),
            hours=_values(hours, 0, 23),
            day_of_month=_day_of_month(dom),
            months=_values(month, 1, 12, _MONTHS),
            day_of_week=_day_of_week(dow),
            years=_values(year, 1970, _LAST_YEAR),
            zone=zone,
        )
    except ExpressionError as error:
        raise ExpressionError(f"{text}: {error}") from None


def _values(field: str, low: int, high: int, names: dict[str, int] | None = None) -> frozenset:
    found: set[int] = set()
    for item in field.split(","):
        found.update(_item(item, low, high, names or {}))
    return frozenset(found)


def _item(item: str, low: int, high: int, names: dict[str, int]) -> range:
    base, slash, step_text = item.partition("/")
    step = _number(step_text, 1, high - low + 1, {}) if slash else 1
    if base == "*":
        first, last = low, high
    elif "-" in base:
        first_text, _, last_text = base.partition("-")
        first = _number(first_text, low, high, names)
        last = _number(last_text, low, high, names)
        if first > last:
            raise ExpressionError(f"range {base} runs backwards (not followed offline)")
    else:
        first = _number(base, low, high, names)
        last = high if slash else first  # `1/10`: from 1, every 10
    return range(first, last + 1, step)


def _number(text: str, low: int, high: int, names: dict[str, int]) -> int:
    value = names.get(text.upper()) if names else None
    if value is None:
        if not text.isdigit():
            raise ExpressionError(f"{text!r} is not a value from {low} to {high}")
        value = int(text)
    if not low <= value <= high:
        raise ExpressionError(f"{value} is outside {low}-{high}")
    return value


def _day_of_month(field: str) -> _Field:
    if field == "?":
        return _Field(frozenset(), any=True)
    if field == "L":
        return _Field(frozenset(), last=True)
    if match := re.fullmatch(r"(\d{1,2})W", field):
        return _Field(frozenset(), weekday_near=_number(match[1], 1, 31, {}))
    if "L" in field or "W" in field:
        raise ExpressionError(f"day-of-month {field}: only L and NW are followed offline")
    return _Field(_values(field, 1, 31))


def _day_of_week(field: str) -> _Field:
    if field == "?":
        return _Field(frozenset(), any=True)
    if field == "L":
        return _Field(frozenset({7}))  # the last day of the week: Saturday
    if match := re.fullmatch(r"(\w+)L", field):
        return _Field(frozenset(), last_weekday=_number(match[1], 1, 7, _DAYS))
    if match := re.fullmatch(r"(\w+)#(\d)", field):
        return _Field(
            frozenset(), nth=(_number(match[1], 1, 7, _DAYS), _number(match[2], 1, 5, {}))
        )
    if "L" in field.upper() or "#" in field:
        raise ExpressionError(f"day-of-week {field}: L and # combine with one day only")
    return _Field(_values(field, 1, 7, _DAYS))


def _aws_weekday(day: date) -> int:
    return (day.weekday() + 1) % 7 + 1  # AWS counts 1 = SUN ... 7 = SAT


def _day_of_month_matches(field: _Field, day: date) -> bool:
    length = calendar.monthrange(day.year, day.month)[1]
    if field.last:
        return day.day == length
    if field.weekday_near is not None:
        return day == _nearest_weekday(day.year, day.month, min(field.weekday_near, length))
    return day.day in field.values


def _day_of_week_matches(field: _Field, day: date) -> bool:
    weekday = _aws_weekday(day)
    if field.last_weekday is not None:
        length = calendar.monthrange(day.year, day.month)[1]
        return weekday == field.last_weekday and day.day + 7 > length
    if field.nth is not None:
        wanted, nth = field.nth
        return weekday == wanted and (day.day - 1) // 7 + 1 == nth
    return weekday in field.values


def _nearest_weekday(year: int, month: int, day_number: int) -> date:
    """`NW`: the weekday nearest to day N, without leaving the month."""
    day = date(year, month, day_number)
    length = calendar.monthrange(year, month)[1]
    if day.weekday() == 5:  # Saturday: Friday before, or Monday after on the 1st
        return day - timedelta(days=1) if day_number > 1 else day + timedelta(days=2)
    if day.weekday() == 6:  # Sunday: Monday after, or Friday before on the last day
        return day + timedelta(days=1) if day_number < length else day - timedelta(days=2)
    return day


def _first_of_next_month(day: date) -> date:
    return date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)
