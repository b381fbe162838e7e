"""The chat UI against one `chatserver dev` process: what a person does and sees in one room."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, WebSocket, WebSocketRoute, expect

from tests.e2e.conftest import ChatPage, OpenChat
from tests.fixtures.chatprocs import SpawnChat

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def dev_url(spawn_chat: SpawnChat) -> str:
    return spawn_chat("dev").wait_ready().url


def test_two_people_see_each_others_messages_and_the_room_count(
    open_chat: OpenChat, dev_url: str
) -> None:
    ada = open_chat(dev_url)
    ada.sign_in("Ada")
    grace = open_chat(dev_url)
    grace.sign_in("Grace")

    ada.send("Hello Grace")
    grace.expect_delivered("Hello Grace")
    grace.send("Hi Ada")
    ada.expect_delivered("Hi Ada")

    for page in (ada, grace):
        expect(page.users_online).to_have_text("2 people online")
        expect(page.room_members).to_have_text("2 members")
    expect(ada.message("Hello Grace").locator(".author")).to_have_text("Ada")


def test_markup_in_a_message_is_shown_as_text_and_runs_nothing(
    open_chat: OpenChat, dev_url: str
) -> None:
    attacker = open_chat(dev_url)
    attacker.sign_in('<b onmouseover="alert(3)">Mallory</b>')
    reader = open_chat(dev_url)
    reader.sign_in("Reader")
    payloads = ["<img src=x onerror=alert(1)>", "<script>alert(2)</script>"]

    for text in payloads:
        attacker.send(text)
    for page in (attacker, reader):
        for text in payloads:
            page.expect_delivered(text)
        expect(page.page.locator("#messages img, #messages script, #messages b")).to_have_count(0)
    expect(reader.message(payloads[0]).locator(".author")).to_have_text(
        '<b onmouseover="alert(3)">Mallory</b>'
    )
    # The open_chat fixture fails the test if any page opened a dialog or threw.


def test_an_address_in_a_message_is_a_safe_link_and_the_message_says_its_pod(
    open_chat: OpenChat, dev_url: str
) -> None:
    writer = open_chat(dev_url)
    writer.sign_in("Ada")
    reader = open_chat(dev_url)
    reader.sign_in("Grace")
    text = "notes at https://example.com/notes?id=1. not javascript:alert(1)"
    writer.send(text)

    reader.expect_delivered(text)
    links = reader.message(text).locator(".text a")
    expect(links).to_have_count(1)
    expect(links).to_have_attribute("href", "https://example.com/notes?id=1")
    expect(links).to_have_attribute("rel", "noopener noreferrer")
    expect(links).to_have_attribute("target", "_blank")
    expect(reader.message(text).locator(".text")).to_have_text(text)
    expect(reader.message(text).locator(".time")).to_have_attribute(
        "title", re.compile(r" · via dev-\d+$")
    )


def test_a_room_name_is_checked_before_joining(open_chat: OpenChat, dev_url: str) -> None:
    page = open_chat(dev_url)
    page.sign_in("Ada")
    room_input = page.page.get_by_role("textbox", name="Join or create a room")

    page.join("Design Review")
    expect(page.page.locator("#room-error")).to_have_text(
        "Use lowercase letters. Try “design-review”."
    )
    expect(room_input).to_have_attribute("aria-invalid", "true")
    page.join("-design")
    expect(page.page.locator("#room-error")).to_have_text(re.compile("Start with"))

    page.join("design-review")
    expect(page.page.locator("#room-error")).to_be_hidden()
    expect(page.page.locator("#room-name")).to_have_text("design-review")
    expect(page.page.locator('#room-list [aria-current="page"]')).to_have_attribute(
        "data-room", "design-review"
    )
    expect(page.room_members).to_have_text("1 member")


def test_join_send_leave_and_unread_counts(open_chat: OpenChat, dev_url: str) -> None:
    ada = open_chat(dev_url)
    ada.sign_in("Ada")
    grace = open_chat(dev_url)
    grace.sign_in("Grace")
    grace.join("random")
    ada.join("random")
    expect(grace.room_members).to_have_text("2 members")

    ada.select_room("general")
    grace.send("in random while Ada reads general")
    badge = ada.page.locator('#room-list [data-room="random"] .badge')
    expect(badge).to_have_text("1")
    ada.select_room("random")
    expect(badge).to_have_count(0)
    ada.expect_delivered("in random while Ada reads general")

    ada.page.get_by_role("button", name="Leave").click()
    expect(ada.page.locator('#room-list [data-room="random"]')).to_have_count(0)
    expect(ada.page.locator("#room-name")).to_have_text("general")
    expect(grace.room_members).to_have_text("1 member")


def test_the_display_name_and_rooms_are_remembered_by_the_browser(
    open_chat: OpenChat, dev_url: str
) -> None:
    page = open_chat(dev_url)
    page.sign_in("Ada")
    page.join("kept")
    page.expect_live()

    page.page.reload()
    page.expect_live()
    expect(page.page.get_by_role("dialog")).to_be_hidden()
    expect(page.page.locator("#my-name")).to_have_text("Ada")
    expect(page.page.locator("#room-name")).to_have_text("kept")
    expect(page.page.locator("#room-list .room")).to_have_count(2)


def test_times_are_shown_in_the_readers_time_zone(open_chat: OpenChat, dev_url: str) -> None:
    zone = "Asia/Kolkata"  # UTC+05:30: a half-hour offset shows a UTC clock at a glance
    page = open_chat(dev_url, timezone_id=zone)
    page.sign_in("Ada")
    page.send("what time is it")
    page.expect_delivered("what time is it")

    time = page.message("what time is it").locator("time")
    utc = datetime.fromisoformat(time.get_attribute("datetime") or "")
    expect(time).to_have_text(utc.astimezone(ZoneInfo(zone)).strftime("%H:%M"))


def test_a_long_word_wraps_inside_the_message_list(open_chat: OpenChat, dev_url: str) -> None:
    page = open_chat(dev_url)
    page.sign_in("Ada")
    word = "x" * 600
    page.send(word)
    page.expect_delivered(word)

    scroll_width, client_width = page.page.locator("#messages").evaluate(
        "list => [list.scrollWidth, list.clientWidth]"
    )
    assert scroll_width <= client_width


def test_the_chat_is_usable_with_the_keyboard_alone(open_chat: OpenChat, dev_url: str) -> None:
    page = open_chat(dev_url)
    keyboard = page.page.keyboard
    expect(page.page.get_by_role("textbox", name="Display name")).to_be_focused()
    keyboard.type("Keys")
    keyboard.press("Enter")
    page.expect_live()

    expect(page.composer).to_be_focused()
    keyboard.type("typed, not clicked")
    keyboard.press("Enter")
    page.expect_delivered("typed, not clicked")

    page.page.get_by_role("textbox", name="Join or create a room").focus()
    keyboard.type("keys-only")
    keyboard.press("Enter")
    expect(page.page.locator("#room-name")).to_have_text("keys-only")
    expect(page.composer).to_be_focused()


def test_a_message_over_the_size_limit_is_marked_not_sent(
    open_chat: OpenChat, spawn_chat: SpawnChat
) -> None:
    dev = spawn_chat("dev", env={"CHAT_MAX_MESSAGE_BYTES": "64"}).wait_ready()
    page = open_chat(dev.url)
    page.sign_in("Ada")
    long_text = "far too long " * 10

    page.send(long_text)
    refused = page.message(long_text.strip())
    expect(refused).to_have_class(re.compile(r"\bfailed\b"))
    expect(refused).to_contain_text("Not sent: That message is too long for this chat.")
    page.send("short")
    page.expect_delivered("short")
    refused.get_by_role("button", name="Remove").click()
    expect(refused).to_have_count(0)


def test_sends_over_the_rate_limit_wait_their_turn_and_are_delivered_once(
    open_chat: OpenChat, spawn_chat: SpawnChat
) -> None:
    env = {"CHAT_RATE_PER_SECOND": "2", "CHAT_RATE_BURST": "2"}
    dev = spawn_chat("dev", env=env).wait_ready()
    writer = open_chat(dev.url)
    writer.sign_in("Writer")
    reader = open_chat(dev.url)
    reader.sign_in("Reader")
    texts = [f"burst {n}" for n in range(4)]

    for text in texts:
        writer.send(text)
    # Paced to the server's rate: the last one waits, pending, rather than being refused.
    expect(writer.message(texts[-1])).to_have_class(re.compile(r"\bpending\b"))
    for text in texts:
        writer.expect_delivered(text)
        reader.expect_delivered(text)
    expect(reader.messages.locator(".text")).to_have_text(texts)
    expect(writer.page.get_by_text("faster than the server allows")).to_have_count(0)


def test_a_message_typed_while_offline_is_sent_once_when_back_online(
    open_chat: OpenChat, dev_url: str
) -> None:
    reader = open_chat(dev_url)
    reader.sign_in("Reader")
    writer = open_chat(dev_url)
    writer.sign_in("Writer")

    writer.page.context.set_offline(True)
    expect(writer.connection).to_have_attribute("data-state", "offline")
    expect(writer.connection).to_contain_text("Offline")
    writer.send("written on the train")
    expect(writer.message("written on the train")).to_have_class(re.compile(r"\bpending\b"))
    expect(writer.message("written on the train")).to_contain_text("Waiting for the connection")

    writer.page.context.set_offline(False)
    writer.expect_live()
    writer.expect_delivered("written on the train")
    reader.expect_delivered("written on the train")


def test_an_unacknowledged_send_is_resent_with_its_ref_and_shown_once(
    open_chat: OpenChat, dev_url: str
) -> None:
    """The ack is lost with the connection: the resend must reuse the ref, so no duplicate."""
    reader = open_chat(dev_url)
    reader.sign_in("Reader")
    writer = open_chat(dev_url)
    connections: list[tuple[WebSocketRoute, WebSocketRoute]] = []
    sent: list[list[dict[str, object]]] = []

    def relay(page_side: WebSocketRoute) -> None:
        server_side = page_side.connect_to_server()
        loses_acks = not connections  # only the first connection loses its acks
        frames: list[dict[str, object]] = []
        connections.append((page_side, server_side))
        sent.append(frames)

        def to_server(data: str | bytes) -> None:
            frames.append(json.loads(data))
            server_side.send(data)

        def to_page(data: str | bytes) -> None:
            if loses_acks and isinstance(data, str):
                kept = [line for line in data.split("\n") if json.loads(line)["type"] != "ack"]
                if not kept:
                    return
                data = "\n".join(kept)
            page_side.send(data)

        page_side.on_message(to_server)
        server_side.on_message(to_page)

    writer.page.route_web_socket(re.compile(r"/ws\b"), relay)
    writer.page.reload()
    writer.sign_in("Writer")
    writer.send("exactly once please")
    reader.expect_delivered("exactly once please")
    (ref,) = [f["ref"] for f in sent[0] if f["type"] == "send"]

    writer.watch_connection()
    for side in connections[0]:
        side.close()
    writer.expect_reconnected()
    # Frames of one connection arrive in order: once this later send is through, the resend
    # of the unacknowledged one (made right after the welcome) has been relayed too.
    writer.send("sent after the reconnect")
    reader.expect_delivered("sent after the reconnect")
    assert ref in [f["ref"] for f in sent[-1] if f["type"] == "send"]
    writer.expect_delivered("exactly once please")
    reader.page.reload()
    reader.expect_live()
    reader.expect_delivered("exactly once please")


def test_a_reader_scrolled_back_is_offered_the_new_messages_not_yanked_down(
    open_chat: OpenChat, dev_url: str
) -> None:
    reader = open_chat(dev_url)
    reader.sign_in("Reader")
    writer = open_chat(dev_url)
    writer.sign_in("Writer")
    tall = ["\n".join(f"{n}: line {line}" for line in range(6)) for n in range(8)]
    for text in tall:
        writer.send(text)
    expect(reader.messages).to_have_count(len(tall))
    jump = reader.page.get_by_role("button", name="New messages")
    expect(jump).to_be_hidden()

    reader.page.locator("#messages").evaluate("list => { list.scrollTop = 0; }")
    writer.send("news below the fold")
    expect(jump).to_be_visible()
    expect(reader.message("news below the fold")).not_to_be_in_viewport()
    jump.click()
    expect(reader.message("news below the fold")).to_be_in_viewport()
    expect(jump).to_be_hidden()


def test_after_a_dev_server_restart_every_message_is_shown_once_on_every_page(
    open_chat: OpenChat, spawn_chat: SpawnChat
) -> None:
    """The restarted server starts #general's log again: its ids must not hide new messages."""
    first = spawn_chat("dev").wait_ready()
    ada = open_chat(first.url)
    ada.sign_in("Ada")
    bob = open_chat(first.url)
    bob.sign_in("Bob")
    for n in range(4):
        ada.send(f"before {n}")
    for page in (ada, bob):
        for n in range(4):
            page.expect_delivered(f"before {n}")

    first.terminate()
    assert first.wait(timeout=30) == 0
    for page in (ada, bob):
        expect(page.connection).not_to_have_attribute("data-state", "live")
    ada.send("typed while the server was away")  # acked once the page is back
    second = spawn_chat("dev", port=first.port, pod="dev-again").wait_ready()
    for page in (ada, bob):
        page.expect_live()
        expect(page.pod).to_contain_text(second.pod)
    ada.send("back after the restart")

    for page in (ada, bob):
        page.expect_delivered("typed while the server was away")
        page.expect_delivered("back after the restart")
        expect(page.page.get_by_role("note")).to_have_text(
            "Earlier messages are no longer available."
        )
    # The new log's history is what a reload shows, each message once.
    bob.page.reload()
    bob.expect_live()
    expect(bob.messages.locator(".text")).to_have_text(
        ["typed while the server was away", "back after the restart"]
    )


def test_the_ui_works_under_its_content_security_policy(
    open_chat: OpenChat, browser: Browser, dev_url: str
) -> None:
    ada = open_chat(dev_url)
    response = ada.page.reload()
    assert response is not None
    assert "script-src 'self'" in response.headers["content-security-policy"]
    ada.sign_in("Ada")
    grace = open_chat(dev_url)
    grace.sign_in("Grace")
    ada.send("Under the policy")
    grace.expect_delivered("Under the policy")
    ada.join("elsewhere")
    # (open_chat's teardown asserts that neither page had anything refused by the policy.)

    # The policy is enforced, not only sent: script the app does not serve cannot run.
    probe = browser.new_page()
    try:
        probe.goto(dev_url)
        ran = probe.evaluate(
            """() => {
                const script = document.createElement("script");
                script.textContent = "window.injected = true";
                document.head.append(script);
                return window.injected === true;
            }"""
        )
        assert ran is False
    finally:
        probe.close()


def test_a_page_in_a_hundred_rooms_resumes_them_all_without_being_refused(
    open_chat: OpenChat, dev_url: str
) -> None:
    """Reconnecting, the page asks for every room again; paced to the server's rate limit, it
    is never refused with `rate_limited` (nor cut with 1008 as an abuser)."""
    ada = open_chat(dev_url)
    ada.sign_in("Ada")
    rooms = [f"room-{n:03d}" for n in range(100)]
    ada.page.evaluate(f"localStorage.setItem('chatcluster.rooms', '{json.dumps(rooms)}')")
    answers: list[dict[str, object]] = []

    def watch(socket: WebSocket) -> None:
        def heard(payload: str | bytes) -> None:
            for line in str(payload).splitlines():
                frame = json.loads(line)
                if frame["type"] in ("joined", "error"):
                    answers.append(frame)

        socket.on("framereceived", heard)

    ada.page.on("websocket", watch)
    ada.page.reload()
    ada.expect_live()

    def joined_all() -> bool:
        return {a["room"] for a in answers if a["type"] == "joined"} >= set(rooms)

    wait_until(ada, joined_all, what="100 rooms joined after the page load")
    answers.clear()
    ada.watch_connection()
    ada.page.context.set_offline(True)
    ada.page.context.set_offline(False)
    ada.expect_reconnected()
    wait_until(ada, joined_all, what="100 rooms joined again after the reconnect")
    assert [a for a in answers if a["type"] == "error"] == []
    ada.expect_live()


def wait_until(chat: ChatPage, condition: Callable[[], bool], *, what: str) -> None:
    """Let the page run until `condition` holds (Playwright's events arrive while it waits)."""
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, f"not within 60 s: {what}"
        chat.page.wait_for_timeout(100)


def test_a_join_over_the_room_cap_or_of_a_room_none_may_create_is_said_by_the_room_list(
    open_chat: OpenChat, spawn_chat: SpawnChat
) -> None:
    # The cap covers every preset room, so it is reached with a room someone makes.
    capped = {"CHAT_MAX_ROOMS_PER_CONNECTION": "2", "CHAT_ROOMS": "general"}
    ada = open_chat(spawn_chat("dev", env=capped).wait_ready().url)
    ada.sign_in("Ada")
    ada.expect_live()
    room_error = ada.page.locator("#room-error")
    ada.join("news")
    ada.join("sport")
    expect(room_error).to_have_text(
        "#sport: You are in as many rooms as this chat allows: leave one to join another."
    )
    expect(ada.page.locator("#room-list")).not_to_contain_text("sport")
    ada.expect_live()  # the session goes on

    preset = {"CHAT_ROOM_CREATION": "preset", "CHAT_ROOMS": "general,news"}
    grace = open_chat(spawn_chat("dev", env=preset).wait_ready().url)
    grace.sign_in("Grace")
    grace.expect_live()
    grace.join("made-up")
    expect(grace.page.locator("#room-error")).to_have_text(
        "#made-up: That room does not exist, and you may not create it."
    )
    grace.expect_live()
