"""A tutor's stated availability: reading the stored form, describing it, checking moments."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bridge.domain.availability import (
    Availability,
    Slot,
    away_notice,
    describe,
    is_outside,
    local_day,
    next_start,
    zone_label,
)

LONDON = ZoneInfo("Europe/London")


def _stored(hours: list[tuple[str, str, str]], **extra: Any) -> str:
    return json.dumps(
        {"weekly_hours": [{"day": d, "start": s, "end": e} for d, s, e in hours], **extra}
    )


def _availability(hours: list[tuple[str, str, str]], **extra: Any) -> Availability:
    availability = Availability.parse(_stored(hours, **extra))
    assert availability is not None
    return availability


def _weekdays(start: str, end: str, days: str = "mon tue wed thu") -> list[tuple[str, str, str]]:
    return [(day, start, end) for day in days.split()]


# Mon–Thu 10:00–16:00 in London, as in the product's own example.
_LONDON_WEEK = _availability(_weekdays("10:00", "16:00"), timezone="Europe/London")


# --- parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stored",
    [
        None,
        "",
        "not json",
        "{",
        "null",
        "[]",
        '"text"',
        "42",
        "{}",
        '{"weekly_hours": []}',
        '{"weekly_hours": null, "note": null, "timezone": null}',
        '{"weekly_hours": "mon 10-16"}',
        '{"note": "   "}',
        '{"weekly_hours": [{"day": "mon", "start": "16:00", "end": "10:00"}]}',
        "[" * 100_000,
    ],
)
def test_nothing_to_show_parses_as_none(stored: str | None) -> None:
    assert Availability.parse(stored) is None


def test_malformed_slots_are_skipped_and_the_rest_kept() -> None:
    stored = json.dumps(
        {
            "timezone": "Europe/London",
            "weekly_hours": [
                "mon 10:00-16:00",
                {"day": "monday", "start": "10:00", "end": "16:00"},
                {"day": "tue", "start": "9:00", "end": "16:00"},
                {"day": "tue", "start": "10:00", "end": "24:00"},
                {"day": "tue", "start": "10:00"},
                {"day": "wed", "start": 600, "end": 960},
                {"day": "thu", "start": "12:00", "end": "12:00"},
                {"day": "fri", "start": "10:00", "end": "16:30"},
            ],
            "note": "  Replies within a day ",
        }
    )
    assert Availability.parse(stored) == Availability(
        timezone="Europe/London", slots=(Slot(4, 600, 990),), note="Replies within a day"
    )


def test_a_note_alone_is_kept_and_a_missing_or_odd_zone_is_none() -> None:
    only_note = Availability.parse('{"note": "On leave in August", "timezone": 5}')
    assert only_note == Availability(timezone=None, slots=(), note="On leave in August")
    assert describe(only_note) is None
    assert not is_outside(only_note, datetime(2024, 6, 10, 3, tzinfo=UTC))
    assert next_start(only_note, datetime(2024, 6, 10, 3, tzinfo=UTC)) is None
    assert _availability([("mon", "10:00", "11:00")], timezone=None).timezone is None
    assert _availability([("mon", "10:00", "11:00")], timezone=" ").timezone is None


def test_slots_come_sorted_with_overlapping_and_touching_ones_merged() -> None:
    availability = _availability(
        [
            ("wed", "09:00", "10:00"),
            ("mon", "14:00", "17:00"),
            ("mon", "09:00", "12:00"),
            ("mon", "11:00", "13:00"),
            ("mon", "13:00", "13:30"),
            ("mon", "14:00", "17:00"),
        ]
    )
    assert availability.slots == (Slot(0, 540, 810), Slot(0, 840, 1020), Slot(2, 540, 600))


@pytest.mark.parametrize(("day", "start", "end"), [(7, 0, 60), (-1, 0, 60), (0, 60, 60)])
def test_a_slot_outside_one_day_is_refused(day: int, start: int, end: int) -> None:
    with pytest.raises(ValueError):
        Slot(day, start, end)


# --- describing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hours", "text"),
    [
        (_weekdays("10:00", "16:00"), "Mon–Thu 10:00–16:00"),
        (_weekdays("10:00", "16:00", "sat sun"), "Sat, Sun 10:00–16:00"),
        (_weekdays("10:00", "12:00", "mon wed fri"), "Mon, Wed, Fri 10:00–12:00"),
        (_weekdays("10:00", "12:00", "fri"), "Fri 10:00–12:00"),
        (_weekdays("10:00", "12:00", "mon tue thu"), "Mon, Tue, Thu 10:00–12:00"),
        (_weekdays("10:00", "12:00", "mon tue wed fri sat"), "Mon–Wed, Fri, Sat 10:00–12:00"),
        (
            [*_weekdays("10:00", "16:00"), ("fri", "10:00", "12:00")],
            "Mon–Thu 10:00–16:00; Fri 10:00–12:00",
        ),
        (
            [("tue", "14:00", "17:00"), ("tue", "09:00", "12:00")],
            "Tue 09:00–12:00 and 14:00–17:00",
        ),
        (
            [
                *_weekdays("09:00", "12:00", "mon tue wed"),
                *_weekdays("14:00", "17:00", "mon tue"),
                ("thu", "09:00", "12:00"),
            ],
            # Wed lacks the afternoon, so it is not in Mon, Tue's group, but it runs on to Thu.
            "Mon, Tue 09:00–12:00 and 14:00–17:00; Wed, Thu 09:00–12:00",
        ),
        (
            [*_weekdays("10:00", "16:00", "mon tue wed sun"), ("thu", "08:00", "09:00")],
            # The week runs Monday to Sunday, so Sunday does not join Monday's range.
            "Mon–Wed, Sun 10:00–16:00; Thu 08:00–09:00",
        ),
        (
            [("mon", "10:00", "12:00"), ("tue", "10:00", "11:00"), ("tue", "11:00", "12:00")],
            # Touching slots are one stretch of hours, so the two days share them.
            "Mon, Tue 10:00–12:00",
        ),
    ],
)
def test_describe_groups_days_with_the_same_hours(
    hours: list[tuple[str, str, str]], text: str
) -> None:
    availability = _availability(hours, timezone="Europe/London")
    assert describe(availability) == f"Usually available {text}, London time"


def test_describe_is_none_without_hours() -> None:
    assert describe(Availability(timezone="Europe/London", slots=(), note="Ask me")) is None


@pytest.mark.parametrize(
    ("zone", "label"),
    [
        ("Europe/London", "London time"),
        ("America/New_York", "New York time"),
        ("America/Argentina/Buenos_Aires", "Buenos Aires time"),
        ("UTC", "UTC"),
        ("Etc/UTC", "UTC"),
    ],
)
def test_zone_label(zone: str, label: str) -> None:
    assert zone_label(zone) == label


@pytest.mark.parametrize(
    ("zone", "fallback", "label"),
    [
        ("America/New_York", "Europe/London", "New York time"),
        (None, "Europe/Berlin", "Berlin time"),
        (None, None, "UTC"),
        ("Etc/UTC", None, "UTC"),
        # An unknown name is described as what is used instead.
        ("Mars/Olympus_Mons", "Europe/Berlin", "UTC"),
        (None, "../../etc/passwd", "UTC"),
    ],
)
def test_describe_names_the_zone_in_effect(
    zone: str | None, fallback: str | None, label: str
) -> None:
    availability = _availability([("mon", "10:00", "16:00")], timezone=zone)
    assert describe(availability, fallback) == f"Usually available Mon 10:00–16:00, {label}"


# --- checking a moment ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "outside"),
    [
        (datetime(2024, 6, 10, 9, 59, 59), True),
        (datetime(2024, 6, 10, 10, 0), False),  # start inclusive
        (datetime(2024, 6, 10, 15, 59, 59), False),
        (datetime(2024, 6, 10, 16, 0), True),  # end exclusive
        (datetime(2024, 6, 13, 12, 0), False),  # Thu
        (datetime(2024, 6, 14, 12, 0), True),  # Fri
        (datetime(2024, 6, 16, 12, 0), True),  # Sun
    ],
)
def test_is_outside_at_slot_boundaries(local: datetime, outside: bool) -> None:
    at = local.replace(tzinfo=LONDON).astimezone(UTC)
    assert is_outside(_LONDON_WEEK, at) is outside


def test_is_outside_follows_the_local_clock_across_a_dst_change() -> None:
    # British Summer Time began on Sunday 2024-03-31: 08:30 UTC is 08:30 on the Monday before
    # and 09:30 on the Monday after.
    availability = _availability([("mon", "09:00", "17:00")], timezone="Europe/London")
    assert is_outside(availability, datetime(2024, 3, 25, 8, 30, tzinfo=UTC))
    assert not is_outside(availability, datetime(2024, 4, 1, 8, 30, tzinfo=UTC))
    assert not is_outside(availability, datetime(2024, 3, 25, 16, 30, tzinfo=UTC))
    assert is_outside(availability, datetime(2024, 4, 1, 16, 30, tzinfo=UTC))


def test_is_outside_uses_the_fallback_zone_then_utc() -> None:
    availability = _availability([("mon", "09:00", "17:00")])
    at = datetime(2024, 6, 10, 7, 30, tzinfo=UTC)  # 09:30 in Berlin, 08:30 in London
    assert not is_outside(availability, at, "Europe/Berlin")
    assert is_outside(availability, at, "Europe/London")
    assert is_outside(availability, at)
    assert not is_outside(availability, at + timedelta(hours=2))
    # An unknown zone is UTC rather than an error.
    assert is_outside(availability, at, "Nowhere/Special")
    unknown = _availability([("mon", "09:00", "17:00")], timezone="Nowhere/Special")
    assert not is_outside(unknown, at + timedelta(hours=2), "Europe/Berlin")


def test_is_outside_is_false_without_hours() -> None:
    assert not is_outside(Availability(None, (), None), datetime(2024, 6, 16, 3, tzinfo=UTC))


def test_local_day_is_the_date_in_the_zone() -> None:
    at = datetime(2024, 6, 10, 20, 0, tzinfo=UTC)
    auckland = _availability([("mon", "09:00", "17:00")], timezone="Pacific/Auckland")
    assert local_day(auckland, at) == date(2024, 6, 11)
    # Without a stated zone, the fallback's date (03:00 UTC is still Sunday in Los Angeles).
    unzoned = _availability([("mon", "09:00", "17:00")])
    early = datetime(2024, 6, 10, 3, tzinfo=UTC)
    assert local_day(unzoned, early, "America/Los_Angeles") == date(2024, 6, 9)
    assert local_day(unzoned, early) == date(2024, 6, 10)


# --- the next start ------------------------------------------------------------------------


def test_next_start_wraps_from_sunday_to_monday() -> None:
    at = datetime(2024, 6, 16, 18, 0, tzinfo=LONDON)  # Sunday evening
    start = next_start(_LONDON_WEEK, at)
    assert start == datetime(2024, 6, 17, 10, 0, tzinfo=LONDON)
    assert start is not None and start.tzinfo == LONDON


def test_next_start_is_strictly_after_and_later_the_same_day() -> None:
    availability = _availability(
        [("mon", "09:00", "12:00"), ("mon", "14:00", "17:00")], timezone="Europe/London"
    )
    monday = datetime(2024, 6, 10, tzinfo=LONDON)
    assert next_start(availability, monday.replace(hour=8)) == monday.replace(hour=9)
    assert next_start(availability, monday.replace(hour=9)) == monday.replace(hour=14)
    assert next_start(availability, monday.replace(hour=12)) == monday.replace(hour=14)
    # After the last slot of the only day, a week ahead.
    assert next_start(availability, monday.replace(hour=17)) == datetime(
        2024, 6, 17, 9, 0, tzinfo=LONDON
    )


def test_next_start_across_a_dst_change_and_inside_its_gap() -> None:
    availability = _availability(
        [("mon", "09:00", "17:00"), ("sun", "01:30", "03:00")], timezone="Europe/London"
    )
    # Saturday before the change: the Sunday slot's 01:30 never happens; it starts at 02:30 BST.
    sunday = next_start(availability, datetime(2024, 3, 30, 12, tzinfo=UTC))
    assert sunday is not None
    assert sunday.astimezone(UTC) == datetime(2024, 3, 31, 1, 30, tzinfo=UTC)
    assert (sunday.hour, sunday.minute) == (2, 30)
    monday = next_start(availability, sunday)
    assert monday is not None
    assert monday.astimezone(UTC) == datetime(2024, 4, 1, 8, 0, tzinfo=UTC)


def test_next_start_is_none_without_hours() -> None:
    assert next_start(Availability("UTC", (), "note"), datetime(2024, 6, 10, tzinfo=UTC)) is None


# --- the notice ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "when"),
    [
        (datetime(2024, 6, 10, 7, 0), "10:00 later today"),  # Mon morning
        (datetime(2024, 6, 10, 18, 0), "tomorrow 10:00"),  # Mon evening
        (datetime(2024, 6, 14, 9, 0), "Monday 10:00"),  # Fri
        (datetime(2024, 6, 16, 23, 59), "tomorrow 10:00"),  # Sun, just before midnight
    ],
)
def test_away_notice_says_when_a_reply_may_come(local: datetime, when: str) -> None:
    at = local.replace(tzinfo=LONDON).astimezone(UTC)
    assert away_notice("Alex Kim", _LONDON_WEEK, at) == (
        "Alex Kim is usually available Mon–Thu 10:00–16:00, London time, so a reply may take "
        f"until {when}. Your message has been delivered."
    )


def test_away_notice_counts_days_in_the_tutors_zone() -> None:
    # 23:30 UTC on Monday is already Tuesday in Auckland: Wednesday is "tomorrow" there.
    availability = _availability([("wed", "09:00", "17:00")], timezone="Pacific/Auckland")
    notice = away_notice("Sam", availability, datetime(2024, 6, 10, 23, 30, tzinfo=UTC))
    assert "Wed 09:00–17:00, Auckland time, so a reply may take until tomorrow 09:00." in notice


def test_away_notice_a_week_ahead_says_next() -> None:
    availability = _availability([("mon", "09:00", "12:00")], timezone="Europe/London")
    notice = away_notice("Sam", availability, datetime(2024, 6, 10, 13, tzinfo=LONDON))
    assert "so a reply may take until next Monday 09:00." in notice


def test_away_notice_adds_the_note() -> None:
    availability = _availability(
        _weekdays("10:00", "16:00"), timezone=None, note="Replies within a day"
    )
    at = datetime(2024, 6, 14, 9, 0, tzinfo=LONDON)
    assert away_notice("Alex Kim", availability, at, "Europe/London") == (
        "Alex Kim is usually available Mon–Thu 10:00–16:00, London time, so a reply may take "
        "until Monday 10:00. Your message has been delivered. Alex Kim's note: Replies within "
        "a day"
    )


def test_away_notice_without_hours_still_reads_well() -> None:
    availability = Availability(timezone=None, slots=(), note="On leave until May")
    assert away_notice("Sam", availability, datetime(2024, 6, 10, tzinfo=UTC)) == (
        "Sam may not be available right now. Your message has been delivered. "
        "Sam's note: On leave until May"
    )
