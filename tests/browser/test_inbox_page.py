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
    # No tutor by that name: the seed's advice.
    await page.get_by_label("Search by name").fill("zzz")
    await page.locator(".hint", has_text="Ask in your course's discussion board").wait_for(
        timeout=WAIT_MS
    )
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
        # The tutor's client marks the student's message read: "Seen", live.
        status, history = await call(
            instance,
            "GET",
            f"/api/v1/conversations/{inbox['conversations'][0]['id']}/messages?as={ids['tutor']}",
        )
        student_event = history["messages"][0]["event_id"]
        await tutor.room_read_markers(room_id, student_event, student_event)
        await mine.locator(".status", has_text="Seen").wait_for(timeout=WAIT_MS)
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


async def started(instance: Bridge, ids: dict[str, str]) -> dict[str, Any]:
    status, conversation = await call(
        instance,
        "POST",
        "/api/v1/conversations",
        {"initiator": ids["student"], "recipient": ids["tutor"]},
    )
    assert status == 201, conversation
    return conversation


HOSTILE = [
    '<img src=x onerror="alert(1)">',
    "<script>alert(2)</script>",
    '<a href="javascript:alert(3)">click</a>',
    '<svg onload="alert(4)"></svg>',
    '<iframe src="javascript:alert(5)"></iframe>',
]


async def test_hostile_names_and_messages_render_as_text(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv, browser: Any
) -> None:
    instance, _ = bridge
    ids = await seed(instance)
    hostile_name = '<img src=x onerror="alert(9)">Alex'
    status, _ = await call(
        instance, "PUT", f"/api/v1/users/{ids['tutor']}", {"display_name": hostile_name}
    )
    assert status == 200
    conversation = await started(instance, ids)
    tutor = await matrix_client(synapse_env, instance, ids["tutor"])
    try:
        for n, payload in enumerate(HOSTILE):
            await matrix_send(tutor, conversation["room_id"], f"plain {n} {payload}", payload)
        await matrix_send(tutor, conversation["room_id"], "marker", "<b>marker</b>")
        page = await open_page(
            browser,
            await link_for(instance, ids["student"], conversation=conversation["id"]),
        )
        await page.locator(".message b", has_text="marker").wait_for(timeout=WAIT_MS)
        history = page.locator(".messages")
        assert await history.locator("script, img, svg, iframe").count() == 0
        assert await page.locator("a[href^='javascript' i]").count() == 0
        assert await page.locator("[onerror], [onload]").count() == 0
        assert await page.locator(".conversation-header h2").inner_text() == hostile_name
        assert hostile_name in await page.locator(".conversation-item .name").inner_text()
    finally:
        await tutor.close()
    assert page.errors == []  # no alert() dialog, no script error


async def test_a_link_works_once_and_an_expired_one_says_so(
    bridge: tuple[Bridge, Recorder], browser: Any
) -> None:
    instance, _ = bridge
    ids = await seed(instance)
    url = await link_for(instance, ids["student"])
    first = await open_page(browser, url)
    await first.get_by_role("button", name="New Message").wait_for(timeout=WAIT_MS)
    # A conversation started elsewhere (the tutor, through the LMS) appears on the open page.
    status, _ = await call(
        instance,
        "POST",
        "/api/v1/conversations",
        {"initiator": ids["tutor"], "recipient": ids["student"]},
    )
    assert status == 201
    await first.locator(".conversation-item", has_text="Alex Kim").wait_for(timeout=WAIT_MS)
    again = await open_page(browser, url)
    await again.get_by_role("heading", name="This link has expired").wait_for(timeout=WAIT_MS)
    assert "Reopen Messages" in await again.inner_text("body")
    await again.screenshot(path=screenshot_path("link-expired"))
    # The LMS ends the session: the open page says so.
    status, _ = await call(instance, "DELETE", f"/api/v1/users/{ids['student']}/embed/sessions")
    assert status == 200
    await first.get_by_role("heading", name="Your session has ended").wait_for(timeout=WAIT_MS)


async def test_at_phone_width_the_list_and_the_conversation_are_two_screens(
    bridge: tuple[Bridge, Recorder], browser: Any
) -> None:
    instance, _ = bridge
    ids = await seed(instance)
    conversation = await started(instance, ids)
    status, _ = await call(
        instance,
        "POST",
        f"/api/v1/conversations/{conversation['id']}/messages",
        {"sender": ids["tutor"], "body": "Welcome to Algebra", "client_message_id": "w1"},
    )
    assert status == 201
    page = await open_page(
        browser,
        await link_for(instance, ids["student"]),
        viewport={"width": 375, "height": 740},
        is_mobile=True,
        has_touch=True,
    )
    item = page.locator(".conversation-item", has_text="Alex Kim")
    await item.wait_for(timeout=WAIT_MS)
    assert await item.locator(".badge").inner_text() == "1"
    assert "Welcome to Algebra" in await item.inner_text()
    assert not await page.locator(".conversation-pane").is_visible()
    await page.screenshot(path=screenshot_path("phone-list"))
    await item.click()
    await page.locator(".message.theirs", has_text="Welcome").wait_for(timeout=WAIT_MS)
    assert not await page.locator(".list-pane").is_visible()
    await page.screenshot(path=screenshot_path("phone-conversation"))
    await page.get_by_role("button", name="Back to conversations").click()
    await page.locator(".list-pane").wait_for(state="visible", timeout=WAIT_MS)
    assert not await page.locator(".conversation-pane").is_visible()
    assert page.errors == []


async def serious_violations(page: Any) -> list[str]:
    """axe-core's serious and critical findings on the page as it stands."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page)
    return [
        f"{v['id']}: {v['help']} ({len(v['nodes'])}×)"
        for v in results.response["violations"]
        if v.get("impact") in ("serious", "critical")
    ]


async def test_keyboard_only_and_accessible_end_to_end(
    bridge: tuple[Bridge, Recorder], browser: Any
) -> None:
    instance, _ = bridge
    ids = await seed(instance)
    page = await open_page(browser, await link_for(instance, ids["student"]))
    new_message = page.get_by_role("button", name="New Message")
    await new_message.wait_for(timeout=WAIT_MS)
    assert await serious_violations(page) == []
    # Tab reaches New Message first; Enter opens the search with the focus in it.
    await page.keyboard.press("Tab")
    assert await new_message.evaluate("b => b === document.activeElement")
    await page.keyboard.press("Enter")
    search = page.get_by_label("Search by name")
    assert await search.evaluate("i => i === document.activeElement")
    await page.keyboard.type("alex")
    await page.locator(".contact", has_text="Alex Kim").wait_for(timeout=WAIT_MS)
    assert await serious_violations(page) == []
    await page.keyboard.press("ArrowDown")
    await page.keyboard.press("Enter")
    # The conversation opens with the focus in the composer; Enter sends.
    composer = page.get_by_label("Write a message")
    await composer.wait_for(timeout=WAIT_MS)
    assert await composer.evaluate("t => t === document.activeElement")
    await page.keyboard.type("Hello from the keyboard")
    await page.keyboard.press("Enter")
    mine = page.locator(".message.mine", has_text="Hello from the keyboard")
    await mine.locator(".status", has_text="Sent").wait_for(timeout=WAIT_MS)
    assert await serious_violations(page) == []
    # Escape closes a dialog and gives the focus back.
    await page.keyboard.press("Shift+Tab")
    await page.keyboard.press("Shift+Tab")
    await new_message.focus()
    await page.keyboard.press("Enter")
    await page.keyboard.press("Escape")
    assert await new_message.evaluate("b => b === document.activeElement")
    assert page.errors == []


async def test_a_student_writing_out_of_hours_gets_one_notice_a_day(
    bridge: tuple[Bridge, Recorder], synapse_env: SynapseEnv, browser: Any
) -> None:
    instance, _ = bridge
    ids = await seed(instance)
    # Hours on no day but one that isn't today, in the tutor's zone: now is out of hours.
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Tokyo")).weekday()
    day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[(today + 3) % 7]
    status, _ = await call(
        instance,
        "PUT",
        f"/api/v1/users/{ids['tutor']}",
        {
            "display_name": "Alex Kim",
            "availability": {
                "timezone": "Asia/Tokyo",
                "weekly_hours": [{"day": day, "start": "09:00", "end": "11:00"}],
            },
        },
    )
    assert status == 200
    conversation = await started(instance, ids)
    page = await open_page(
        browser, await link_for(instance, ids["student"], conversation=conversation["id"])
    )
    box = page.get_by_label("Write a message")
    await box.wait_for(timeout=WAIT_MS)
    await box.type("Question about homework")
    await box.press("Enter")
    notice = page.locator(".notice")
    await notice.wait_for(timeout=WAIT_MS)
    assert "Alex Kim is usually available" in await notice.inner_text()
    assert "Tokyo time" in await notice.inner_text()
    await box.type("And another one")
    await box.press("Enter")
    await (
        page.locator(".message.mine", has_text="another one")
        .locator(".status", has_text="Sent")
        .wait_for(timeout=WAIT_MS)
    )
    # The LMS sees it once; the tutor's Matrix client has the bot's notice once.
    tutor = await matrix_client(synapse_env, instance, ids["tutor"])
    try:

        async def bot_notices() -> list[str]:
            url = (
                f"{synapse_env.synapse.url}/_matrix/client/v3/rooms/"
                f"{conversation['room_id']}/messages?dir=b&limit=50"
            )
            import aiohttp

            async with (
                aiohttp.ClientSession() as http,
                http.get(url, headers={"Authorization": f"Bearer {tutor.access_token}"}) as r,
            ):
                chunk = (await r.json())["chunk"]
            return [
                e["content"]["body"]
                for e in chunk
                if e["sender"] == instance.config.bot_user_id
                and e["content"].get("msgtype") == "m.notice"
                and "usually available" in e["content"].get("body", "")
            ]

        assert len(await eventually(bot_notices, "the bot's notice in the room")) == 1
    finally:
        await tutor.close()
    status, feed = await call(instance, "GET", "/api/v1/events?limit=500")
    (second,) = [
        e["seq"]
        for e in feed["events"]
        if e["type"] == "message.created" and e["data"]["body"] == "And another one"
    ]

    async def second_considered() -> bool:
        return instance.availability_notices.position >= second

    await eventually(second_considered, "the second message considered for a notice")
    status, feed = await call(instance, "GET", "/api/v1/events?limit=500")
    notices = [
        e
        for e in feed["events"]
        if e["type"] == "availability.notice" and e["data"]["conversation_id"] == conversation["id"]
    ]
    assert len(notices) == 1 and notices[0]["data"]["student"] == ids["student"]
    assert await page.locator(".notice").count() == 1
    assert page.errors == []


async def test_the_pages_own_renderer_keeps_only_safe_markup(
    bridge: tuple[Bridge, Recorder], browser: Any
) -> None:
    """The bridge already sanitises Matrix HTML; the page does not rely on it."""
    instance, _ = bridge
    page = await open_page(
        browser, f"http://127.0.0.1:{instance.config.appservice.listen_port}/embed/"
    )
    await page.get_by_role("heading", name="This link has expired").wait_for(timeout=WAIT_MS)
    rendered = await page.evaluate(
        """async (payloads) => {
            const { safeHtml } = await import("/embed/static/render.js");
            const box = document.createElement("div");
            for (const payload of payloads) box.append(safeHtml(payload));
            document.body.append(box);
            await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 50)));
            return {
                tags: [...box.querySelectorAll("*")].map((e) => e.tagName.toLowerCase()),
                hrefs: [...box.querySelectorAll("a")].map((a) => [a.getAttribute("href"), a.rel]),
                handlers: [...box.querySelectorAll("*")].flatMap(
                    (e) => [...e.attributes].map((a) => a.name)
                        .filter((n) => n.startsWith("on") || n === "style" || n === "src")),
                text: box.textContent,
                ran: window.__ran === true,
            };
        }""",
        [
            *HOSTILE,
            '<img src=x onerror="window.__ran=true">',
            '<a href=" JaVaScRiPt:window.__ran=true">x</a>',
            '<a href="data:text/html,hi">data</a>',
            '<p style="position:fixed" onclick="x()">styled</p>',
            "<math><mtext><table><mglyph><style><img src=x onerror=window.__ran=true>",
            '<a href="https://example.org/ok">fine</a><mx-reply>quoted</mx-reply>',
            "<h1>big</h1><form><input></form>",
        ],
    )
    assert rendered["ran"] is False
    assert set(rendered["tags"]) <= {"a", "p", "strong"}, rendered["tags"]
    assert rendered["handlers"] == []
    assert rendered["hrefs"] == [
        [None, ""],
        [None, ""],
        [None, ""],
        ["https://example.org/ok", "noopener noreferrer nofollow"],
    ]
    assert "quoted" not in rendered["text"] and "fine" in rendered["text"]
    assert page.errors == []


async def test_a_lost_send_is_retried_once_and_refusals_are_said_in_words(
    bridge: tuple[Bridge, Recorder], browser: Any
) -> None:
    instance, _ = bridge
    ids = await seed(instance)
    tag = ids["student"].split("-")[1]
    status, _ = await call(
        instance,
        "PUT",
        f"/api/v1/institutions/u-{tag}",
        {"name": "Uni", "region": "GB", "content_rules": {"contact_info": "block"}},
    )
    assert status == 200
    conversation = await started(instance, ids)
    page = await open_page(
        browser, await link_for(instance, ids["student"], conversation=conversation["id"])
    )
    box = page.get_by_label("Write a message")
    await box.wait_for(timeout=WAIT_MS)
    # The first attempt never reaches the bridge; Retry sends it once.
    sends = f"**/embed/api/conversations/{conversation['id']}/messages"
    await page.route(sends, lambda route: route.abort(), times=1)
    await box.type("See you on Friday")
    await box.press("Enter")
    failed = page.locator(".message.pending", has_text="See you on Friday")
    await failed.locator(".status-failed", has_text="Not sent").wait_for(timeout=WAIT_MS)
    await failed.get_by_role("button", name="Retry").click()
    sent = page.locator(".message.mine:not(.pending)", has_text="See you on Friday")
    await sent.locator(".status", has_text="Sent").wait_for(timeout=WAIT_MS)
    # Two quick clicks of Send make one message.
    await box.fill("Only once")
    await page.get_by_role("button", name="Send").dblclick()
    await page.locator(".message.mine:not(.pending)", has_text="Only once").wait_for(
        timeout=WAIT_MS
    )
    # The institution blocks contact information: said next to the message, nothing sent.
    await box.type("Call me on 07911 123456")
    await box.press("Enter")
    refused = page.locator(".message.pending", has_text="07911")
    await refused.locator(".status-failed", has_text="personal contact information").wait_for(
        timeout=WAIT_MS
    )
    await box.fill("x" * 10_001)
    await box.press("Enter")
    await page.locator(".status-failed", has_text="This message is too long").wait_for(
        timeout=WAIT_MS
    )
    status, history = await call(
        instance,
        "GET",
        f"/api/v1/conversations/{conversation['id']}/messages?as={ids['tutor']}",
    )
    assert [m["body"] for m in history["messages"]] == ["See you on Friday", "Only once"]
    await page.screenshot(path=screenshot_path("refused"))
    assert page.errors == []


async def test_older_messages_load_on_scroll(bridge: tuple[Bridge, Recorder], browser: Any) -> None:
    instance, _ = bridge
    ids = await seed(instance)
    conversation = await started(instance, ids)
    for n in range(45):  # from both, within the per-person rate limit
        sender = ids["tutor"] if n % 2 else ids["student"]
        status, _ = await call(
            instance,
            "POST",
            f"/api/v1/conversations/{conversation['id']}/messages",
            {"sender": sender, "body": f"note {n}", "client_message_id": f"n{n}"},
        )
        assert status == 201
    page = await open_page(
        browser, await link_for(instance, ids["student"], conversation=conversation["id"])
    )
    newest = page.locator(".message", has_text="note 44")
    await newest.wait_for(timeout=WAIT_MS)
    assert await page.locator(".message").count() == 30
    await page.locator(".history").evaluate("h => h.scrollTo(0, 0)")
    await page.locator(".message", has_text="note 0").first.wait_for(timeout=WAIT_MS)
    assert await page.locator(".message").count() == 45
    texts = await page.locator(".message .body").all_inner_texts()
    assert texts == [f"note {n}" for n in range(45)]  # oldest to newest
    assert page.errors == []
