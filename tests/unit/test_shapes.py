"""The typed shapes: one class gives the checks of a request, the body of an answer and the
schema of both, and they agree with each other."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, ClassVar, Literal

import pytest
from jsonschema import Draft202012Validator

from bridge.contract.events import EVENT_TYPES, MessageDeleted, MessageEdited
from bridge.contract.messaging import HistoryQuery, SendText
from bridge.contract.reports import ReportPerson, ReportView
from bridge.contract.shapes import (
    OMITTED,
    FieldError,
    Omitted,
    ParameterError,
    Rule,
    dump,
    load,
    load_query,
    schema_of,
)
from bridge.contract.values import Id


@dataclass(frozen=True)
class Slot:
    """A slot"""

    day: Literal["mon", "tue"]
    count: Annotated[int, Rule(minimum=1, maximum=3)] = 1


@dataclass(frozen=True)
class Plan:
    """A plan"""

    owner: Id
    slots: Annotated[list[Slot], Rule(max_items=2)]
    note: Annotated[str | None, Rule("words", max_length=5)] = None
    reader: Annotated[str | Omitted, Rule(name="as")] = OMITTED


@dataclass(frozen=True)
class Shared:
    """Shared"""

    __component__: ClassVar[str] = "Shared"
    x: int


@dataclass(frozen=True)
class Holder:
    """Holds"""

    items: list[Shared]


def test_a_valid_body_loads_with_defaults() -> None:
    plan = load(Plan, {"owner": "ann", "slots": [{"day": "mon"}], "as": "bo"})
    assert plan == Plan("ann", [Slot("mon", 1)], None, "bo")


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"slots": []}, "owner", "required"),
        ({"owner": "a", "slots": [], "extra": 1}, "extra", "unknown field"),
        ({"owner": None, "slots": []}, "owner", "must not be null"),
        ({"owner": " ", "slots": []}, "owner", "non-empty"),
        ({"owner": "a\x00b", "slots": []}, "owner", "NUL"),
        ({"owner": "a\ud800", "slots": []}, "owner", "surrogate"),
        ({"owner": "a", "slots": [{"day": "sun"}]}, "slots[0].day", "one of mon, tue"),
        ({"owner": "a", "slots": [{"day": "mon", "count": 9}]}, "slots[0].count", "1 to 3"),
        ({"owner": "a", "slots": [{"day": "mon", "count": True}]}, "slots[0].count", "whole"),
        ({"owner": "a", "slots": [{"day": "mon"}] * 3}, "slots", "at most 2"),
        ({"owner": "a", "slots": {}}, "slots", "a list"),
        ({"owner": "a", "slots": [], "note": "toolong"}, "note", "longer than 5"),
        ({"owner": "a", "slots": [], "reader": "x"}, "reader", "unknown field"),
    ],
)
def test_a_wrong_body_names_the_field(body: dict[str, object], field: str, message: str) -> None:
    with pytest.raises(FieldError) as caught:
        load(Plan, body)
    assert caught.value.field == field
    assert message in caught.value.message


def test_a_body_that_is_no_object_is_refused() -> None:
    with pytest.raises(FieldError, match="body: expected a JSON object"):
        load(Plan, ["owner"])


def test_query_parameters_are_parsed_and_strangers_ignored() -> None:
    query = load_query(HistoryQuery, {"as": "ann", "limit": "20", "utm_source": "mail"})
    assert (query.reader, query.before, query.limit) == ("ann", OMITTED, 20)
    with pytest.raises(ParameterError, match="limit: expected a whole number"):
        load_query(HistoryQuery, {"as": "ann", "limit": "many"})
    with pytest.raises(ParameterError, match="limit: expected 1 to 200"):
        load_query(HistoryQuery, {"as": "ann", "limit": "0"})
    with pytest.raises(ParameterError, match="as: required"):
        load_query(HistoryQuery, {})


def test_dump_leaves_omitted_fields_out_and_writes_times() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    lms = dump(MessageDeleted("m", "c", "a", "lms", at))
    assert lms == {
        "message_id": "m",
        "conversation_id": "c",
        "sender": "a",
        "origin": "lms",
        "deleted_at": "2026-01-02T03:04:05+00:00",
    }
    edited = dump(MessageEdited("m", "c", "a", "x", "plain", None, "matrix", at, None))
    assert edited["edit_event_id"] is None  # null is a value; only OMITTED is left out
    assert "undone_edit_event_id" not in edited


def test_the_schema_says_what_load_and_dump_do() -> None:
    request = schema_of(Plan, request=True)
    assert request["required"] == ["owner", "slots"]  # defaults may be left out
    assert request["additionalProperties"] is False
    assert request["description"] == "A plan"
    assert request["properties"]["as"] == {"type": "string"}  # its name on the wire
    assert request["properties"]["note"] == {
        "type": ["string", "null"],
        "description": "words",
        "maxLength": 5,
    }
    assert request["properties"]["slots"]["items"]["properties"]["count"]["default"] == 1
    answer = schema_of(Plan)
    assert answer["required"] == ["owner", "slots", "note"]  # always written, but `as`
    assert schema_of(SendText, request=True)["properties"]["format"]["default"] == "plain"


def test_every_event_payload_dumps_to_what_its_schema_accepts() -> None:
    at = datetime(2026, 1, 2, tzinfo=UTC)
    report = ReportView(
        *("r", "open", "lms", "spam", "ads", "a", "@a:hs", "b", "@b:hs", "m", "c", "!r:hs", "$e"),
        *(at, None),
    )
    samples = {
        "message.created": ("m", "c", "a", "hi", "plain", None, "$e", "matrix", at, None),
        "message.edited": ("m", "c", "a", "x", "plain", None, "matrix", at, "$edit"),
        "message.deleted": ("m", "c", "a", "lms", at),
        "message.failed": ("m", "c", "a", "lms", "M_FORBIDDEN"),
        "message.blocked": ("c", "a", "$e", "edit", "m", ["phone"], at),
        "reaction.added": ("m", "c", "a", "👍", "$r", at),
        "reaction.removed": ("m", "c", "a", "👍", "$r", "$x", at),
        "conversation.created": ("c", ["a", "b"], "a", "!r:hs", "active"),
        "conversation.state_changed": ("c", "read_only", "ended", "It ended"),
        "conversation.read": ("c", "a", "m", "lms", at),
        "availability.notice": ("n", "c", "a", "t", "m", "Back Monday", "2026-01-02", at),
        "report.created": (report, None, ReportPerson("a", "Ann", None, "@a:hs"), None),
        "report.resolved": (report,),
        "user.warned": ("b", "@b:hs", "@mod:hs", None, "r", "c", at),
        "user.suspended": ("b", "@b:hs", "@mod:hs", "spam", at, "r", at),
        "user.unsuspended": ("b", "@b:hs", None, at),
    }
    assert set(samples) == {t.TYPE for t in EVENT_TYPES}
    for kind in EVENT_TYPES:
        validator = Draft202012Validator(schema_of(kind))
        payload = dump(kind(*samples[kind.TYPE]))
        assert not list(validator.iter_errors(payload)), kind.TYPE
        assert not validator.is_valid({**payload, "surprise": 1}), kind.TYPE


def test_a_component_is_referred_to() -> None:
    assert schema_of(Holder)["properties"]["items"]["items"] == {
        "$ref": "#/components/schemas/Shared"
    }
