"""How a service says no to a request about conversations and messages."""

from __future__ import annotations


class Refused(Exception):
    """A request the bridge won't carry out; `status` and `code` are the API's answer."""

    def __init__(self, status: int, code: str, message: str, **details: object) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def no_such_conversation(conversation_id: str) -> Refused:
    """The refusal for a conversation id that doesn't exist (or isn't made yet)."""
    return Refused(
        404,
        "not_found",
        f"No conversation with id {conversation_id!r}",
        missing={"conversation_id": conversation_id},
    )


def no_such_message(message_id: str) -> Refused:
    """The refusal for a message id that doesn't exist (here)."""
    return Refused(
        404, "not_found", f"No message with id {message_id!r}", missing={"message_id": message_id}
    )
