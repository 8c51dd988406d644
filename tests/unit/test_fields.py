"""Validation of roster request bodies, and their JSON Schemas."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bridge.api.fields import (
    RECORD_FIELDS,
    FieldError,
    json_schema,
    parse_bulk_record,
    validate_body,
)
from bridge.domain.roster import AssignmentPut, MembershipDelete, UserPut


def test_defaults_and_cleaning() -> None:
    values = validate_body("user", {"display_name": "  Ada  "})
    assert values == {
        "display_name": "Ada",
        "avatar_url": None,
        "active": True,
        "availability": None,
    }
    assert validate_body("institution", {"name": "U", "region": "de"})["region"] == "DE"


def test_dates_mean_whole_days_in_utc() -> None:
    values = validate_body("enrollment", {"begins_at": "2026-09-01", "ends_at": "2027-06-30"})
    assert values["begins_at"] == datetime(2026, 9, 1, tzinfo=UTC)
    assert values["ends_at"] == datetime(2027, 7, 1, tzinfo=UTC)
    values = validate_body("enrollment", {"begins_at": "2026-09-01T08:00:00+02:00"})
    assert values["begins_at"] == datetime(2026, 9, 1, 6, tzinfo=UTC)


@pytest.mark.parametrize(
    ("record_type", "body", "field"),
    [
        ("user", [], "body"),
        ("user", {"display_name": "x" * 501}, "display_name"),
        (
            "user",
            {"display_name": "A", "availability": {"weekly_hours": "all"}},
            "availability.weekly_hours",
        ),
        (
            "user",
            {"display_name": "A", "availability": {"timezone": "Moon/Base"}},
            "availability.timezone",
        ),
        (
            "user",
            {
                "display_name": "A",
                "availability": {
                    "weekly_hours": [{"day": "funday", "start": "09:00", "end": "10:00"}]
                },
            },
            "availability.weekly_hours[0].day",
        ),
        ("member", {"role": "guardian"}, "role"),
        ("member", {}, "role"),
        ("enrollment", {"begins_at": "soon"}, "begins_at"),
        ("enrollment", {"begins_at": "2026-02-01", "ends_at": "2026-01-01"}, "ends_at"),
        ("course", {"institution_id": "", "title": "T"}, "institution_id"),
        ("course", {"institution_id": "i", "title": "T", "role": "x"}, "role"),
    ],
)
def test_errors_name_the_field(record_type: str, body: object, field: str) -> None:
    with pytest.raises(FieldError) as excinfo:
        validate_body(record_type, body)
    assert excinfo.value.field == field


def test_bulk_records() -> None:
    assert parse_bulk_record(0, {"type": "user", "id": "u", "display_name": "U"}) == UserPut(
        "u", "U"
    )
    assert parse_bulk_record(
        1, {"type": "member", "institution_id": "i", "user_id": "u", "delete": True}
    ) == MembershipDelete("i", "u")
    change = parse_bulk_record(2, {"type": "teaching", "batch_id": "b", "user_id": "u"})
    assert change == AssignmentPut("tutor", "b", "u")
    with pytest.raises(FieldError) as excinfo:
        parse_bulk_record(3, {"type": "member", "institution_id": "i", "role": "student"})
    assert excinfo.value.field == "records[3].user_id"


def test_every_record_type_has_a_schema_with_its_fields() -> None:
    for record_type, specs in RECORD_FIELDS.items():
        schema = json_schema(record_type, with_keys=True)
        assert {s.name for s in specs} <= set(schema["properties"])
        assert schema["additionalProperties"] is False
