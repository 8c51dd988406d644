"""The tests' contract oracle: what the OpenAPI document does not describe is refused."""

from __future__ import annotations

import pytest

from tests.support.contract import ContractViolation, check_response, contract

_ERROR = {"error": {"code": "not_found", "message": "No user", "missing": {"user_id": "x"}}}
_JSON = "application/json; charset=utf-8"


def test_documented_answers_pass() -> None:
    check_response("GET", "/api/v1/users/x", 404, _JSON, _ERROR)
    check_response("DELETE", "/api/v1/batches/b/students/u", 204, None, None)
    check_response("GET", "/health", 200, _JSON, {"status": "ok"})
    check_response("GET", "/nowhere", 404, _JSON, _ERROR)  # no route: the documented error
    check_response("GET", "/api/v1/messages/m/attachment", 200, "image/png", b"\x89PNG")


@pytest.mark.parametrize(
    ("method", "path", "status", "content_type", "body", "why"),
    [
        ("GET", "/api/v1/users/x", 409, _JSON, _ERROR, "status 409 is not documented"),
        ("GET", "/api/v1/users/x", 404, _JSON, {"error": {"code": "x"}}, "'message'"),
        ("GET", "/health", 200, _JSON, {"status": "ok", "extra": 1}, "extra"),
        ("DELETE", "/api/v1/batches/b/students/u", 204, _JSON, {}, "without a body"),
        ("GET", "/api/v1/messages/m/attachment", 200, "text/html", b"<p>", "text/html"),
        ("GET", "/nowhere", 200, _JSON, {}, "no documented operation"),
    ],
)
def test_undocumented_answers_fail(
    method: str, path: str, status: int, content_type: str, body: object, why: str
) -> None:
    with pytest.raises(ContractViolation, match=why):
        check_response(method, path, status, content_type, body)


def test_a_literal_segment_beats_a_parameter() -> None:
    assert contract().template_of("/api/v1/roster/bulk") == "/api/v1/roster/bulk"
    assert contract().template_of("/api/v1/users/u/contacts") == "/api/v1/users/{user_id}/contacts"
    assert contract().template_of("/api/v1/users//contacts") is None  # an empty id is no id
