"""The embedded inbox in a real headless Chromium, against a real Synapse: the seed's Messages
page walked end to end, live updates from a Matrix client, hostile content, expired links, a
phone-width screen and an accessibility check."""

from __future__ import annotations

from typing import Any

import pytest
from nio import AsyncClient

from bridge.app import Bridge
from tests.browser.conftest import screenshot_path
from tests.conftest import Recorder, SynapseEnv
from tests.integration.test_admin_room import SQLITE_ONLY
from tests.integration.test_conversations import matrix_client, seed
from tests.integration.test_roster_api import call
from tests.support.waiting import eventually

pytestmark = [pytest.mark.synapse, SQLITE_ONLY]
WAIT_MS = 10_000


async def link_for(instance: Bridge, user: str, **extra: Any) -> str:
    status, link = await call(instance, "POST", "/api/v1/embed/sessions", {"user": user, **extra})
    assert status == 201, link
    return str(link["url"])


async def open_page(browser: Any, url: str, **context: Any) -> Any:
    """A new page on `url`, failing the test on any script error or dialog."""
    page = await (await browser.new_context(**context)).new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on("dialog", lambda dialog: page.errors.append(f"dialog: {dialog.message}"))
    await page.goto(url)
    return page


async def matrix_send(client: AsyncClient, room_id: str, body: str, html: str | None = None) -> str:
    content: dict[str, Any] = {"msgtype": "m.text", "body": body}
    if html is not None:
        content.update(format="org.matrix.custom.html", formatted_body=html)
    response = await client.room_send(room_id, "m.room.message", content)
    return str(response.event_id)  # type: ignore[union-attr]


async def test_a_student_walks_the_inbox_from_the_link_to_read_only(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv, browser: Any
) -> None:
    instance, _ = bridge
    ids = await seed(instance)
    status, _ = await call(
        instance,
        "PUT",
        f"/api/v1/users/{ids['tutor']}",
        {
            "display_name": "Alex Kim",
            "availability": {
                "timezone": "Europe/London",
                "weekly_hours": [
                    {"day": d, "start": "10:00", "end": "16:00"}
                    for d in ("mon", "tue", "wed", "thu")
                ],
                "note": "Replies within a day",
            },
        },
    )
    assert status == 200
    page = await open_page(browser, await link_for(instance, ids["student"]))
    await page.wait_for_selector("text=No conversations yet", timeout=WAIT_MS)
    assert "#code=" not in page.url  # the code is gone from the address at once
    # New Message: search by name, the tutor with the reason and their hours.
    await page.get_by_role("button", name="New Message").click()
    await page.get_by_label("Search by name").fill("ale")
    contact = page.locator(".contact", has_text="Alex Kim")
    await contact.wait_for(timeout=WAIT_MS)
    assert "Algebra" in await contact.inner_text()
    assert "Usually available Mon–Thu 10:00–16:00, London time" in await contact.inner_text()
    await page.screenshot(path=screenshot_path("new-message-search"))
    await contact.click()
    header = page.locator(".conversation-header")
    await header.get_by_role("heading", name="Alex Kim").wait_for(timeout=WAIT_MS)
    assert "Replies within a day" in await header.inner_text()
    # Enter sends; Shift+Enter is a new line.
    box = page.get_by_label("Write a message")
    await box.type("Is **Friday** ok?")
    await box.press("Shift+Enter")
    await box.type("Or Monday")
    await box.press("Enter")
    mine = page.locator(".message.mine").last
    await mine.locator(".status", has_text="Sent").wait_for(timeout=WAIT_MS)
    assert await mine.locator("strong").inner_text() == "Friday"
    assert await box.input_value() == ""
    # The tutor answers in their Matrix client; it arrives without a reload.
    status, inbox = await call(instance, "GET", f"/api/v1/users/{ids['student']}/conversations")
    room_id = inbox["conversations"][0]["room_id"]
    tutor = await matrix_client(synapse_env, instance, ids["tutor"])
    try:
        await matrix_send(tutor, room_id, "Friday at 10 works")
        theirs = page.locator(".message.theirs", has_text="Friday at 10 works")
        await theirs.wait_for(timeout=WAIT_MS)
        list_item = page.locator(".conversation-item", has_text="Alex Kim")
        assert "Friday at 10 works" in await list_item.inner_text()
        await page.screenshot(path=screenshot_path("conversation"))
        # Read on view (the page marks it read, which also sends the Matrix receipt).

        async def all_read() -> bool:
            _, listed = await call(instance, "GET", f"/api/v1/users/{ids['student']}/unread")
            return listed["unread"] == 0

        await eventually(all_read, "the student's page marked the reply read")
        # Edit and delete one's own message.
        await mine.get_by_role("button", name="Edit").click()
        edit_box = mine.get_by_label("Edit your message")
        await edit_box.fill("Is Thursday ok?")
        await edit_box.press("Enter")
        await mine.locator(".edited").wait_for(timeout=WAIT_MS)
        assert "Is Thursday ok?" in await mine.inner_text()
        await mine.get_by_role("button", name="Delete").click()
        await mine.get_by_role("button", name="Delete").click()  # the confirmation
        await mine.locator(".deleted").wait_for(timeout=WAIT_MS)
        # Report the tutor's message.
        await theirs.get_by_role("button", name="Report").click()
        dialog = page.locator("dialog[open]")
        await dialog.get_by_label("What is wrong?").select_option("spam")
        await dialog.get_by_label("Tell the moderators more").fill("Not about the course")
        await page.screenshot(path=screenshot_path("report-dialog"))
        await dialog.get_by_role("button", name="Send report").click()
        await theirs.locator(".reported").wait_for(timeout=WAIT_MS)
        status, reports = await call(instance, "GET", "/api/v1/reports?state=open")
        assert any(
            r["reporter"] == ids["student"] and r["category"] == "spam" for r in reports["reports"]
        )
        # The enrollment is removed: read-only, with the reason, live.
        tag = ids["student"].split("-")[1]
        status, _ = await call(
            instance, "DELETE", f"/api/v1/batches/b-{tag}/students/{ids['student']}"
        )
        assert status == 204
        note = page.locator(".read-only")
        await note.wait_for(timeout=WAIT_MS * 2)
        assert "can't send" in await note.inner_text()
        assert await page.get_by_label("Write a message").count() == 0
        await list_item.locator(".tag", has_text="Read-only").wait_for(timeout=WAIT_MS)
        await page.screenshot(path=screenshot_path("read-only"))
    finally:
        await tutor.close()
    assert page.errors == []
