"""The moderators' commands in the admin room, parsed with a real argument parser so every
command explains itself (`!help`, `!<command> --help`) and a malformed one says what is wrong."""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass
from typing import NoReturn

MAX_DAYS = 3650


class CommandError(Exception):
    """A command that can't be run as typed; the message says why and how to type it."""


class HelpShown(Exception):
    """The person asked for help; the message is the help text."""


class _Parser(argparse.ArgumentParser):
    """An argument parser that answers in exceptions instead of printing and exiting."""

    def error(self, message: str) -> NoReturn:
        raise CommandError(f"{message}\n{self.format_usage().strip()}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise HelpShown(message or self.format_help())

    def print_help(self, file: object = None) -> None:
        raise HelpShown(self.format_help())


@dataclass(frozen=True)
class Command:
    """A parsed command."""

    name: str
    report: str | None = None
    user: str | None = None
    other: str | None = None
    note: str | None = None
    days: int | None = None
    state: str | None = None
    topic: str | None = None


# name: (summary, [(argument, argparse keywords)])
_SPECS: dict[str, tuple[str, list[tuple[str, dict[str, object]]]]] = {
    "help": (
        "List the commands, or explain one.",
        [("topic", {"nargs": "?", "help": "a command"})],
    ),
    "reports": (
        "List reports (the open ones unless you say otherwise).",
        [("state", {"nargs": "?", "choices": ["open", "resolved"], "default": "open"})],
    ),
    "show": (
        "Show a report's card again.",
        [("report", {"help": "a report id (8 characters do)"})],
    ),
    "dismiss": (
        "Close a report: nothing wrong.",
        [("report", {"help": "a report id"}), ("note", {"nargs": "*", "help": "why"})],
    ),
    "delete": (
        "Remove the reported message (redacted in Matrix, deleted for the LMS) and close the "
        "report.",
        [("report", {"help": "a report id"}), ("note", {"nargs": "*", "help": "why"})],
    ),
    "warn": (
        "Warn the sender in their conversation room, and close the report.",
        [
            ("report", {"help": "a report id"}),
            ("note", {"nargs": "*", "help": "what to tell them"}),
        ],
    ),
    "suspend": (
        "Suspend someone's messaging, for some days or until lifted.",
        [
            ("user", {"help": "a platform id or a Matrix ID"}),
            ("note", {"nargs": "*", "metavar": "[days] note", "help": "days first, then why"}),
        ],
    ),
    "unsuspend": ("Lift a suspension.", [("user", {"help": "a platform id or a Matrix ID"})]),
    "resolve": (
        "Close a report, saying how it was handled.",
        [("report", {"help": "a report id"}), ("note", {"nargs": "+", "help": "how"})],
    ),
    "whois": (
        "Someone's memberships, courses, conversations and reports.",
        [("user", {"help": "a platform id or a Matrix ID"})],
    ),
    "can": (
        "Whether one person may message another, and why.",
        [("user", {"help": "who writes"}), ("other", {"help": "to whom"})],
    ),
}
COMMANDS = tuple(_SPECS)


def _parser(name: str, prefix: str) -> _Parser:
    summary, arguments = _SPECS[name]
    parser = _Parser(prog=f"{prefix}{name}", description=summary, add_help=True)
    for argument, keywords in arguments:
        parser.add_argument(argument, **keywords)  # type: ignore[arg-type]
    return parser


def help_text(prefix: str, topic: str | None = None) -> str:
    """The list of commands, or one command's help."""
    if topic is not None:
        name = topic.removeprefix(prefix)
        if name not in _SPECS:
            raise CommandError(f"There is no command {topic!r}. {_known(prefix)}")
        return _parser(name, prefix).format_help().strip()
    lines = ["Commands (add --help to any of them for more):"]
    for name in COMMANDS:
        usage = _parser(name, prefix).format_usage().removeprefix("usage: ").strip()
        lines.append(f"{usage} — {_SPECS[name][0]}")
    return "\n".join(lines)


def _known(prefix: str) -> str:
    return "Commands: " + ", ".join(prefix + name for name in COMMANDS)


def parse_command(text: str, prefix: str) -> Command | None:
    """The command in a message (None when the message is not a command). Raises
    CommandError or HelpShown."""
    if not text.startswith(prefix) or len(text) <= len(prefix):
        return None
    try:
        words = shlex.split(text[len(prefix) :])
    except ValueError as exc:
        raise CommandError(f"Can't read that command: {exc}") from None
    if not words:
        return None
    name, rest = words[0].lower(), words[1:]
    if name not in _SPECS:
        raise CommandError(f"There is no command {prefix}{name}. {_known(prefix)}")
    parsed = vars(_parser(name, prefix).parse_args(rest))
    note_words = parsed.pop("note", None)
    days = None
    if name == "suspend" and note_words and note_words[0].isdigit():
        days = int(note_words[0])
        note_words = note_words[1:]
        if not 1 <= days <= MAX_DAYS:
            raise CommandError(f"days: expected 1 to {MAX_DAYS}, got {days}")
    note = " ".join(note_words).strip() if note_words else None
    return Command(name=name, note=note or None, days=days, **parsed)
