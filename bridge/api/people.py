"""Policy routes: may A message B, and whom may A start a conversation with."""

from __future__ import annotations

from aiohttp import web

from bridge.api.http import ApiFailure, path_id, read_query, reply
from bridge.api.operations import Operation, Reply, bind
from bridge.contract.policy import CanMessage, Contact, Contacts, ContactsQuery
from bridge.domain.avatar import initials_avatar
from bridge.domain.ids import MatrixIdMapper
from bridge.services.policy import Contact as PolicyContact
from bridge.services.policy import PolicyService, UnknownUser

OPERATIONS = (
    Operation(
        "GET",
        "/api/v1/users/{user_id}/can-message/{other_id}",
        "can_message",
        "policy",
        "May the user start a conversation with the other person, and why",
        replies=(Reply(200, "OK", CanMessage),),
        errors=(400, 404),
    ),
    Operation(
        "GET",
        "/api/v1/users/{user_id}/contacts",
        "contacts",
        "policy",
        "People the user may start a conversation with, best matches first",
        query=ContactsQuery,
        replies=(Reply(200, "OK", Contacts),),
        errors=(400, 404),
    ),
)


class PeopleRoutes:
    """HTTP handlers of `can-message` and `contacts`."""

    def __init__(self, policy: PolicyService, ids: MatrixIdMapper) -> None:
        self._policy = policy
        self._ids = ids

    def routes(self) -> list[web.RouteDef]:
        """The routes to add to the bridge's web application."""
        return bind(self, OPERATIONS)

    async def can_message(self, request: web.Request) -> web.Response:
        """Whether the user may start a conversation with the other, and why."""
        try:
            decision = await self._policy.can_start(
                path_id(request, "user_id"), path_id(request, "other_id")
            )
        except UnknownUser as exc:
            raise unknown_user(exc) from None
        return reply(
            CanMessage(decision.allowed, decision.code, decision.reason, decision.institution_id)
        )

    async def contacts(self, request: web.Request) -> web.Response:
        """The people the user may start a conversation with, best name matches first."""
        query = read_query(request, ContactsQuery)
        try:
            found = await self._policy.contacts(path_id(request, "user_id"), query.q, query.limit)
        except UnknownUser as exc:
            raise unknown_user(exc) from None
        return reply(Contacts([contact_view(c, self._ids) for c in found]))


def contact_view(contact: PolicyContact, ids: MatrixIdMapper) -> Contact:
    """Someone the person may start a conversation with, as the API shows them."""
    avatar = initials_avatar(contact.display_name, contact.user_id)
    return Contact(
        user_id=contact.user_id,
        display_name=contact.display_name,
        avatar_url=contact.avatar_url,
        initials=avatar.initials,
        avatar_color=avatar.color,
        role=contact.role,
        reason=contact.reason,
        matrix_id=ids.user_id(contact.user_id),
        availability=contact.availability,
    )


def unknown_user(exc: UnknownUser) -> ApiFailure:
    return ApiFailure(
        404, "not_found", f"No user with id {exc.user_id!r}", missing={"user_id": exc.user_id}
    )
