"""Roster routes: idempotent upserts of the LMS's records, one at a time or in bulk."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from bridge.api.fields import (
    RECORD_FIELDS,
    FieldError,
    json_schema,
    parse_bulk_record,
    to_change,
    to_delete,
    validate_body,
)
from bridge.api.http import ApiFailure, path_id, read_json, reply
from bridge.api.operations import Operation, Reply, bind
from bridge.contract.roster import Availability, BulkResult, Membership, UserView
from bridge.contract.shapes import load
from bridge.domain.avatar import initials_avatar
from bridge.domain.ids import MatrixIdMapper
from bridge.domain.roster import RosterChange
from bridge.services.roster import RosterConflict, RosterRejected, RosterService
from bridge.store.roster import UserRecord

MAX_BULK_RECORDS = 50_000

# (method, path, record type, {path parameter: record key}) of the single-record routes.
RECORD_ROUTES: list[tuple[str, str, str, dict[str, str]]] = [
    ("PUT", "/api/v1/institutions/{institution_id}", "institution", {"institution_id": "id"}),
    ("PUT", "/api/v1/users/{user_id}", "user", {"user_id": "id"}),
    (
        "PUT",
        "/api/v1/institutions/{institution_id}/members/{user_id}",
        "member",
        {"institution_id": "institution_id", "user_id": "user_id"},
    ),
    (
        "DELETE",
        "/api/v1/institutions/{institution_id}/members/{user_id}",
        "member",
        {"institution_id": "institution_id", "user_id": "user_id"},
    ),
    ("PUT", "/api/v1/courses/{course_id}", "course", {"course_id": "id"}),
    ("PUT", "/api/v1/batches/{batch_id}", "batch", {"batch_id": "id"}),
    (
        "PUT",
        "/api/v1/batches/{batch_id}/students/{user_id}",
        "enrollment",
        {"batch_id": "batch_id", "user_id": "user_id"},
    ),
    (
        "DELETE",
        "/api/v1/batches/{batch_id}/students/{user_id}",
        "enrollment",
        {"batch_id": "batch_id", "user_id": "user_id"},
    ),
    (
        "PUT",
        "/api/v1/batches/{batch_id}/tutors/{user_id}",
        "teaching",
        {"batch_id": "batch_id", "user_id": "user_id"},
    ),
    (
        "DELETE",
        "/api/v1/batches/{batch_id}/tutors/{user_id}",
        "teaching",
        {"batch_id": "batch_id", "user_id": "user_id"},
    ),
]


def user_view(user: UserRecord, ids: MatrixIdMapper) -> UserView:
    """A person as the API shows them."""
    avatar = initials_avatar(user.display_name, user.id)
    return UserView(
        id=user.id,
        display_name=user.display_name,
        avatar_url=user.avatar_url,
        initials=avatar.initials,
        avatar_color=avatar.color,
        active=user.active,
        availability=load(Availability, json.loads(user.availability))
        if user.availability
        else None,
        matrix_id=ids.user_id(user.id),
        memberships=[Membership(institution, role) for institution, role in user.memberships],
    )


def _bulk_body() -> dict[str, Any]:
    records = [json_schema(kind, with_keys=True) for kind in RECORD_FIELDS]
    return {
        "type": "object",
        "required": ["records"],
        "properties": {
            "records": {"type": "array", "maxItems": MAX_BULK_RECORDS, "items": {"oneOf": records}}
        },
    }


# The routes beside the single-record ones (those are in RECORD_ROUTES).
OPERATIONS = (
    Operation(
        "GET",
        "/api/v1/users/{user_id}",
        "get_user",
        "roster",
        "A person with memberships and Matrix ID",
        replies=(Reply(200, "OK", UserView),),
        errors=(400, 404),
    ),
    Operation(
        "POST",
        "/api/v1/roster/bulk",
        "bulk",
        "roster",
        f"Apply up to {MAX_BULK_RECORDS} records at once, all or none",
        body=_bulk_body(),
        replies=(Reply(200, "OK", BulkResult),),
        errors=(400, 409, 413, 422),
    ),
)


class RosterRoutes:
    """HTTP handlers of the roster API (thin: parse, call the service, shape the answer)."""

    def __init__(
        self,
        service: RosterService,
        ids: MatrixIdMapper,
        max_body_bytes: int,
    ) -> None:
        self._service = service
        self._ids = ids
        self._max_body = max_body_bytes

    def routes(self) -> list[web.RouteDef]:
        """The routes to add to the bridge's web application."""
        routes = [
            web.route(method, path, self._record_handler(method, record_type, params))
            for method, path, record_type, params in RECORD_ROUTES
        ]
        return [*routes, *bind(self, OPERATIONS)]

    def _record_handler(self, method: str, record_type: str, params: dict[str, str]) -> Any:
        async def handle(request: web.Request) -> web.Response:
            keys = {key: path_id(request, param) for param, key in params.items()}
            if method == "DELETE":
                await self._require_path_records(record_type, keys)
                change = to_delete(record_type, keys)
            else:
                body = await read_json(request, self._max_body)
                try:
                    values = validate_body(record_type, body)
                except FieldError as exc:
                    raise _invalid(exc) from None
                change = to_change(record_type, keys, values)
            await self._apply_one(change, set(params.values()) - {"id"})
            if method == "DELETE":
                return web.Response(status=204)
            if record_type == "user":
                return await self._user_response(keys["id"])
            return web.json_response({**keys, **_jsonable(values)})

        return handle

    async def _require_path_records(self, record_type: str, keys: dict[str, str]) -> None:
        parent = "institution" if record_type == "member" else "batch"
        parent_key = keys["institution_id"] if record_type == "member" else keys["batch_id"]
        for kind, key, field in (
            (parent, parent_key, f"{parent}_id"),
            ("user", keys["user_id"], "user_id"),
        ):
            if not await self._service.exists(kind, key):
                raise ApiFailure(
                    404, "not_found", f"No {kind} with id {key!r}", missing={field: key}
                )

    async def _apply_one(self, change: RosterChange, path_fields: set[str]) -> None:
        try:
            await self._service.apply([change])
        except RosterConflict:
            raise _conflict() from None
        except RosterRejected as rejected:
            problem = rejected.problems[0]
            field = next(iter(problem.missing))
            if field in path_fields:
                raise ApiFailure(
                    404,
                    "not_found",
                    problem.message[0].upper() + problem.message[1:],
                    missing=problem.missing,
                ) from None
            raise ApiFailure(
                422,
                "unknown_reference",
                f"{field}: {problem.message}",
                field=field,
                missing=problem.missing,
            ) from None

    async def _user_response(self, user_id: str) -> web.Response:
        user = await self._service.get_user(user_id)
        if user is None:
            raise ApiFailure(
                404, "not_found", f"No user with id {user_id!r}", missing={"user_id": user_id}
            )
        return reply(user_view(user, self._ids))

    async def get_user(self, request: web.Request) -> web.Response:
        """`GET /api/v1/users/{user_id}`: the person, memberships and Matrix ID."""
        return await self._user_response(path_id(request, "user_id"))

    async def bulk(self, request: web.Request) -> web.Response:
        """`POST /api/v1/roster/bulk`: many records, all applied or none."""
        body = await read_json(request, self._max_body)
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list):
            raise ApiFailure(400, "invalid_field", "records: expected a list", field="records")
        if len(records) > MAX_BULK_RECORDS:
            raise ApiFailure(
                413,
                "too_many_records",
                f"records: at most {MAX_BULK_RECORDS} per request",
                limit=MAX_BULK_RECORDS,
            )
        changes: list[RosterChange] = []
        problems: list[dict[str, Any]] = []
        for index, record in enumerate(records):
            try:
                changes.append(parse_bulk_record(index, record))
            except FieldError as exc:
                problems.append(
                    {
                        "index": index,
                        "code": "invalid_field",
                        "field": exc.field,
                        "message": str(exc),
                    }
                )
        if problems:
            raise ApiFailure(
                400,
                "invalid_records",
                f"{len(problems)} record(s) are invalid; nothing was applied",
                problems=problems,
            )
        try:
            result = await self._service.apply(changes)
        except RosterConflict:
            raise _conflict() from None
        except RosterRejected as rejected:
            raise ApiFailure(
                422,
                "unknown_references",
                f"{len(rejected.problems)} record(s) refer to missing records; nothing was applied",
                problems=[
                    {"index": p.index, "code": p.code, "message": p.message, "missing": p.missing}
                    for p in rejected.problems
                ],
            ) from None
        return reply(BulkResult(len(changes), result.counts))


def _conflict() -> ApiFailure:
    return ApiFailure(
        409,
        "conflict",
        "A concurrent change removed a record these refer to; nothing was applied: retry",
    )


def _invalid(exc: FieldError) -> ApiFailure:
    return ApiFailure(400, "invalid_field", str(exc), field=exc.field)


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in values.items():
        if hasattr(value, "isoformat"):
            out[key] = value.isoformat()
        elif key == "availability" and value is not None:
            out[key] = json.loads(value)
        elif key == "content_rules" and value is not None:
            out[key] = {"contact_info": value}  # the one rule there is
        else:
            out[key] = value
    return out
