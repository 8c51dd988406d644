"""The bridge's OpenAPI document as a test oracle: every response and event the tests see is
checked against it, so the document cannot drift from what the bridge really answers.

Schemas are validated with `jsonschema` (Draft 2020-12, the dialect of OpenAPI 3.1), with each
`$ref` resolved inside the document.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from bridge.api.openapi import build_document

_DOCUMENT_URI = "urn:lms-matrix-bridge:openapi"
# RFC 3339, the date-time of JSON Schema (jsonschema checks it only with an extra package).
_DATE_TIME = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", re.ASCII | re.IGNORECASE
)
_FORMATS = FormatChecker()


@_FORMATS.checks("date-time")
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True  # formats only constrain strings
    if not _DATE_TIME.fullmatch(value):
        return False
    try:
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


class ContractViolation(AssertionError):
    """A response or event the document does not describe."""


def _pointer(*parts: str) -> str:
    """A JSON pointer (RFC 6901) into the document."""
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def _media_matches(actual: str, documented: str) -> bool:
    """Whether a response's media type is one the document lists (`image/*` style too)."""
    kind, _, sub = actual.partition("/")
    doc_kind, _, doc_sub = documented.lower().partition("/")
    return (doc_kind in ("*", kind)) and (doc_sub in ("*", sub))


class Contract:
    """Checks responses and events against one OpenAPI document."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self._registry: Registry[Any] = Registry().with_resource(_DOCUMENT_URI, resource)
        self._validators: dict[str, Draft202012Validator] = {}
        # Path templates, most literal segments first: a literal segment beats a parameter.
        self._templates = sorted(
            document["paths"],
            key=lambda template: -sum(not part.startswith("{") for part in template.split("/")),
        )

    def _validator(self, pointer: str) -> Draft202012Validator:
        if pointer not in self._validators:
            self._validators[pointer] = Draft202012Validator(
                {"$ref": f"{_DOCUMENT_URI}#{pointer}"},
                registry=self._registry,
                format_checker=_FORMATS,
            )
        return self._validators[pointer]

    def _validate(self, pointer: str, instance: Any, what: str) -> None:
        errors = sorted(
            self._validator(pointer).iter_errors(instance), key=lambda e: list(e.absolute_path)
        )
        if errors:
            details = "\n".join(
                f"  at {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message[:300]}"
                for e in errors[:10]
            )
            raise ContractViolation(
                f"{what} does not match {pointer}:\n{details}\n{instance!r:.2000}"
            )

    def template_of(self, path: str) -> str | None:
        """The document's path template a concrete path matches, if any."""
        segments = path.split("/")
        for template in self._templates:
            parts = template.split("/")
            if len(parts) == len(segments) and all(
                part == segment or (part.startswith("{") and segment)
                for part, segment in zip(parts, segments, strict=True)
            ):
                return template
        return None

    def check_response(
        self, method: str, url: str, status: int, content_type: str | None, body: Any
    ) -> None:
        """Check one answer: its status is documented for the operation, and its body (parsed
        JSON, raw bytes, or None when empty) matches that status's schema.

        A path no operation matches must be answered 404 (or 405) with the documented error.
        """
        method = method.lower()
        path = urlsplit(url).path
        what = f"{method.upper()} {path} → {status}"
        template = self.template_of(path)
        media = (content_type or "").split(";")[0].strip().lower()
        if template is None or method not in self.document["paths"][template]:
            if status not in (404, 405):
                raise ContractViolation(f"{what}: no documented operation, yet not 404/405")
            self._validate(_pointer("components", "schemas", "Error"), body, what)
            return
        responses = self.document["paths"][template][method]["responses"]
        key = next(
            (k for k in (str(status), f"{str(status)[0]}XX", "default") if k in responses), None
        )
        if key is None:
            raise ContractViolation(
                f"{what}: status {status} is not documented for {method.upper()} {template} "
                f"(documented: {', '.join(responses)})\n{body!r:.2000}"
            )
        content = responses[key].get("content")
        if not content:
            if body not in (None, b"", ""):
                raise ContractViolation(f"{what}: documented without a body, got {body!r:.500}")
            return
        if body in (None, b"", ""):
            raise ContractViolation(f"{what}: documented with a body ({', '.join(content)}), none")
        documented = next((m for m in content if _media_matches(media, m)), None)
        if documented is None:
            raise ContractViolation(
                f"{what}: Content-Type {media!r} is not documented ({', '.join(content)})"
            )
        if documented == "application/json":
            pointer = _pointer("paths", template, method, "responses", key, "content", documented)
            self._validate(pointer + "/schema", body, what)

    def check_event(self, event: Any, where: str = "event") -> None:
        """Check one event envelope and its `data` against the schema of its type."""
        self._validate(_pointer("components", "schemas", "Event"), event, where)
        schemas = self.document["components"]["schemas"]
        if not isinstance(event, dict) or event.get("type") not in schemas:
            raise ContractViolation(f"{where}: no schema for event type {event!r:.300}")
        self._validate(
            _pointer("components", "schemas", event["type"]),
            event["data"],
            f"{where} {event['type']} data",
        )


@functools.cache
def contract() -> Contract:
    """The contract of the bridge's own document, built once."""
    return Contract(build_document())


def check_response(method: str, url: str, status: int, content_type: str | None, body: Any) -> None:
    """Check an answer of the bridge's API against the document (see Contract.check_response);
    a feed of events also has each event checked against the schema of its type."""
    checked = contract()
    checked.check_response(method, url, status, content_type, body)
    path = urlsplit(url).path
    if path == "/api/v1/events" and status == 200 and isinstance(body, dict):
        for event in body.get("events", []):
            checked.check_event(event, f"GET /api/v1/events seq {event.get('seq')}")


def check_event(event: Any, where: str = "event") -> None:
    """Check an event (from the feed or a webhook) against the document."""
    contract().check_event(event, where)
