"""Points in time as the LMS writes them: ISO 8601 dates or date-times."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta


def parse_moment(value: str, *, end_of_period: bool = False) -> datetime:
    """An aware UTC datetime from an ISO 8601 date or date-time (UTC when no offset is given).

    A bare date means the start of that day, or with `end_of_period` the end of it (so an
    enrollment "until 2026-06-30" still counts on the 30th). Raises ValueError.
    """
    text = value.strip()
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), time(), UTC)
            return moment + timedelta(days=1) if end_of_period else moment
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value!r} is out of range") from None
