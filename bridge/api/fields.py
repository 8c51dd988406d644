"""Request bodies of the roster API: field specs that both validate requests and describe them in
the OpenAPI document, so the two cannot drift."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import available_timezones

from bridge.contract.roster import Availability, ContentRules
from bridge.contract.shapes import FieldError, load, schema_of
from bridge.contract.values import MAX_ID, check_id
from bridge.domain.moments import parse_moment
from bridge.domain.policy import ROLES
from bridge.domain.roster import (
    AssignmentDelete,
    AssignmentPut,
    BatchDelete,
    BatchPut,
    CourseDelete,
    CoursePut,
    InstitutionDelete,
    InstitutionPut,
    MembershipDelete,
    MembershipPut,
    RosterChange,
    UserPut,
)
from bridge.domain.text import clean_name, is_blank

MAX_TEXT = 500
_ZONES = frozenset(available_timezones() | {"UTC"})


@dataclass(frozen=True)
class Field:
    """One field of a request body."""

    name: str
    kind: str  # id, text, boolean, url, timezone, region, role, moment, availability
    required: bool = False
    nullable: bool = True
    description: str = ""
    default: Any = None


def _id(name: str, description: str) -> Field:
    return Field(name, "id", required=True, nullable=False, description=description)


RECORD_FIELDS: dict[str, list[Field]] = {
    "institution": [
        Field("name", "text", required=True, nullable=False, description="Display name"),
        Field("region", "region", description="ISO 3166 country code, for phone number rules"),
        Field("timezone", "timezone", description="IANA time zone, e.g. Europe/Berlin"),
        Field("content_rules", "content_rules", description="The institution's content rules"),
    ],
    "user": [
        Field("display_name", "text", required=True, nullable=False, description="Full name"),
        Field("avatar_url", "url", description="Photo URL; without one an initials avatar"),
        Field("active", "boolean", nullable=False, default=True, description="False deactivates"),
        Field("availability", "availability", description="A tutor's stated availability"),
    ],
    "member": [
        Field("role", "role", required=True, nullable=False, description="Role at the institution"),
    ],
    "course": [
        _id("institution_id", "The institution the course belongs to"),
        Field("title", "text", required=True, nullable=False, description="Course title"),
    ],
    "batch": [
        _id("course_id", "The course the batch belongs to"),
        Field("title", "text", required=True, nullable=False, description="Batch title"),
    ],
    "enrollment": [
        Field("begins_at", "moment", description="Counts from (a date means 00:00 UTC)"),
        Field("ends_at", "moment", description="Counts until (a date means the end of that day)"),
    ],
}
RECORD_FIELDS["teaching"] = RECORD_FIELDS["enrollment"]

# The identifying fields of each record type, taken from the URL in single-record routes.
RECORD_KEYS: dict[str, list[str]] = {
    "institution": ["id"],
    "user": ["id"],
    "member": ["institution_id", "user_id"],
    "course": ["id"],
    "batch": ["id"],
    "enrollment": ["batch_id", "user_id"],
    "teaching": ["batch_id", "user_id"],
}


def validate_body(
    record_type: str, body: Any, prefix: str = "", *, in_bulk: bool = False
) -> dict[str, Any]:
    """Check a body against its record type; returns the cleaned values.

    Single-record bodies carry only fields (the keys are in the URL); bulk records also carry
    their keys, `type` and `delete`.
    """
    if not isinstance(body, dict):
        raise FieldError(prefix.rstrip(".") or "body", "expected a JSON object")
    try:
        return _values(record_type, body, in_bulk)
    except FieldError as exc:  # the checks name fields from the record; the path starts here
        raise FieldError(f"{prefix}{exc.field}", exc.message) from None


# Per record type: the fields a body may carry, alone and in a bulk record.
_KNOWN = {t: frozenset(spec.name for spec in specs) for t, specs in RECORD_FIELDS.items()}
_KNOWN_IN_BULK = {t: _KNOWN[t] | set(RECORD_KEYS[t]) | {"type", "delete"} for t in RECORD_FIELDS}


def _values(record_type: str, body: dict[str, Any], in_bulk: bool) -> dict[str, Any]:
    known = (_KNOWN_IN_BULK if in_bulk else _KNOWN)[record_type]
    if not known.issuperset(body):
        raise FieldError(next(key for key in body if key not in known), "unknown field")
    values: dict[str, Any] = {}
    for spec in RECORD_FIELDS[record_type]:
        name = spec.name
        if name not in body:
            if spec.required:
                raise FieldError(name, "required")
            values[name] = spec.default
            continue
        value = body[name]
        if value is None:
            if not spec.nullable:
                raise FieldError(name, "must not be null")
            values[name] = None
            continue
        values[name] = _CHECKS[spec.kind](name, value, spec)
    begins, ends = values.get("begins_at"), values.get("ends_at")
    if begins is not None and ends is not None and ends <= begins:
        raise FieldError("ends_at", "must be after begins_at")
    return values


def _id_value(path: str, value: Any, _spec: Field) -> str:
    return check_id(path, value)


def _text(path: str, value: Any, _spec: Field) -> str:
    if not isinstance(value, str):
        raise FieldError(path, "expected a non-empty string")
    if "\x00" in value:
        raise FieldError(path, "must not contain NUL characters")
    if len(value) > MAX_TEXT:
        raise FieldError(path, f"longer than {MAX_TEXT} characters")
    cleaned = clean_name(value)
    if is_blank(cleaned):
        raise FieldError(path, "expected a non-empty string")
    return cleaned


def _boolean(path: str, value: Any, _spec: Field) -> bool:
    if not isinstance(value, bool):
        raise FieldError(path, "expected true or false")
    return value


def _url(path: str, value: Any, _spec: Field) -> str:
    if not isinstance(value, str) or len(value) > 2000:
        raise FieldError(path, "expected a URL")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FieldError(path, "expected an http:// or https:// URL")
    return value


def _timezone(path: str, value: Any, _spec: Field) -> str:
    if not isinstance(value, str) or value not in _ZONES:
        raise FieldError(path, "expected an IANA time zone such as Europe/Berlin")
    return value


def _region(path: str, value: Any, _spec: Field) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]{2}", value):
        raise FieldError(path, "expected a two-letter country code such as DE")
    return value.upper()


def _role(path: str, value: Any, _spec: Field) -> str:
    if value not in ROLES:
        raise FieldError(path, f"expected one of {', '.join(ROLES)}")
    return str(value)


def check_moment(path: str, value: Any, _spec: Field | None = None) -> datetime:
    """An ISO 8601 date or date-time; a date that ends a period means the end of that day."""
    if not isinstance(value, str):
        raise FieldError(path, "expected an ISO 8601 date or date-time")
    try:
        return parse_moment(value, end_of_period=path.endswith("ends_at"))
    except ValueError:
        raise FieldError(path, "expected an ISO 8601 date or date-time") from None


def _availability(path: str, value: Any, _spec: Field) -> str:
    # The shape checks the fields and their forms; what it can't say is checked here.
    availability = load(Availability, value, path)
    if isinstance(availability.timezone, str):
        _timezone(f"{path}.timezone", availability.timezone, _spec)
    for n, slot in enumerate(availability.weekly_hours or []):
        if slot.end <= slot.start:
            raise FieldError(f"{path}.weekly_hours[{n}].end", "must be after start")
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _content_rules(path: str, value: Any, _spec: Field) -> str:
    return load(ContentRules, value, path).contact_info


_CHECKS = {
    "id": _id_value,
    "text": _text,
    "boolean": _boolean,
    "url": _url,
    "timezone": _timezone,
    "region": _region,
    "role": _role,
    "moment": check_moment,
    "availability": _availability,
    "content_rules": _content_rules,
}


def to_change(record_type: str, keys: dict[str, str], values: dict[str, Any]) -> RosterChange:
    """The roster change a validated record asks for."""
    k = keys
    match record_type:
        case "institution":
            return InstitutionPut(
                k["id"],
                values["name"],
                values["region"],
                values["timezone"],
                contact_info=values["content_rules"],
            )
        case "user":
            return UserPut(
                k["id"],
                values["display_name"],
                values["avatar_url"],
                values["active"],
                values["availability"],
            )
        case "member":
            return MembershipPut(k["institution_id"], k["user_id"], values["role"])
        case "course":
            return CoursePut(k["id"], values["institution_id"], values["title"])
        case "batch":
            return BatchPut(k["id"], values["course_id"], values["title"])
        case "enrollment" | "teaching":
            return AssignmentPut(
                "student" if record_type == "enrollment" else "tutor",
                k["batch_id"],
                k["user_id"],
                values["begins_at"],
                values["ends_at"],
            )
    raise ValueError(record_type)


def to_delete(record_type: str, keys: dict[str, str]) -> RosterChange:
    """The roster change that removes a record (people are deactivated, never deleted)."""
    k = keys
    match record_type:
        case "institution":
            return InstitutionDelete(k["id"])
        case "member":
            return MembershipDelete(k["institution_id"], k["user_id"])
        case "course":
            return CourseDelete(k["id"])
        case "batch":
            return BatchDelete(k["id"])
        case "enrollment" | "teaching":
            kind = "student" if record_type == "enrollment" else "tutor"
            return AssignmentDelete(kind, k["batch_id"], k["user_id"])
    raise FieldError("delete", f"a {record_type} can't be deleted (deactivate people instead)")


def parse_bulk_record(index: int, record: Any) -> RosterChange:
    """One record of a bulk request: `{"type": ..., <keys>, <fields>, "delete"?: true}`."""
    if not isinstance(record, dict):
        raise FieldError(f"records[{index}]", "expected a JSON object")
    try:
        return _bulk_change(record)
    except FieldError as exc:  # paths are built only for the record at fault
        raise FieldError(f"records[{index}].{exc.field}", exc.message) from None


def _bulk_change(record: dict[str, Any]) -> RosterChange:
    record_type = record.get("type")
    if not isinstance(record_type, str) or record_type not in RECORD_FIELDS:
        raise FieldError("type", f"expected one of {', '.join(RECORD_FIELDS)}")
    keys = {key: check_id(key, record.get(key)) for key in RECORD_KEYS[record_type]}
    delete = record.get("delete", False)
    if not isinstance(delete, bool):
        raise FieldError("delete", "expected true or false")
    if delete:
        try:
            return to_delete(record_type, keys)
        except FieldError as exc:
            raise FieldError("delete", exc.message) from None
    return to_change(record_type, keys, _values(record_type, record, in_bulk=True))


def json_schema(record_type: str, with_keys: bool = False) -> dict[str, Any]:
    """The JSON Schema of a record type's body (for the OpenAPI document)."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    if with_keys:
        properties["type"] = {"type": "string", "enum": [record_type]}
        properties["delete"] = {"type": "boolean", "description": "Remove the record instead"}
        required.append("type")
        for key in RECORD_KEYS[record_type]:
            properties[key] = {"type": "string", "minLength": 1, "maxLength": MAX_ID}
            required.append(key)
    for spec in RECORD_FIELDS[record_type]:
        schema = dict(_SCHEMAS[spec.kind])
        if spec.description:
            schema["description"] = spec.description
        if spec.nullable:
            schema = {"anyOf": [schema, {"type": "null"}], "description": spec.description}
        properties[spec.name] = schema
        if spec.required:
            required.append(spec.name)
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return schema


def stored_schema(record_type: str, keys: list[str]) -> dict[str, Any]:
    """The JSON Schema of a stored record as a single-record PUT answers it: its `keys` (from
    the URL) and every field, cleaned (a region upper-cased, a moment a full date-time)."""
    properties: dict[str, Any] = {key: {"type": "string"} for key in keys}
    for spec in RECORD_FIELDS[record_type]:
        schema = dict(_STORED.get(spec.kind, _SCHEMAS[spec.kind]))
        if spec.description:
            schema["description"] = spec.description
        # A field left out is stored as its default: null for the nullable ones.
        if spec.nullable and not spec.required:
            schema = {"anyOf": [schema, {"type": "null"}], "description": spec.description}
        properties[spec.name] = schema
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


_SCHEMAS: dict[str, dict[str, Any]] = {
    "id": {"type": "string", "minLength": 1, "maxLength": MAX_ID},
    "text": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT},
    "boolean": {"type": "boolean"},
    "url": {"type": "string", "format": "uri"},
    "timezone": {"type": "string", "example": "Europe/Berlin"},
    "region": {"type": "string", "pattern": "^[A-Za-z]{2}$"},
    "role": {"type": "string", "enum": list(ROLES)},
    "moment": {"type": "string", "description": "ISO 8601 date or date-time"},
    "availability": schema_of(Availability, request=True),
    "content_rules": schema_of(ContentRules, request=True),
}
# How a stored field is answered, where that differs from what a request may send.
_STORED: dict[str, dict[str, Any]] = {
    "text": {"type": "string", "minLength": 1},
    "url": {"type": "string"},
    "region": {"type": "string", "pattern": "^[A-Z]{2}$"},
    "moment": {"type": "string", "format": "date-time"},
}
