"""What the bot writes in the admin room: report cards, lists of reports, people, answers.

Pure text: every string from people (names, reasons, messages) is escaped for the HTML half and
shortened, so a card can't carry markup or grow past what an event may hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape

from bridge.contract.reports import ReportDetail, ReportedMessage, ReportPerson, ReportView

SHORT_ID = 8
QUOTE_CHARS = 500
REASON_CHARS = 300
SHORTCUTS = {"✅": "dismiss", "🗑️": "delete", "⚠️": "warn"}
_ORIGINS = {"lms": "the LMS", "matrix": "a Matrix client", "rule": "the contact-info rule"}


@dataclass(frozen=True)
class Text:
    """A message as plain text and as HTML."""

    body: str
    html: str

    def content(self, msgtype: str = "m.notice") -> dict[str, object]:
        """The `m.room.message` content."""
        return {
            "msgtype": msgtype,
            "body": self.body,
            "format": "org.matrix.custom.html",
            "formatted_body": self.html,
        }


def short_id(report_id: str) -> str:
    """The part of a report id people type."""
    return report_id[:SHORT_ID]


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _person(person: ReportPerson | None, fallback: str | None) -> tuple[str, str]:
    """(plain, html) naming someone with their role and Matrix ID."""
    if person is None:
        name = fallback or "someone unknown"
        return name, escape(name)
    role = f", {person.role}" if person.role else ""
    plain = f"{_cut(person.display_name, 80)} ({person.matrix_id}{role})"
    html = (
        f"<b>{escape(_cut(person.display_name, 80))}</b> "
        f"(<code>{escape(person.matrix_id)}</code>{escape(role)})"
    )
    return plain, html


def _quoted(message: ReportedMessage, names: dict[str, str]) -> tuple[str, str]:
    who = names.get(message.sender, message.sender)
    text = "(deleted)" if message.body is None else _cut(message.body, QUOTE_CHARS)
    return f"{who}: {text}", f"<b>{escape(who)}</b>: {escape(text)}"


def _state_line(report: ReportView) -> tuple[str, str]:
    if report.resolution is None:
        return "open", "<b>open</b>"
    done = report.resolution
    note = f" — {_cut(done.note, REASON_CHARS)}" if done.note else ""
    plain = f"resolved: {done.action} by {done.moderator}, {_when(done.resolved_at)}{note}"
    return plain, f"<b>resolved</b>: {escape(plain.removeprefix('resolved: '))}"


def report_card(detail: ReportDetail, prefix: str) -> Text:
    """The card of a report: who reported whom, when and why, the message and its context,
    the conversation, earlier reports, and the commands that act on it."""
    report = detail.report
    sid = short_id(report.id)
    reporter = (
        ("The contact-info rule", "The contact-info rule")
        if report.origin == "rule"
        else _person(detail.reporter, report.reporter_matrix_id)
    )
    reported = _person(detail.reported, report.reported_matrix_id)
    state = _state_line(report)
    icon = "🚩" if report.resolution is None else "✔️"
    lines = [
        (f"{icon} Report {sid} · {state[0]}", f"{icon} <b>Report {sid}</b> · {state[1]}"),
        (
            f"{reporter[0]} reported {reported[0]} on {_when(report.created_at)} "
            f"(from {_ORIGINS[report.origin]})",
            f"{reporter[1]} reported {reported[1]} on {_when(report.created_at)} "
            f"(from {escape(_ORIGINS[report.origin])})",
        ),
        (
            f"Category: {report.category} · Reason: {_cut(report.reason, REASON_CHARS)}",
            f"Category: <b>{escape(report.category)}</b> · Reason: "
            f"{escape(_cut(report.reason, REASON_CHARS))}",
        ),
    ]
    names = {}
    for person in (detail.reporter, detail.reported):
        if person is not None:
            names[person.user_id] = _cut(person.display_name, 80)
    if detail.message is not None:
        quoted = _quoted(detail.message, names)
        context = [_quoted(m, names) for m in detail.context]
        lines.append(("Reported message:", "Reported message:"))
        lines.append((f"> {quoted[0]}", f"<blockquote>{quoted[1]}</blockquote>"))
        if context:
            lines.append(("Before it:", "Before it:"))
            lines.append(
                ("\n".join(f"  {c[0]}" for c in context), "<br>".join(c[1] for c in context))
            )
    elif report.event_id is not None:
        lines.append(
            (
                f"Event {report.event_id} in room {report.room_id} (not a conversation the "
                "bridge carries)",
                f"Event <code>{escape(report.event_id)}</code> in room "
                f"<code>{escape(report.room_id or '?')}</code> (not a conversation the bridge "
                "carries)",
            )
        )
    if report.conversation_id is not None:
        lines.append(
            (
                f"Conversation: {report.conversation_id}",
                f"Conversation: <code>{escape(report.conversation_id)}</code>",
            )
        )
    earlier = detail.earlier_reports
    if earlier:
        still_open = sum(1 for r in earlier if r.state == "open")
        lines.append(
            (
                f"Earlier reports against them: {len(earlier)} ({still_open} open)",
                f"Earlier reports against them: <b>{len(earlier)}</b> ({still_open} open)",
            )
        )
    if report.resolution is None:
        target = report.reported_user or report.reported_matrix_id or "<user>"
        commands = (
            f"{prefix}show {sid} · {prefix}dismiss {sid} [note] · {prefix}delete {sid} [note] · "
            f"{prefix}warn {sid} [note] · {prefix}suspend {target} [days] [note] · "
            f"{prefix}resolve {sid} <note>"
        )
        shortcuts = " · ".join(f"{key} {action}" for key, action in SHORTCUTS.items())
        lines.append((f"Commands: {commands}", f"Commands: <code>{escape(commands)}</code>"))
        lines.append((f"Or react: {shortcuts}", f"Or react: {escape(shortcuts)}"))
    return Text("\n".join(p for p, _ in lines), "<br>".join(h for _, h in lines))


def report_line(report: ReportView) -> str:
    """One report in a list."""
    who = report.reported_user or report.reported_matrix_id or "?"
    state = "open" if report.resolution is None else f"resolved ({report.resolution.action})"
    return (
        f"{short_id(report.id)} · {state} · {report.category} · against {who} · "
        f"{_when(report.created_at)} · {_cut(report.reason, 80)}"
    )


def plain(text: str) -> Text:
    """A plain answer, its HTML escaped line by line."""
    return Text(text, "<br>".join(escape(line) for line in text.split("\n")))
