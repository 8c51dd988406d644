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
