"""Table definitions (SQLAlchemy Core). Migrations under `migrations/` create them; repositories
are the only code that queries them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    }
)

# SQLite only auto-increments an INTEGER PRIMARY KEY.
Sequence = BigInteger().with_variant(Integer(), "sqlite")

# Transaction ids recently received from the homeserver, with a fingerprint of their events so
# that a reused id after a homeserver restart is not mistaken for a resend.
appservice_transactions = Table(
    "appservice_transactions",
    metadata,
    Column("txn_id", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, index=True),
)

# Every event received from the homeserver, written before the transaction is acknowledged and
# processed afterwards, in `seq` order within each room.
inbound_events = Table(
    "inbound_events",
    metadata,
    Column("seq", Sequence, primary_key=True, autoincrement=True),
    Column("event_id", String(255), nullable=True, unique=True),
    Column("room_id", String(255), nullable=True),
    Column("kind", String(16), nullable=False),
    Column("event_type", String(255), nullable=False),
    Column("payload", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("processed_at", DateTime(timezone=True), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
    Column("failed", Boolean, nullable=False, default=False),
    Column("last_error", Text, nullable=True),
    Index("ix_inbound_events_pending", "processed_at", "failed", "seq"),
)

# Bridged Matrix accounts and the profile last written to each.
matrix_accounts = Table(
    "matrix_accounts",
    metadata,
    Column("user_id", String(255), primary_key=True),
    Column("platform_id", String(1024), nullable=False, unique=True),
    Column("registered_at", DateTime(timezone=True), nullable=False),
    Column("display_name", Text, nullable=True),
    Column("avatar_source", Text, nullable=True),
    Column("avatar_mxc", Text, nullable=True),
    Column("profile_synced_at", DateTime(timezone=True), nullable=True),
)

# --- the roster (the LMS is the source of truth; these are its latest upserts) ---

# Exact, byte-wise ordering for the search words, so prefix range scans work the same on both
# databases (SQLite compares bytes already).
SearchText = String(255).with_variant(String(255, collation="C"), "postgresql")

institutions = Table(
    "institutions",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("name", Text, nullable=False),
    Column("region", String(8), nullable=True),
    Column("timezone", String(64), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # off, flag, warn or block (null: the configured default).
    Column("contact_info_rule", String(8), nullable=True),
)

users = Table(
    "users",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("display_name", Text, nullable=False),
    Column("name_key", Text, nullable=False),  # the name's search words (bridge.domain.names)
    Column("avatar_url", Text, nullable=True),
    Column("active", Boolean, nullable=False),
    Column("availability", Text, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

memberships = Table(
    "memberships",
    metadata,
    Column(
        "institution_id",
        String(255),
        ForeignKey("institutions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("user_id", String(255), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(16), nullable=False),
    Index("ix_memberships_user_id", "user_id"),
)

courses = Table(
    "courses",
    metadata,
    Column("id", String(255), primary_key=True),
    Column(
        "institution_id",
        String(255),
        ForeignKey("institutions.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("title", Text, nullable=False),
)

batches = Table(
    "batches",
    metadata,
    Column("id", String(255), primary_key=True),
    Column(
        "course_id",
        String(255),
        ForeignKey("courses.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("title", Text, nullable=False),
)


def _assignment(name: str) -> Table:
    """Enrollments (a student in a batch) and teaching (a tutor of a batch) share one shape."""
    return Table(
        name,
        metadata,
        Column(
            "batch_id",
            String(255),
            ForeignKey("batches.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        Column(
            "user_id", String(255), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
        ),
        Column("begins_at", DateTime(timezone=True), nullable=True),
        Column("ends_at", DateTime(timezone=True), nullable=True),
        Index(f"ix_{name}_user_id", "user_id"),
    )


enrollments = _assignment("enrollments")
teaching = _assignment("teaching")

# People search: one row per word of each member's name, per institution and role. The primary
# key is the search index: (institution, role, first word?, word, name) answers "members of I
# with role R whose name starts with q, alphabetically" by one range scan that stops at the limit.
contact_words = Table(
    "contact_words",
    metadata,
    Column("institution_id", String(255), primary_key=True),
    Column("role", String(16), primary_key=True),
    Column("is_first", Boolean, primary_key=True),
    Column("word", SearchText, primary_key=True),
    Column("name_key", Text().with_variant(Text(collation="C"), "postgresql"), primary_key=True),
    Column("user_id", String(255), primary_key=True),
    Index("ix_contact_words_user_id", "user_id"),
)

# Accounts whose Matrix profile must be brought in line with the roster (name or photo changed).
profile_sync_queue = Table(
    "profile_sync_queue",
    metadata,
    Column("user_id", String(255), primary_key=True),
    Column("queued_at", DateTime(timezone=True), nullable=False),
)

# The roster's version (one row): every roster write bumps it in its own transaction, so a
# running bridge notices roster changes that other processes (an import) made.
roster_version = Table(
    "roster_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", BigInteger, nullable=False),
)

# --- conversations ---

# The one conversation of a pair of people (user_a < user_b), with its Matrix room once made.
conversations = Table(
    "conversations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("user_a", String(255), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("user_b", String(255), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("started_by", String(255), nullable=False),
    Column("room_id", String(255), nullable=True, unique=True),
    Column("state", String(16), nullable=False),  # creating, active, read_only
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_message_at", DateTime(timezone=True), nullable=True),
    # A room that turned encrypted can't be read by the bridge: it is no longer mirrored.
    Column("encrypted", Boolean, nullable=False, default=False, server_default=false()),
    UniqueConstraint("user_a", "user_b", name="uq_conversations_pair"),
    Index("ix_conversations_user_b", "user_b"),
)

# Messages of conversations, from either side; LMS sends are stored before they are sent.
messages = Table(
    "messages",
    metadata,
    Column("seq", Sequence, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column(
        "conversation_id",
        String(64),
        ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("sender", String(255), nullable=False),
    Column("client_message_id", String(255), nullable=True),
    Column("body", Text, nullable=False),
    Column("format", String(16), nullable=False),
    Column("html", Text, nullable=True),
    Column("event_id", String(255), nullable=True, unique=True),
    Column("status", String(16), nullable=False),  # queued, sent, withdrawn, failed
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Column("revision", Integer, nullable=False, default=0, server_default="0"),
    Column("edited_at", DateTime(timezone=True), nullable=True),
    Column("deleted_at", DateTime(timezone=True), nullable=True),
    # A change made through the API that Matrix hasn't seen yet: edit or redact.
    Column("pending", String(16), nullable=True, index=True),
    # The text before the first edit (to go back to when every edit is redacted).
    Column("original_body", Text, nullable=True),
    Column("original_html", Text, nullable=True),
    Column("original_format", String(16), nullable=True),
    # A file the message carries (its content URI is for the bridge only).
    Column("attachment_kind", String(16), nullable=True),
    Column("attachment_mxc", String(512), nullable=True),
    Column("attachment_name", String(255), nullable=True),
    Column("attachment_size", BigInteger, nullable=True),
    Column("attachment_mimetype", String(255), nullable=True),
    UniqueConstraint("sender", "client_message_id", name="uq_messages_sender_client_message_id"),
    Index("ix_messages_conversation_id_seq", "conversation_id", "seq"),
    Index("ix_messages_status_seq", "status", "seq"),
)

# Matrix events that edited a message (from either side), so each edit is applied once.
message_edits = Table(
    "message_edits",
    metadata,
    Column("event_id", String(255), primary_key=True),
    Column(
        "message_id",
        String(64),
        ForeignKey("messages.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # The text this edit gave the message (to go back to when a later edit is redacted).
    Column("body", Text, nullable=True),
    Column("html", Text, nullable=True),
    Column("format", String(16), nullable=True),
    Column("redacted_at", DateTime(timezone=True), nullable=True),
)

# Reactions to messages, made in Matrix clients (an emoji or other key per event).
reactions = Table(
    "reactions",
    metadata,
    Column("event_id", String(255), primary_key=True),
    Column(
        "message_id",
        String(64),
        ForeignKey("messages.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("sender", String(255), nullable=False),
    Column("key", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("removed_at", DateTime(timezone=True), nullable=True),
)

# Conversation rooms made, whose finishing touches (each person's m.direct, the encryption
# check) come after the LMS got its answer; a row stays until they are done.
room_setups = Table(
    "room_setups",
    metadata,
    Column(
        "conversation_id",
        String(64),
        ForeignKey("conversations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("room_id", String(255), nullable=False),
    Column("queued_at", DateTime(timezone=True), nullable=False),
)

# How far each person has read each conversation (a message seq).
read_markers = Table(
    "read_markers",
    metadata,
    Column(
        "conversation_id",
        String(64),
        ForeignKey("conversations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("user_id", String(255), primary_key=True),
    Column("up_to_seq", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# The ordered, durable log of everything the LMS is told (GET /api/v1/events, webhooks).
events = Table(
    "events",
    metadata,
    Column("seq", Sequence, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("type", String(64), nullable=False),
    Column("data", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# How far the webhook has acknowledged the event log (one row).
webhook_cursor = Table(
    "webhook_cursor",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("delivered_seq", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Reports of messages, from the LMS, from Matrix clients (through the homeserver's admin API) or
# from the content rule. One open report per reporter and message.
reports = Table(
    "reports",
    metadata,
    Column("seq", Sequence, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("origin", String(16), nullable=False),  # lms, matrix, rule
    Column("state", String(16), nullable=False),  # open, resolved
    Column("category", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("reporter", String(255), nullable=True),
    Column("message_id", String(64), ForeignKey("messages.id", ondelete="CASCADE"), nullable=True),
    Column("conversation_id", String(64), nullable=True),
    Column("reported_user", String(255), nullable=True, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # When the report was also filed on the homeserver (null: still to do, or not ours to file).
    Column("filed_at", DateTime(timezone=True), nullable=True),
    Column("resolved_at", DateTime(timezone=True), nullable=True),
    Column("resolved_by", String(255), nullable=True),
    Column("action", String(16), nullable=True),
    Column("note", Text, nullable=True),
    # Where the report is in Matrix: the room and event, who made it about whom, and its id in
    # the homeserver's own list of event or user reports (null until known), dismissed there
    # once resolved.
    Column("room_id", String(255), nullable=True),
    Column("event_id", String(255), nullable=True),
    Column("reporter_matrix_id", String(255), nullable=True),
    Column("reported_matrix_id", String(255), nullable=True),
    Column("homeserver_report_id", BigInteger, nullable=True, unique=True),
    Column("homeserver_user_report_id", BigInteger, nullable=True, unique=True),
    Column("dismissed_at", DateTime(timezone=True), nullable=True),
    Index("ix_reports_message_id", "message_id"),
    Index(
        "uq_reports_open_reporter_message",
        "reporter",
        "message_id",
        unique=True,
        sqlite_where=Column("state") == "open",
        postgresql_where=Column("state") == "open",
    ),
)

# How far the homeserver's report lists have been read (the highest report ids taken).
report_poll = Table(
    "report_poll",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("last_event_report_id", BigInteger, nullable=False),
    Column("last_user_report_id", BigInteger, nullable=False),
)

# The moderators' admin room the bot keeps (one row).
admin_room = Table(
    "admin_room",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("room_id", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# The card of each report in the admin room, and the report state it shows (edited when the
# report's state moves on).
report_cards = Table(
    "report_cards",
    metadata,
    Column(
        "report_id",
        String(64),
        ForeignKey("reports.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("room_id", String(255), nullable=False),
    Column("event_id", String(255), nullable=False, unique=True),
    Column("shown_state", String(16), nullable=False),
    Column("posted_at", DateTime(timezone=True), nullable=False),
)

# A reaction shortcut on a card waits for the moderator's confirming reaction on the bot's
# question.
card_prompts = Table(
    "card_prompts",
    metadata,
    Column("event_id", String(255), primary_key=True),  # the bot's question
    Column("report_id", String(64), ForeignKey("reports.id", ondelete="CASCADE"), nullable=False),
    Column("action", String(16), nullable=False),
    Column("moderator", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("answered_at", DateTime(timezone=True), nullable=True),
)

# People whose messaging a moderator suspended: in force while not lifted and before `until`
# (null: until lifted). `homeserver_suspended` is what the homeserver was last told.
suspensions = Table(
    "suspensions",
    metadata,
    Column("user_id", String(255), primary_key=True),
    Column("until", DateTime(timezone=True), nullable=True),
    Column("note", Text, nullable=True),
    Column("moderator", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("lifted_at", DateTime(timezone=True), nullable=True),
    Column("homeserver_suspended", Boolean, nullable=False),
)

# Events typed in Matrix clients that the contact-info rule removed (so each is reported once).
blocked_events = Table(
    "blocked_events",
    metadata,
    Column("event_id", String(255), primary_key=True),
    Column("conversation_id", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Sessions of the embedded inbox: a single-use code (in the link the LMS is given) traded once
# for a session token. Only their SHA-256 hashes are kept.
embed_sessions = Table(
    "embed_sessions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", String(255), nullable=False, index=True),
    Column("conversation_id", String(64), nullable=True),
    Column("code_hash", String(64), nullable=False, unique=True),
    Column("token_hash", String(64), nullable=True, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("code_expires_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("exchanged_at", DateTime(timezone=True), nullable=True),
    Column("ended_at", DateTime(timezone=True), nullable=True),
)

# The automatic notices to students who wrote to a tutor outside the tutor's hours: at most one
# per conversation per day of the tutor's calendar. `event_id` is set once the bot has posted it.
availability_notices = Table(
    "availability_notices",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("conversation_id", String(64), nullable=False),
    Column("day", String(10), nullable=False),
    Column("student", String(255), nullable=False),
    Column("tutor", String(255), nullable=False),
    Column("message_id", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("event_id", String(255), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("conversation_id", "day"),
)

# How far each reader of the event log inside the bridge has got (by name).
event_cursors = Table(
    "event_cursors",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
