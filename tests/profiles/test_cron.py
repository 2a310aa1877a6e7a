"""The 5-field cron schedule (`mesos_gpu.core.profilescron`): tables of expressions and instants, and
Hypothesis against a brute-force minute-by-minute reading."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesos_gpu.core.profilescron import Cron, CronError

UTCZ = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def at(zone: ZoneInfo, *args: int) -> float:
    return datetime(*args, tzinfo=zone).timestamp()


# (expression, error fragment)
BAD = [
    ("* * * *", "has 4 fields"),
    ("* * * * * *", "has 6 fields"),
    ("60 * * * *", "minute: 60 is not from 0 to 59"),
    ("* 24 * * *", "hour: 24"),
    ("* * 0 * *", "day of month: 0"),
    ("* * * 13 *", "month: 13"),
    ("* * * * 8", "day of week: 8"),
    ("5-1 * * * *", "runs backwards"),
    ("*/0 * * * *", "step '0'"),
    ("x * * * *", "'x' is not a number"),
    ("* * * foo *", "or a name (jan-dec)"),
    ("", "has 0 fields"),
]


@pytest.mark.parametrize(("text", "fragment"), BAD, ids=[b[0] or "empty" for b in BAD])
def test_bad_expressions_say_which_field(text, fragment):
    with pytest.raises(CronError) as caught:
        Cron.parse(text)
    assert fragment in str(caught.value)


def test_a_non_string_is_refused():
    with pytest.raises(CronError):
        Cron.parse(None)  # type: ignore[arg-type]


# (expression, zone, now, next instant, last instant at or before now)
TABLE = [
    ("0 8 * * 1-5", UTCZ, at(UTCZ, 2026, 12, 4, 19, 0), at(UTCZ, 2026, 12, 7, 8, 0),
     at(UTCZ, 2026, 12, 4, 8, 0)),
    ("0 8 * * mon-fri", UTCZ, at(UTCZ, 2026, 12, 4, 8, 0), at(UTCZ, 2026, 12, 7, 8, 0),
     at(UTCZ, 2026, 12, 4, 8, 0)),
    ("0 20 * * *", BERLIN, at(BERLIN, 2026, 12, 4, 19, 59), at(BERLIN, 2026, 12, 4, 20, 0),
     at(BERLIN, 2026, 12, 3, 20, 0)),
    ("*/15 * * * *", UTCZ, at(UTCZ, 2026, 1, 1, 0, 7), at(UTCZ, 2026, 1, 1, 0, 15),
     at(UTCZ, 2026, 1, 1, 0, 0)),
    ("5/20 * * * *", UTCZ, at(UTCZ, 2026, 1, 1, 0, 30), at(UTCZ, 2026, 1, 1, 0, 45),
     at(UTCZ, 2026, 1, 1, 0, 25)),
    ("0 0 29 2 *", UTCZ, at(UTCZ, 2026, 3, 1), at(UTCZ, 2028, 2, 29), at(UTCZ, 2024, 2, 29)),
    ("0 0 1 jan,jul *", UTCZ, at(UTCZ, 2026, 3, 1), at(UTCZ, 2026, 7, 1), at(UTCZ, 2026, 1, 1)),
    # day of month AND day of week restricted: either matches (Vixie cron). 2026-12-13 is a Sunday.
    ("0 12 13 * 0", UTCZ, at(UTCZ, 2026, 12, 5), at(UTCZ, 2026, 12, 6, 12), at(UTCZ, 2026, 11, 29, 12)),
    ("0 12 13 * 7", UTCZ, at(UTCZ, 2026, 12, 7), at(UTCZ, 2026, 12, 13, 12), at(UTCZ, 2026, 12, 6, 12)),
    # New York springs forward 2026-03-08 02:00 -> 03:00: 02:30 does not exist, fires at 03:30 EDT.
    ("30 2 * * *", NEW_YORK, at(NEW_YORK, 2026, 3, 8, 1, 0), at(UTCZ, 2026, 3, 8, 7, 30),
     at(NEW_YORK, 2026, 3, 7, 2, 30)),
    # ... and falls back 2026-11-01 02:00 -> 01:00: 01:30 happens twice, fires once (the first).
    ("30 1 * * *", NEW_YORK, at(UTCZ, 2026, 11, 1, 5, 0), at(UTCZ, 2026, 11, 1, 5, 30),
     at(NEW_YORK, 2026, 10, 31, 1, 30)),
    ("0 0 31 2 *", UTCZ, at(UTCZ, 2026, 1, 1), None, None),
]


@pytest.mark.parametrize(("text", "zone", "now", "following", "last"), TABLE, ids=[t[0] for t in TABLE])
def test_next_and_last(text, zone, now, following, last):
    cron = Cron.parse(text)
    assert cron.next_after(now, zone) == following
    assert cron.last_at_or_before(now, zone) == last


def test_the_repeated_hour_fires_once():
    cron = Cron.parse("30 1 * * *")
    first = cron.next_after(at(UTCZ, 2026, 11, 1, 0, 0), NEW_YORK)
    assert first == at(UTCZ, 2026, 11, 1, 5, 30)
    assert cron.next_after(first, NEW_YORK) == at(NEW_YORK, 2026, 11, 2, 1, 30)


# ------------------------------------------------------------------------------------------ Hypothesis
def field(low: int, high: int) -> st.SearchStrategy[str]:
    value = st.integers(low, high)
    return st.one_of(
        st.just("*"),
        value.map(str),
        st.tuples(value, value).map(lambda ab: f"{min(ab)}-{max(ab)}"),
        st.tuples(st.just("*"), st.integers(1, high - low + 1)).map(lambda s: f"*/{s[1]}"),
        st.lists(value, min_size=1, max_size=3).map(lambda vs: ",".join(map(str, vs))),
    )


expressions = st.tuples(field(0, 59), field(0, 23), field(1, 31), field(1, 12), field(0, 7)).map(" ".join)
# Zones without daylight saving (a fixed offset): every local minute exists exactly once.
fixed_zones = st.sampled_from([ZoneInfo("UTC"), ZoneInfo("Asia/Kolkata"), ZoneInfo("Asia/Tokyo")])
instants = st.integers(1_700_000_000, 1_900_000_000).map(float)


def brute_matches(cron: Cron, minute: float, zone: ZoneInfo) -> bool:
    local = datetime.fromtimestamp(minute, zone)
    return local.minute in cron.minutes and local.hour in cron.hours and cron.matches_day(local.date())


@settings(max_examples=150, deadline=None)
@given(expressions, fixed_zones, instants)
def test_next_is_the_first_matching_minute_after(text, zone, now):
    cron = Cron.parse(text)
    following = cron.next_after(now, zone)
    if following is None:
        return
    assert following > now
    assert following % 60 == 0
    assert brute_matches(cron, following, zone)
    minute = (now // 60 + 1) * 60
    checked = 0
    while minute < following and checked < 3 * 1440:  # no match in between (the first three days checked)
        assert not brute_matches(cron, minute, zone), datetime.fromtimestamp(minute, UTC)
        minute += 60
        checked += 1


@settings(max_examples=150, deadline=None)
@given(expressions, st.sampled_from([UTCZ, BERLIN, NEW_YORK]), instants)
def test_last_and_next_bracket_now(text, zone, now):
    cron = Cron.parse(text)
    last, following = cron.last_at_or_before(now, zone), cron.next_after(now, zone)
    if last is not None:
        assert last <= now
        assert cron.next_after(last - 1, zone) == last     # nothing between the last and now
        assert following is None or following > last
    if following is not None:
        assert following > now
        assert cron.last_at_or_before(following, zone) == following
        assert cron.last_at_or_before(following - 1, zone) == last   # nothing between now and the next


@settings(max_examples=100, deadline=None)
@given(expressions)
def test_sunday_is_0_and_7(text):
    parts = text.split()
    cron = Cron.parse(text)
    assert all(0 <= day <= 6 for day in cron.weekdays)
    if parts[4] in ("0", "7"):
        assert cron.weekdays == frozenset({0})


DAY_RULE = [
    # (expression, days of December 2026 it fires on): 2026-12-01 is a Tuesday
    ("0 8 */2 * *", [d for d in range(1, 32) if d % 2 == 1]),       # a step on "*": every other day
    ("0 8 * * */2", [d for d in range(1, 32) if (d + 1) % 7 % 2 == 0]),   # Sun, Tue, Thu, Sat
    ("0 8 */10 * 1", [21]),                  # "*"-led day of month: AND with Mondays (1, 11, 21, 31)
    ("0 8 1 * 1", [1, 7, 14, 21, 28]),       # both restricted: either (Vixie cron)
    ("0 8 * * 1", [7, 14, 21, 28]),
]


@pytest.mark.parametrize(("text", "days"), DAY_RULE, ids=[d[0] for d in DAY_RULE])
def test_a_star_led_day_field_is_anded_as_vixie_cron_does(text, days):
    cron = Cron.parse(text)
    assert [d for d in range(1, 32) if cron.matches_day(date(2026, 12, d))] == days


def test_a_non_ascii_digit_is_refused_as_a_cron_error():
    for text in ("\u00b2 * * * *", "*/\u00b2 * * * *"):
        with pytest.raises(CronError):
            Cron.parse(text)
