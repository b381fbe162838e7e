"""The room directory and direct messages (issue 13) in the browser, on two backends sharing
RabbitMQ: Ada (backend A) finds Grace's room (made on backend B) by searching for it, and in token
mode Ada starts a direct message from Grace's name, Grace is told, and the two keep talking
through a failover.
Screenshots of both views, light and dark, desktop and phone."""

from __future__ import annotations

import re
import time
from pathlib import Path

import jwt
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import DESKTOP, PHONE, ChatPage, OpenChat
from tests.e2e.test_ui_cluster import Cluster, hold_reconnects, start_cluster
from tests.fixtures.chatprocs import SpawnChat
from tests.fixtures.rabbitmq import RabbitMQNode

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.rabbitmq]

SECRET = "browser-test-secret-0123456789abcdef"


def token(sub: str, name: str) -> str:
    body = {"sub": sub, "aud": "chatcluster", "exp": time.time() + 600, "name": name}
    return jwt.encode(body, SECRET, algorithm="HS256")


def each_look(chat: ChatPage, shoot: Path, stem: str) -> None:
    """`stem`-{desktop,phone}-{light,dark}.png of what the page shows now."""
    for scheme in ("light", "dark"):
        chat.page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
        for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            chat.page.set_viewport_size({"width": viewport.width, "height": viewport.height})
            chat.screenshot(shoot / f"{stem}-{size}-{scheme}.png")
    chat.page.emulate_media(color_scheme="light")
    chat.page.set_viewport_size({"width": DESKTOP.width, "height": DESKTOP.height})


def test_a_room_made_on_the_other_backend_is_found_by_search_and_joined(
    open_chat: OpenChat,
    spawn_chat: SpawnChat,
    rabbitmq: RabbitMQNode,
    chat_cluster_name: str,
    screenshot_dir: Path,
) -> None:
    cluster = start_cluster(spawn_chat, rabbitmq, chat_cluster_name)
    grace = open_chat(cluster.frontend_b_url)
    grace.sign_in("Grace")
    for room in ("book-club", "bonsai", "cooking"):
        grace.join(room)
    expect(grace.page.locator("#room-list .room")).to_have_count(4)
    ada = open_chat(cluster.frontend_a_url)
    ada.sign_in("Ada")
    expect(ada.pod).to_have_text("backend-a")

    ada.page.get_by_role("button", name="Browse rooms").click()
    dialog = ada.page.get_by_role("dialog", name="Browse rooms")
    expect(dialog).to_be_visible()
    search = dialog.get_by_role("searchbox", name="Search by name")
    expect(search).to_be_focused()
    results = dialog.locator(".directory-room")
    search.press_sequentially("bo")
    expect(dialog.locator("#directory-summary")).to_have_text("2 rooms matching “bo”.")
    expect(results).to_have_count(2)
    expect(dialog.get_by_role("button", name="Join #book-club, 1 member")).to_be_visible()
    each_look(ada, screenshot_dir, "directory")

    search.fill("")
    search.press_sequentially("book")
    expect(results).to_have_count(1)
    # Keyboard only: from the search box to the result, Enter joins it.
    search.press("Tab")
    expect(dialog.get_by_role("button", name="Join #book-club, 1 member")).to_be_focused()
    ada.page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    expect(ada.page.locator("#room-name")).to_have_text("book-club")
    ada.send("found it through the directory")
    grace.select_room("book-club")
    grace.expect_delivered("found it through the directory")
    expect(ada.room_members).to_have_text("2 members")

    # Escape closes the dialog; a room already joined says so.
    ada.page.get_by_role("button", name="Browse rooms").click()
    expect(dialog.get_by_role("button", name=re.compile("^Open #book-club, "))).to_be_visible()
    ada.page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


@pytest.fixture
def token_cluster(spawn_chat: SpawnChat, rabbitmq: RabbitMQNode, chat_cluster_name: str) -> Cluster:
    env = {"CHAT_AUTH": "jwt", "CHAT_AUTH_SECRET": SECRET}
    return start_cluster(spawn_chat, rabbitmq, chat_cluster_name, env=env)


def start_direct(chat: ChatPage, other: str) -> None:
    """From `other`'s name in the open room's members panel."""
    chat.show_members()
    chat.page.get_by_role("button", name=f"Message {other} directly").click()
    expect(chat.page.locator("#room-name")).to_have_text(other)
    expect(chat.page.locator("#room-hash")).to_be_hidden()


def test_a_direct_message_started_from_a_name_reaches_the_other_across_a_failover(
    open_chat: OpenChat, token_cluster: Cluster, screenshot_dir: Path
) -> None:
    cluster = token_cluster
    grace = open_chat(f"{cluster.frontend_b_url}/#token={token('u-grace', 'Grace')}")
    grace.expect_live()
    ada = open_chat(f"{cluster.frontend_a_url}/#token={token('u-ada', 'Ada')}")
    hold = hold_reconnects(ada.page.route_web_socket)
    ada.page.reload()
    ada.expect_live()
    expect(ada.pod).to_have_text("backend-a")
    expect(grace.pod).to_have_text("backend-b")
    ada.show_members()
    expect(ada.member_names).to_have_text(["Ada", "Grace"])
    expect(ada.page.get_by_role("button", name="Message Ada directly")).to_have_count(0)

    start_direct(ada, "Grace")
    # Grace is told: the conversation appears in her list, and she opens it from there.
    called = grace.page.locator("#dm-list .room")
    expect(called).to_have_text(re.compile("Ada"))
    called.click()
    expect(grace.page.locator("#room-name")).to_have_text("Ada")
    dm_room = ada.page.locator("#dm-list .room")
    expect(dm_room).to_have_count(1)
    expect(dm_room).to_have_attribute("aria-label", re.compile("^Direct messages with Grace"))
    expect(ada.page).to_have_title("Grace · chatcluster")
    ada.send("hi Grace, just us here")
    grace.expect_delivered("hi Grace, just us here")
    grace.send("hi Ada")
    ada.expect_delivered("hi Ada")
    assert ada.page.locator("#room-list [data-room^='dm-']").count() == 0  # apart from rooms

    # Ada's backend dies while Grace writes; Ada resumes on the other and misses nothing.
    hold(True)
    cluster.backend_a.kill()
    expect(ada.connection).to_contain_text("Reconnecting")
    grace.send("while you were away")
    grace.expect_delivered("while you were away")
    hold(False)
    expect(ada.connection).to_have_attribute("data-state", "live", timeout=30_000)
    expect(ada.pod).to_have_text("backend-b")
    ada.expect_delivered("while you were away")
    ada.send("back on the other backend")
    grace.expect_delivered("back on the other backend")
    expect(ada.page.locator("#room-name")).to_have_text("Grace")
    # Ada's session on the dead backend leaves the counts once its beats are missed.
    expect(ada.users_online).to_have_text("2 people online", timeout=30_000)
    expect(ada.room_members).to_have_text("2 members")
    expect(ada.page.locator("#messages")).to_contain_text(
        "Beginning of your conversation with Grace"
    )
    ada.page.locator("#members-panel").evaluate("panel => panel.hidden = true")
    each_look(ada, screenshot_dir, "direct-message")
