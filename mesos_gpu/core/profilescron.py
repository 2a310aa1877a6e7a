"""A 5-field cron schedule in a time zone (pure): when GPU profiles switch (`mesos_gpu.core.profiles`).

The fields are the classic crontab(5) ones: minute (0-59), hour (0-23), day of month (1-31), month
(1-12 or jan-dec) and day of week (0-7, 0 and 7 both Sunday, or sun-sat). Each field is `*`, a number,
a range `a-b`, a step `*/n` or `a-b/n`, or a comma-separated list of these. As in Vixie cron, when both
day of month and day of week are restricted (neither starts with `*`), a day matches when EITHER does;
when one starts with `*` (`*` itself, or `*/2`), when BOTH do.

Times are wall-clock times in the schedule's time zone (`zoneinfo`). Across daylight-saving changes: a
time skipped by a spring-forward gap fires at the instant it would have had before the change (02:30
in a gap that jumps 02:00 -> 03:00 fires at 03:30 new time, as `zoneinfo` with fold=0 maps it), and a
time repeated by a fall-back fires once, at its first occurrence. Instants are POSIX seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = ["SEARCH_DAYS", "Cron", "CronError"]

SEARCH_DAYS = 366 * 40 + 2
"""How far (days) `next_after` and `last_at_or_before` look: a day of month on a weekday (`* * 1 4 */7`,
1 April on a Sunday; 29 February on a Monday) recurs within 28 years inside a century and within 40 across
a century year that is not a leap year."""

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (name, lowest, highest, names whose index + offset is the value)
_Spec = tuple[str, int, int, tuple[str, ...], int]
_FIELDS: tuple[_Spec, ...] = (
    ("minute", 0, 59, (), 0), ("hour", 0, 23, (), 0), ("day of month", 1, 31, (), 0),
    ("month", 1, 12, _MONTHS, 1), ("day of week", 0, 7, _DAYS, 0))


class CronError(ValueError):
    """A cron expression that cannot be read; the message says which field and why."""


def _value(text: str, spec: _Spec) -> int:
    name, low, high, names, offset = spec
    lowered = text.lower()
    if lowered in names:
        return names.index(lowered) + offset
    if not (text.isascii() and text.isdigit()):
        raise CronError(f"{name}: {text!r} is not a number" + (f" or a name ({names[0]}-{names[-1]})"
                                                                 if names else ""))
    number = int(text)
    if not low <= number <= high:
        raise CronError(f"{name}: {number} is not from {low} to {high}")
    return number


def _field(text: str, spec: _Spec) -> frozenset[int]:
    name, low, high, _, _ = spec
    values: set[int] = set()
    for part in text.split(","):
        span, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not (step_text.isascii() and step_text.isdigit()) or int(step_text) < 1:
                raise CronError(f"{name}: step {step_text!r} must be a whole number above 0")
            step = int(step_text)
        if span == "*":
            first, last = low, high
        elif "-" in span:
            a, _, b = span.partition("-")
            first = _value(a, spec)
            last = _value(b, spec)
            if first > last:
                raise CronError(f"{name}: range {span!r} runs backwards")
        else:
            first = _value(span, spec)
            last = high if step_text else first     # "5/15": from 5 on, every 15 (as Vixie cron reads it)
        values.update(range(first, last + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Cron:
    """A parsed 5-field expression (`Cron.parse`); `text` is what was given."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday ... 6 = Saturday (7 folded into 0)
    any_day: bool             # the day-of-month field starts with "*"
    any_weekday: bool         # the day-of-week field starts with "*"

    @classmethod
    def parse(cls, text: str) -> Cron:
        """Read `text`; `CronError` (a ValueError) saying what is wrong."""
        if not isinstance(text, str):
            raise CronError("must be a string of 5 fields (minute hour day-of-month month day-of-week)")
        parts = text.split()
        if len(parts) != 5:
            raise CronError(f"has {len(parts)} fields, expected 5 (minute hour day-of-month month "
                            "day-of-week), e.g. \"0 8 * * 1-5\"")
        sets = [_field(part, spec) for part, spec in zip(parts, _FIELDS, strict=True)]
        weekdays = frozenset(day % 7 for day in sets[4])
        return cls(text, sets[0], sets[1], sets[2], sets[3], weekdays,
                   parts[2].startswith("*"), parts[4].startswith("*"))

    def matches_day(self, day: date) -> bool:
        """Whether the schedule fires on local calendar day `day` (at some time)."""
        if day.month not in self.months:
            return False
        in_month = day.day in self.days
        in_week = (day.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:   # a field starting with "*" (e.g. "*/2"): both must match
            return in_month and in_week
        return in_month or in_week      # both restricted: either (Vixie cron)

    def _instants(self, day: date, zone: ZoneInfo) -> list[float]:
        """Every firing instant on local day `day`, sorted (a spring-forward gap may reorder them)."""
        if not self.matches_day(day):
            return []
        return sorted(datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone).timestamp()
                      for hour in self.hours for minute in self.minutes)

    def _days(self, start: date, step: int) -> Iterator[date]:
        for n in range(SEARCH_DAYS):
            yield start + timedelta(days=n * step)

    def next_after(self, instant: float, zone: ZoneInfo) -> float | None:
        """The first firing instant strictly after `instant` (None: none within `SEARCH_DAYS`)."""
        start = datetime.fromtimestamp(instant, zone).date() - timedelta(days=1)
        for day in self._days(start, 1):
            later = [t for t in self._instants(day, zone) if t > instant]
            if later:
                return later[0]
        return None

    def last_at_or_before(self, instant: float, zone: ZoneInfo) -> float | None:
        """The latest firing instant at or before `instant` (None: none within `SEARCH_DAYS`)."""
        start = datetime.fromtimestamp(instant, zone).date() + timedelta(days=1)
        for day in self._days(start, -1):
            earlier = [t for t in self._instants(day, zone) if t <= instant]
            if earlier:
                return earlier[-1]
        return None
