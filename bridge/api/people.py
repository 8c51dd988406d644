"""Policy routes: may A message B, and whom may A start a conversation with."""

from __future__ import annotations

from aiohttp import web

from bridge.api.http import ApiFailure, path_id, query_int
from bridge.domain.avatar import initials_avatar
from bridge.domain.ids import MatrixIdMapper
from bridge.services.policy import MAX_CONTACTS, PolicyService, UnknownUser


class PeopleRoutes:
    """HTTP handlers of `can-message` and `contacts`."""

    def __init__(self, policy: PolicyService, ids: MatrixIdMapper) -> None:
        self._policy = policy
        self._ids = ids

    def routes(self) -> list[web.RouteDef]:
        """The routes to add to the bridge's web application."""
        return [
            web.get("/api/v1/users/{user_id}/can-message/{other_id}", self.can_message),
            web.get("/api/v1/users/{user_id}/contacts", self.contacts),
        ]

    async def can_message(self, request: web.Request) -> web.Response:
        """Whether the user may start a conversation with the other, and why."""
        try:
            decision = await self._policy.can_start(
                path_id(request, "user_id"), path_id(request, "other_id")
            )
        except UnknownUser as exc:
            raise _unknown(exc) from None
        return web.json_response(
            {
                "allowed": decision.allowed,
                "code": decision.code,
                "reason": decision.reason,
                "institution_id": decision.institution_id,
            }
        )

    async def contacts(self, request: web.Request) -> web.Response:
        """The people the user may start a conversation with, best name matches first."""
        query = request.query.get("q", "")
        if len(query) > 200:
            raise ApiFailure(400, "invalid_parameter", "q: at most 200 characters", field="q")
        limit = query_int(request, "limit", 20, 1, MAX_CONTACTS)
        try:
            found = await self._policy.contacts(path_id(request, "user_id"), query, limit)
        except UnknownUser as exc:
            raise _unknown(exc) from None
        return web.json_response(
            {
                "contacts": [
                    {
                        "user_id": c.user_id,
                        "display_name": c.display_name,
                        "avatar_url": c.avatar_url,
                        "initials": initials_avatar(c.display_name, c.user_id).initials,
                        "avatar_color": initials_avatar(c.display_name, c.user_id).color,
                        "role": c.role,
                        "reason": c.reason,
                        "matrix_id": self._ids.user_id(c.user_id),
                    }
                    for c in found
                ]
            }
        )


def _unknown(exc: UnknownUser) -> ApiFailure:
    return ApiFailure(
        404, "not_found", f"No user with id {exc.user_id!r}", missing={"user_id": exc.user_id}
    )
