"""The three kinds of room the bridge meets, each with its own handlers: conversation rooms
(mirrored both ways), the moderators' admin room (commands), and foreign rooms (left)."""
