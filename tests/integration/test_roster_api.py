"""The roster and policy API of a running bridge, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from typing import Any

import aiohttp
import pytest
from nio import AsyncClient, ProfileGetResponse

from bridge.api.openapi import build_document
from bridge.app import Bridge
from tests.conftest import Recorder, SynapseEnv
from tests.support.contract import check_response
from tests.support.waiting import eventually

pytestmark = pytest.mark.synapse


async def call(
    bridge: Bridge,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = "right",
    raw: bytes | None = None,
) -> tuple[int, Any]:
    """One call of the bridge's API; the answer is checked against the OpenAPI document."""
    headers = {}
    if token is not None:
        headers["Authorization"] = "Bearer " + (
            bridge.config.lms.api_token if token == "right" else token
        )
    url = f"http://127.0.0.1:{bridge.config.appservice.listen_port}{path}"
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, url, json=body if raw is None else None, data=raw, headers=headers
        ) as response,
    ):
        text = await response.text()
        body = (await response.json(content_type=None)) if text else None
        check_response(method, path, response.status, response.content_type, body)
        return response.status, body


async def seed(bridge: Bridge) -> None:
    records = [
        {"type": "institution", "id": "u1", "name": "Uni One", "timezone": "Europe/Berlin"},
        {"type": "user", "id": "stu", "display_name": "Sam Student"},
        {
            "type": "user",
            "id": "tut",
            "display_name": "Alex Kim",
            "availability": {
                "timezone": "Europe/Berlin",
                "note": "Mornings",
                "weekly_hours": [{"day": "mon", "start": "09:00", "end": "12:00"}],
            },
        },
        {"type": "member", "institution_id": "u1", "user_id": "stu", "role": "student"},
        {"type": "member", "institution_id": "u1", "user_id": "tut", "role": "tutor"},
        {"type": "course", "id": "alg", "institution_id": "u1", "title": "Algebra 101"},
        {"type": "batch", "id": "alg-a", "course_id": "alg", "title": "Group A"},
        {"type": "enrollment", "batch_id": "alg-a", "user_id": "stu"},
        {"type": "teaching", "batch_id": "alg-a", "user_id": "tut"},
    ]
    status, body = await call(bridge, "POST", "/api/v1/roster/bulk", {"records": records})
    assert status == 200, body


async def test_every_route_needs_its_token(bridge: tuple[Bridge, Recorder]) -> None:
    instance, _ = bridge
    document = build_document()
    for path, operations in document["paths"].items():
        if path in ("/health", "/ready"):
            continue
        concrete = path.replace("{", "").replace("}", "")
        for method, operation in operations.items():
            security = operation.get("security")
            if security == []:
                continue  # the embedded page and the code it trades; tested with the page
            status, body = await call(instance, method.upper(), concrete, token=None)
            assert (status, body["error"]["code"]) == (401, "unauthorized"), (method, path)
            status, body = await call(instance, method.upper(), concrete, token="wrong")
            # A wrong session token is an ended session; a wrong API token is forbidden.
            expected = (
                (401, "session_ended") if security == [{"embedSession": []}] else (403, "forbidden")
            )
            assert (status, body["error"]["code"]) == expected, (method, path)


async def test_the_openapi_document_lists_exactly_the_routes(
    bridge: tuple[Bridge, Recorder],
) -> None:
    instance, _ = bridge
    status, document = await call(instance, "GET", "/api/v1/openapi.json")
    assert status == 200 and document["openapi"].startswith("3.1")
    documented = {
        (method.upper(), path) for path, ops in document["paths"].items() for method in ops
    }
    served = {
        (route.method, route.resource.canonical)
        for route in instance.web_app().router.routes()
        if route.method != "HEAD" and not route.resource.canonical.startswith("/_matrix/")
    }
    assert served == documented


async def test_institutions_and_users(bridge: tuple[Bridge, Recorder]) -> None:
    instance, _ = bridge
    status, body = await call(
        instance,
        "PUT",
        "/api/v1/institutions/u1",
        {"name": "Uni One", "region": "de", "timezone": "Europe/Berlin"},
    )
    assert (status, body) == (
        200,
        {
            "id": "u1",
            "name": "Uni One",
            "region": "DE",
            "timezone": "Europe/Berlin",
            "content_rules": None,  # the configured default
        },
    )
    status, again = await call(
        instance,
        "PUT",
        "/api/v1/institutions/u1",
        {"name": "Uni One", "region": "de", "timezone": "Europe/Berlin"},
    )
    assert (status, again) == (200, body)  # idempotent
    status, user = await call(instance, "PUT", "/api/v1/users/Ada.L", {"display_name": "Ada L"})
    assert status == 200
    assert user["matrix_id"] == "@_lms__ada._l:test.local"
    assert (user["initials"], user["active"], user["memberships"]) == ("AL", True, [])
    assert (
        await call(instance, "PUT", "/api/v1/institutions/u1/members/Ada.L", {"role": "tutor"})
    )[0] == 200
    status, fetched = await call(instance, "GET", "/api/v1/users/Ada.L")
    assert fetched["memberships"] == [{"institution_id": "u1", "role": "tutor"}]
    assert (await call(instance, "DELETE", "/api/v1/institutions/u1/members/Ada.L"))[0] == 204
    assert (await call(instance, "DELETE", "/api/v1/institutions/u1/members/Ada.L"))[0] == 204
    assert (await call(instance, "GET", "/api/v1/users/Ada.L"))[1]["memberships"] == []


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/institutions/u9", {}, "name"),
        ("/api/v1/institutions/u9", {"name": "X", "colour": "red"}, "colour"),
        ("/api/v1/institutions/u9", {"name": "X", "timezone": "Mars/Base"}, "timezone"),
        ("/api/v1/institutions/u9", {"name": 5}, "name"),
        ("/api/v1/users/p9", {"display_name": ""}, "display_name"),
        ("/api/v1/users/p9", {"display_name": "P", "active": "yes"}, "active"),
        ("/api/v1/users/p9", {"display_name": "P", "avatar_url": "ftp://x"}, "avatar_url"),
        (
            "/api/v1/users/p9",
            {
                "display_name": "P",
                "availability": {
                    "weekly_hours": [{"day": "mon", "start": "10:00", "end": "09:00"}]
                },
            },
            "availability.weekly_hours[0].end",
        ),
        ("/api/v1/courses/c9", {"title": "T"}, "institution_id"),
        ("/api/v1/batches/b9", {"course_id": "c", "title": ""}, "title"),
    ],
)
async def test_bad_input_names_the_field(
    bridge: tuple[Bridge, Recorder], path: str, body: dict[str, Any], field: str
) -> None:
    status, error = await call(bridge[0], "PUT", path, body)
    assert status == 400
    assert error["error"]["code"] == "invalid_field"
    assert error["error"]["field"] == field


async def test_ids_and_values_that_could_break_storage_are_refused(
    bridge: tuple[Bridge, Recorder],
) -> None:
    instance, _ = bridge
    status, error = await call(instance, "PUT", "/api/v1/users/" + "x" * 300, {"display_name": "X"})
    assert (status, error["error"]["field"]) == (400, "user_id")
    status, error = await call(instance, "GET", "/api/v1/users/a%00b")
    assert (status, error["error"]["field"]) == (400, "user_id")
    status, error = await call(instance, "PUT", "/api/v1/users/p1", {"display_name": "A\u0000B"})
    assert (status, error["error"]["field"]) == (400, "display_name")
    status, error = await call(
        instance, "PUT", "/api/v1/users/p1", {"display_name": "A", "id": "z"}
    )
    assert (status, error["error"]["field"]) == (400, "id")
    await seed(instance)
    status, error = await call(
        instance, "PUT", "/api/v1/batches/alg-a/students/stu", {"ends_at": "9999-12-31"}
    )
    assert (status, error["error"]["field"]) == (400, "ends_at")


async def test_bulk_order_within_a_request_does_not_matter(
    bridge: tuple[Bridge, Recorder],
) -> None:
    instance, _ = bridge
    records = [
        {"type": "enrollment", "batch_id": "ob", "user_id": "ou"},
        {"type": "member", "institution_id": "oi", "user_id": "ou", "role": "student"},
        {"type": "batch", "id": "ob", "course_id": "oc", "title": "B"},
        {"type": "course", "id": "oc", "institution_id": "oi", "title": "C"},
        {"type": "user", "id": "ou", "display_name": "Olu"},
        {"type": "institution", "id": "oi", "name": "Order U"},
    ]
    status, body = await call(instance, "POST", "/api/v1/roster/bulk", {"records": records})
    assert status == 200, body
    # A record deleted in the same request can't be referred to.
    status, body = await call(
        instance,
        "POST",
        "/api/v1/roster/bulk",
        {
            "records": [
                {"type": "teaching", "batch_id": "ob", "user_id": "ou"},
                {"type": "batch", "id": "ob", "delete": True},
            ]
        },
    )
    assert (status, body["error"]["problems"][0]["missing"]) == (422, {"batch_id": "ob"})


async def test_bodies_that_are_not_json_or_too_big(
    synapse_env: SynapseEnv, sqlite_url: str
) -> None:
    config = synapse_env.bridge_config(sqlite_url)
    config = dataclasses.replace(config, lms=dataclasses.replace(config.lms, max_body_bytes=2048))
    instance = Bridge(config)
    await instance.start()
    try:
        status, error = await call(instance, "PUT", "/api/v1/institutions/u1", raw=b"{nope")
        assert (status, error["error"]["code"]) == (400, "invalid_json")
        big = {"name": "x" * 400, "padding": "y" * 4000}
        status, error = await call(instance, "PUT", "/api/v1/institutions/u1", big)
        assert (status, error["error"]["code"]) == (413, "body_too_large")
    finally:
        await instance.stop()


async def test_unknown_references(bridge: tuple[Bridge, Recorder]) -> None:
    instance, _ = bridge
    await seed(instance)
    status, error = await call(
        instance, "PUT", "/api/v1/courses/c2", {"institution_id": "nowhere", "title": "T"}
    )
    assert (status, error["error"]["code"]) == (422, "unknown_reference")
    assert error["error"]["missing"] == {"institution_id": "nowhere"}
    status, error = await call(
        instance, "PUT", "/api/v1/batches/b2", {"course_id": "nope", "title": "T"}
    )
    assert (status, error["error"]["missing"]) == (422, {"course_id": "nope"})
    status, error = await call(
        instance, "PUT", "/api/v1/institutions/nowhere/members/stu", {"role": "student"}
    )
    assert (status, error["error"]["missing"]) == (404, {"institution_id": "nowhere"})
    status, error = await call(instance, "PUT", "/api/v1/batches/alg-a/students/ghost", {})
    assert (status, error["error"]["missing"]) == (404, {"user_id": "ghost"})
    status, error = await call(instance, "DELETE", "/api/v1/batches/ghost/tutors/tut")
    assert (status, error["error"]["missing"]) == (404, {"batch_id": "ghost"})
    status, error = await call(instance, "GET", "/api/v1/users/ghost")
    assert (status, error["error"]["code"]) == (404, "not_found")


async def test_enrollments_and_teaching(bridge: tuple[Bridge, Recorder]) -> None:
    instance, _ = bridge
    await seed(instance)
    status, body = await call(
        instance,
        "PUT",
        "/api/v1/batches/alg-a/students/stu",
        {"begins_at": "2020-01-01", "ends_at": "2020-06-30"},
    )
    assert status == 200
    assert body["ends_at"] == "2020-07-01T00:00:00+00:00"  # a date ends at the end of the day
    decision = (await call(instance, "GET", "/api/v1/users/stu/can-message/tut"))[1]
    assert decision["allowed"] is False  # the enrollment is over
    await call(instance, "PUT", "/api/v1/batches/alg-a/students/stu", {})
    assert (await call(instance, "GET", "/api/v1/users/stu/can-message/tut"))[1]["allowed"]
    status, error = await call(
        instance,
        "PUT",
        "/api/v1/batches/alg-a/tutors/tut",
        {"begins_at": "2026-02-01", "ends_at": "2026-01-01"},
    )
    assert (status, error["error"]["field"]) == (400, "ends_at")
    assert (await call(instance, "DELETE", "/api/v1/batches/alg-a/tutors/tut"))[0] == 204
    decision = (await call(instance, "GET", "/api/v1/users/stu/can-message/tut"))[1]
    assert decision["code"] == "tutor_not_teaching_your_courses"


async def test_can_message_and_contacts(bridge: tuple[Bridge, Recorder]) -> None:
    instance, _ = bridge
    await seed(instance)
    status, decision = await call(instance, "GET", "/api/v1/users/stu/can-message/tut")
    assert (status, decision) == (
        200,
        {
            "allowed": True,
            "code": "your_tutor",
            "reason": "Alex Kim teaches your course Algebra 101",
            "institution_id": "u1",
        },
    )
    status, error = await call(instance, "GET", "/api/v1/users/stu/can-message/ghost")
    assert (status, error["error"]["missing"]) == (404, {"user_id": "ghost"})
    status, body = await call(instance, "GET", "/api/v1/users/stu/contacts?q=al&limit=5")
    assert status == 200
    assert body["contacts"] == [
        {
            "user_id": "tut",
            "display_name": "Alex Kim",
            "avatar_url": None,
            "initials": "AK",
            "avatar_color": body["contacts"][0]["avatar_color"],
            "role": "tutor",
            "reason": "Tutor · Algebra 101",
            "matrix_id": "@_lms_tut:test.local",
            # The tutor's stated hours, in words.
            "availability": {
                "hours": "Usually available Mon 09:00–12:00, Berlin time",
                "note": "Mornings",
            },
        }
    ]
    status, error = await call(instance, "GET", "/api/v1/users/stu/contacts?limit=0")
    assert (status, error["error"]["field"]) == (400, "limit")
    status, user = await call(instance, "GET", "/api/v1/users/tut")
    assert user["availability"]["weekly_hours"] == [
        {"day": "mon", "start": "09:00", "end": "12:00"}
    ]


async def test_bulk_is_all_or_nothing_and_names_every_bad_record(
    bridge: tuple[Bridge, Recorder],
) -> None:
    instance, _ = bridge
    records = [
        {"type": "institution", "id": "b1", "name": "Bulk U"},
        {"type": "user", "id": "bu1"},  # no display_name
        {"type": "course", "id": "bc", "institution_id": "b1", "title": "C"},
        {"type": "planet", "id": "x"},
        "not an object",
    ]
    status, error = await call(instance, "POST", "/api/v1/roster/bulk", {"records": records})
    assert status == 400
    assert [(p["index"], p["field"]) for p in error["error"]["problems"]] == [
        (1, "records[1].display_name"),
        (3, "records[3].type"),
        (4, "records[4]"),
    ]
    records = [
        {"type": "institution", "id": "b1", "name": "Bulk U"},
        {"type": "course", "id": "bc", "institution_id": "b1", "title": "C"},  # earlier ok
        {"type": "batch", "id": "bb", "course_id": "missing", "title": "B"},
        {"type": "member", "institution_id": "b1", "user_id": "nobody", "role": "student"},
    ]
    status, error = await call(instance, "POST", "/api/v1/roster/bulk", {"records": records})
    assert status == 422
    assert [(p["index"], p["missing"]) for p in error["error"]["problems"]] == [
        (2, {"course_id": "missing"}),
        (3, {"user_id": "nobody"}),
    ]
    # Nothing of the rejected bulks was applied.
    status, error = await call(
        instance, "PUT", "/api/v1/batches/bb", {"course_id": "bc", "title": "B"}
    )
    assert (status, error["error"]["missing"]) == (422, {"course_id": "bc"})


async def test_a_large_bulk_request_arrives_whole(bridge: tuple[Bridge, Recorder]) -> None:
    instance, _ = bridge
    records = [{"type": "institution", "id": "big", "name": "Big"}]
    records += [
        {"type": "user", "id": f"bulk-{n}", "display_name": f"Person Number {n} " + "x" * 60}
        for n in range(8000)
    ]
    records += [
        {"type": "member", "institution_id": "big", "user_id": f"bulk-{n}", "role": "student"}
        for n in range(8000)
    ]
    status, body = await call(instance, "POST", "/api/v1/roster/bulk", {"records": records})
    assert (status, body["counts"]) == (200, {"institutions": 1, "users": 8000, "members": 8000})
    assert (await call(instance, "GET", "/api/v1/users/bulk-7999"))[1]["memberships"] == [
        {"institution_id": "big", "role": "student"}
    ]


async def test_bulk_deletes(bridge: tuple[Bridge, Recorder]) -> None:
    instance, _ = bridge
    await seed(instance)
    status, body = await call(
        instance,
        "POST",
        "/api/v1/roster/bulk",
        {
            "records": [
                {"type": "enrollment", "batch_id": "alg-a", "user_id": "stu", "delete": True},
                {"type": "user", "id": "stu", "delete": True},
            ]
        },
    )
    assert (status, body["error"]["problems"][0]["index"]) == (400, 1)  # people aren't deleted
    status, body = await call(
        instance,
        "POST",
        "/api/v1/roster/bulk",
        {
            "records": [
                {"type": "enrollment", "batch_id": "alg-a", "user_id": "stu", "delete": True},
            ]
        },
    )
    assert (status, body["counts"]) == (200, {"assignments_deleted": 1})
    assert not (await call(instance, "GET", "/api/v1/users/stu/can-message/tut"))[1]["allowed"]


async def test_an_invite_makes_the_account_of_a_person_the_roster_knows(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    instance, _ = bridge
    instance.profile_sync.stop()  # as if the account had not been made yet
    _, matrix_id, person = await _named_and_watched(instance, synapse_env, "Ina Invited")
    try:
        assert await _profile(person, matrix_id) is None
        # Inviting an account Synapse hasn't seen makes it ask the bridge, which registers the
        # person the roster knows, with their name.
        await person.room_create(invite=[matrix_id])
        profile = await eventually(lambda: _profile(person, matrix_id), "the account made")
        assert profile.displayname == "Ina Invited"
    finally:
        await person.close()


async def _named_and_watched(
    instance: Bridge, synapse_env: SynapseEnv, name: str
) -> tuple[str, str, AsyncClient]:
    """A new person put on the roster (their platform and Matrix IDs), and a logged-in Matrix
    user to look at them."""
    platform_id = f"p{secrets.token_hex(4)}"  # the session's Synapse outlives each test
    await call(instance, "PUT", f"/api/v1/users/{platform_id}", {"display_name": name})
    user_id, password = await asyncio.to_thread(synapse_env.new_user)
    person = AsyncClient(synapse_env.synapse.url, user_id)
    await person.login(password)
    return platform_id, f"@_lms_{platform_id}:test.local", person


async def _profile(person: AsyncClient, user_id: str) -> ProfileGetResponse | None:
    response = await person.get_profile(user_id)
    return response if isinstance(response, ProfileGetResponse) else None


async def _shows_name(person: AsyncClient, user_id: str, name: str) -> bool:
    profile = await _profile(person, user_id)
    return profile is not None and profile.displayname == name


async def test_roster_names_reach_matrix_without_waiting(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv
) -> None:
    instance, _ = bridge
    platform_id, matrix_id, person = await _named_and_watched(instance, synapse_env, "Sam Student")
    try:
        # The roster naming a person is enough: their account is made, with their name and an
        # avatar, before anyone writes to them.
        async def with_avatar() -> ProfileGetResponse | None:
            profile = await _profile(person, matrix_id)
            return profile if profile is not None and profile.avatar_url else None

        profile = await eventually(with_avatar, "the account made with an avatar")
        assert profile.displayname == "Sam Student"
        # A rename through the API reaches the Matrix profile shortly after the call returns.
        status, _ = await call(
            instance, "PUT", f"/api/v1/users/{platform_id}", {"display_name": "Samantha Student"}
        )
        assert status == 200
        await eventually(lambda: _shows_name(person, matrix_id, "Samantha Student"), "the rename")
        # A name longer than Synapse takes (256) is shortened, not a sync that fails for ever.
        await call(instance, "PUT", f"/api/v1/users/{platform_id}", {"display_name": "L" * 300})
        await eventually(lambda: _shows_name(person, matrix_id, "L" * 256), "the shortened name")
        # Deactivating keeps the account (and its history).
        await call(
            instance,
            "PUT",
            f"/api/v1/users/{platform_id}",
            {"display_name": "Samantha Student", "active": False},
        )
        assert await _profile(person, matrix_id) is not None
    finally:
        await person.close()
