"""A tutor's stated availability: weekly hours in a time zone, described in words and checked
against a moment (to tell a student who writes outside those hours when a reply may come)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from itertools import groupby
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# The wording lives here, in plain format strings, so that it can be translated in one place.
DAY_ABBREVIATIONS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DAY_RANGE = "{first}–{last}"
DAY_SEPARATOR = ", "
GROUP_SEPARATOR = "; "
SLOT_SEPARATOR = " and "
TIME_RANGE = "{start}–{end}"
CLOCK_TIME = "{hour:02d}:{minute:02d}"
ZONE_TIME = "{place} time"
UTC_LABEL = "UTC"
DESCRIPTION = "Usually available {hours}, {zone}"
NOTICE = (
    "{name} is usually available {hours}, {zone}, so a reply may take until {when}. "
    "Your message has been delivered."
)
# Only reached if the caller sends a notice for availability without hours.
NOTICE_WITHOUT_HOURS = "{name} may not be available right now. Your message has been delivered."
NOTICE_NOTE = "{name}'s note: {note}"
WHEN_LATER_TODAY = "{time} later today"
WHEN_TOMORROW = "tomorrow {time}"
WHEN_WEEKDAY = "{day} {time}"
# A week ahead, the bare weekday would read as today's.
WHEN_NEXT_WEEK = "next {day} {time}"

# The stored day keys, in index order (0 = Monday, as datetime.weekday() counts).
_DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_MINUTES_PER_DAY = 24 * 60
# Every name of plain UTC in the tz database; naming these "UTC time" would read oddly.
_UTC_NAMES = frozenset(
    {"UTC", "Etc/UTC", "UCT", "Etc/UCT", "Universal", "Etc/Universal", "Zulu", "Etc/Zulu"}
)
# Weekly hours always recur within a week; one more day covers a moment late on the last day.
_LOOKAHEAD_DAYS = 8


@dataclass(frozen=True, order=True)
class Slot:
    """Hours on one day of the week, in the availability's zone: minutes since midnight,
    `start` inclusive and `end` exclusive."""

    day: int  # 0 = Monday … 6 = Sunday
    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.day <= 6 or not 0 <= self.start < self.end <= _MINUTES_PER_DAY:
            raise ValueError(f"not a slot within one day: {self!r}")


@dataclass(frozen=True)
class Availability:
    """A tutor's stated availability: weekly hours (merged, in day and time order) and a note."""

    timezone: str | None
    slots: tuple[Slot, ...]
    note: str | None

    @classmethod
    def parse(cls, stored: str | None) -> Availability | None:
        """The availability in its stored JSON form; None when there is nothing to show.

        Stored data is read leniently and never raises: it may predate the current checks, and
        a tutor's profile must not break a conversation. Malformed slots are skipped.
        """
        if not stored:
            return None
        try:
            data = json.loads(stored)
        except (ValueError, TypeError, RecursionError):
            return None
        if not isinstance(data, dict):
            return None
        zone = data.get("timezone")
        note = data.get("note")
        hours = data.get("weekly_hours")
        slots = _normalised(
            slot for item in (hours if isinstance(hours, list) else []) if (slot := _slot(item))
        )
        availability = cls(
            timezone=(zone.strip() or None) if isinstance(zone, str) else None,
            slots=slots,
            note=(note.strip() or None) if isinstance(note, str) else None,
        )
        return availability if availability.slots or availability.note else None


def describe(availability: Availability, fallback_zone: str | None = None) -> str | None:
    """The hours in words, e.g. "Usually available Mon–Thu 10:00–16:00, London time"; None
    without hours. The note is not included (it is shown on its own)."""
    if not availability.slots:
        return None
    return DESCRIPTION.format(
        hours=_hours_text(availability.slots),
        zone=zone_label(_zone_name(availability, fallback_zone)),
    )


def zone_label(zone_name: str) -> str:
    """How a zone is named to people: "America/New_York" → "New York time", "Etc/UTC" → "UTC"."""
    if zone_name in _UTC_NAMES:
        return UTC_LABEL
    return ZONE_TIME.format(place=zone_name.rsplit("/", 1)[-1].replace("_", " "))


def is_outside(availability: Availability, at: datetime, fallback_zone: str | None = None) -> bool:
    """Whether `at` falls outside every stated slot, in the availability's local time.

    False without hours: a tutor who states none is never "outside" them.
    """
    if not availability.slots:
        return False
    local = _local(at, _zone(availability, fallback_zone))
    # Slots are wall-clock hours, so the local wall clock decides (whatever the UTC offset).
    minute = local.hour * 60 + local.minute
    day = local.weekday()
    return not any(s.day == day and s.start <= minute < s.end for s in availability.slots)


def local_day(availability: Availability, at: datetime, fallback_zone: str | None = None) -> date:
    """The date at `at` in the availability's zone (notices go at most once a local day)."""
    return _local(at, _zone(availability, fallback_zone)).date()


def next_start(
    availability: Availability, at: datetime, fallback_zone: str | None = None
) -> datetime | None:
    """The next moment after `at` that a slot begins, aware in the availability's zone; None
    without hours."""
    zone = _zone(availability, fallback_zone)
    today = _local(at, zone).date()
    instant = _local(at, UTC)
    for offset in range(_LOOKAHEAD_DAYS + 1):
        day = today + timedelta(days=offset)
        starts = [
            _moment(day, slot.start, zone)
            for slot in availability.slots
            if slot.day == day.weekday()
        ]
        # Compared as instants: aware datetimes sharing a tzinfo compare by wall clock alone.
        later = [start for start in starts if start.astimezone(UTC) > instant]
        if later:
            return min(later, key=lambda start: start.astimezone(UTC))
    return None


def away_notice(
    tutor_name: str, availability: Availability, at: datetime, fallback_zone: str | None = None
) -> str:
    """The automatic reply to a student who writes at `at`, outside the tutor's hours: when the
    tutor is usually available, when a reply may come, and the tutor's note if there is one."""
    start = next_start(availability, at, fallback_zone)
    if start is None:
        text = NOTICE_WITHOUT_HOURS.format(name=tutor_name)
    else:
        text = NOTICE.format(
            name=tutor_name,
            hours=_hours_text(availability.slots),
            zone=zone_label(_zone_name(availability, fallback_zone)),
            when=_when(start, local_day(availability, at, fallback_zone)),
        )
    if availability.note:
        text += " " + NOTICE_NOTE.format(name=tutor_name, note=availability.note)
    return text


def _slot(item: object) -> Slot | None:
    """One stored slot ({"day": "mon", "start": "10:00", "end": "16:00"}), or None if malformed."""
    if not isinstance(item, dict):
        return None
    day, start, end = item.get("day"), _minutes(item.get("start")), _minutes(item.get("end"))
    if day not in _DAY_KEYS or start is None or end is None or end <= start:
        return None
    return Slot(_DAY_KEYS.index(day), start, end)


def _minutes(value: object) -> int | None:
    """Minutes since midnight of an "HH:MM" time, or None."""
    match = _HHMM.fullmatch(value) if isinstance(value, str) else None
    return int(match[1]) * 60 + int(match[2]) if match else None


def _normalised(slots: Iterable[Slot]) -> tuple[Slot, ...]:
    """Slots in day and time order, with overlapping or touching ones on a day merged, so that
    the same hours always look the same (when grouping days) and a slot's start is a real start
    (not the middle of a longer stretch)."""
    merged: list[Slot] = []
    for slot in sorted(slots):
        last = merged[-1] if merged else None
        if last and last.day == slot.day and slot.start <= last.end:
            merged[-1] = Slot(last.day, last.start, max(last.end, slot.end))
        else:
            merged.append(slot)
    return tuple(merged)


def _hours_text(slots: tuple[Slot, ...]) -> str:
    """The weekly hours in words: "Mon–Thu 10:00–16:00; Fri 10:00–12:00"."""
    by_day = {
        day: tuple((s.start, s.end) for s in day_slots)
        for day, day_slots in groupby(_normalised(slots), key=lambda s: s.day)
    }
    # Runs of consecutive days with exactly the same hours (the week runs Monday to Sunday).
    runs: list[tuple[tuple[tuple[int, int], ...], list[int]]] = []
    for day in sorted(by_day):
        if runs and runs[-1][1][-1] == day - 1 and runs[-1][0] == by_day[day]:
            runs[-1][1].append(day)
        else:
            runs.append((by_day[day], [day]))
    # Runs with the same hours share one entry, in the order their first days come.
    groups: dict[tuple[tuple[int, int], ...], list[str]] = {}
    for hours, days in runs:
        groups.setdefault(hours, []).append(_days_text(days))
    return GROUP_SEPARATOR.join(
        DAY_SEPARATOR.join(days)
        + " "
        + SLOT_SEPARATOR.join(
            TIME_RANGE.format(start=_clock(start), end=_clock(end)) for start, end in hours
        )
        for hours, days in groups.items()
    )


def _days_text(days: list[int]) -> str:
    """A run of consecutive days: "Mon", "Mon, Tue" (a range for two reads oddly), "Mon–Wed"."""
    names = [DAY_ABBREVIATIONS[day] for day in days]
    if len(names) < 3:
        return DAY_SEPARATOR.join(names)
    return DAY_RANGE.format(first=names[0], last=names[-1])


def _clock(minutes: int) -> str:
    """ "HH:MM" of minutes since midnight."""
    return CLOCK_TIME.format(hour=minutes // 60, minute=minutes % 60)


def _when(start: datetime, today: date) -> str:
    """When the next slot begins, relative to the local day of the message."""
    clock = _clock(start.hour * 60 + start.minute)
    days_ahead = (start.date() - today).days
    if days_ahead <= 0:
        return WHEN_LATER_TODAY.format(time=clock)
    if days_ahead == 1:
        return WHEN_TOMORROW.format(time=clock)
    day = DAY_NAMES[start.weekday()]
    if days_ahead >= 7:
        return WHEN_NEXT_WEEK.format(day=day, time=clock)
    return WHEN_WEEKDAY.format(day=day, time=clock)


def _zone_name(availability: Availability, fallback_zone: str | None) -> str:
    """The zone in effect: the stated one, else the fallback, else UTC; an unknown name means
    UTC (stored names may predate a tz database update, and a notice must still be sent)."""
    name = availability.timezone or fallback_zone or "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return "UTC"
    return name


def _zone(availability: Availability, fallback_zone: str | None) -> tzinfo:
    """The tzinfo of the zone in effect (ZoneInfo caches its instances)."""
    return ZoneInfo(_zone_name(availability, fallback_zone))


def _local(at: datetime, zone: tzinfo) -> datetime:
    """`at` on the zone's wall clock; a naive `at` is taken as UTC (not the host's local time)."""
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(zone)


def _moment(day: date, minutes: int, zone: tzinfo) -> datetime:
    """The instant a wall-clock time occurs on a day; a time skipped by a DST change becomes the
    real time it maps to (01:30 on the spring-forward night in London is 02:30)."""
    wall = datetime.combine(day, time(minutes // 60, minutes % 60), zone)
    return wall.astimezone(UTC).astimezone(zone)
