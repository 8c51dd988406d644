"""The admin room's command parser and the cards the bot writes (pure, no server)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bridge.contract.reports import (
    ReportDetail,
    ReportedMessage,
    ReportPerson,
    ReportView,
    Resolution,
)
from bridge.domain.commands import COMMANDS, CommandError, HelpShown, help_text, parse_command
from bridge.services.cards import report_card

AT = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)


def test_commands_parse_into_what_they_name() -> None:
    assert parse_command("hello there", "!") is None
    assert parse_command("!", "!") is None
    dismiss = parse_command("!dismiss abcd1234 it was   fine", "!")
    assert dismiss is not None
    assert (dismiss.name, dismiss.report, dismiss.note) == ("dismiss", "abcd1234", "it was fine")
    suspend = parse_command('!suspend @a:hs 7 "kept sending links"', "!")
    assert suspend is not None
    assert (suspend.user, suspend.days, suspend.note) == ("@a:hs", 7, "kept sending links")
    forever = parse_command("!suspend s-1 spam", "!")
    assert forever is not None and (forever.days, forever.note) == (None, "spam")
    assert parse_command("!reports", "!") == parse_command("!REPORTS open", "!")
    can = parse_command("--can a b", "--")
    assert can is not None and (can.user, can.other) == ("a", "b")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("!resolve abcd", "the following arguments are required: note"),
        ("!reports closed", "invalid choice: 'closed'"),
        ("!suspend", "the following arguments are required: user"),
        ("!suspend u 0 x", "days: expected 1 to 3650"),
        ("!can a", "the following arguments are required: other"),
        ("!show a b", "unrecognized arguments: b"),
        ("!launch", "There is no command !launch"),
        ("!dismiss 'open", "No closing quotation"),
    ],
)
def test_malformed_commands_say_what_is_wrong(text: str, words: str) -> None:
    with pytest.raises(CommandError, match=words):
        parse_command(text, "!")


def test_every_command_explains_itself() -> None:
    listing = help_text("!")
    for name in COMMANDS:
        assert f"!{name}" in listing
        with pytest.raises(HelpShown, match=f"usage: !{name}"):
            parse_command(f"!{name} --help", "!")
    assert "Remove the reported message" in help_text("!", "delete")
    with pytest.raises(CommandError, match="no command"):
        help_text("!", "nope")


def _detail(resolution: Resolution | None = None) -> ReportDetail:
    report = ReportView(
        id="0123456789abcdef0123456789abcdef",
        state="open" if resolution is None else "resolved",
        origin="lms",
        category="contact_info",
        reason="Wants my <number>",
        reporter="s",
        reporter_matrix_id="@_lms_s:hs",
        reported_user="t",
        reported_matrix_id="@_lms_t:hs",
        message_id="m",
        conversation_id="c1",
        room_id="!r:hs",
        event_id="$e",
        created_at=AT,
        resolution=resolution,
    )
    message = ReportedMessage(
        "m", "c1", "t", "<script>x</script> " + "call " * 300, AT, "$e", False
    )
    before = ReportedMessage("m0", "c1", "s", "When is the exam?", AT, "$d", False)
    return ReportDetail(
        report=report,
        message=message,
        context=[before],
        reporter=ReportPerson("s", "Sam <b>Student</b>", "student", "@_lms_s:hs"),
        reported=ReportPerson("t", "Alex Kim", "tutor", "@_lms_t:hs"),
        earlier_reports=[],
        filed_on_homeserver=True,
    )


def test_a_card_names_everything_and_escapes_what_people_wrote() -> None:
    card = report_card(_detail(), "!")
    assert card.body.startswith("🚩 Report 01234567 · open")
    for words in ("Sam <b>Student</b>", "Alex Kim (@_lms_t:hs, tutor)", "contact_info"):
        assert words in card.body
    assert "Sam: When is the exam?" not in card.body  # names come from the report's people
    assert "Sam <b>Student</b>: When is the exam?" in card.body
    assert "!dismiss 01234567" in card.body and "!suspend t" in card.body
    assert "<script>" not in card.html and "&lt;script&gt;" in card.html
    assert "<b>Student</b>" not in card.html
    assert len(card.body) < 3000  # a long message is shortened


def test_a_resolved_card_says_how_and_offers_no_commands() -> None:
    card = report_card(_detail(Resolution("warn", "@mod:hs", "told them", AT)), "!")
    assert card.body.startswith("✔️ Report 01234567 · resolved: warn by @mod:hs")
    assert "told them" in card.body and "!dismiss" not in card.body
