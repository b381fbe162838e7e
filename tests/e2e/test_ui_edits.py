"""Edits, deletes and reactions across a cluster (issue 13): Ada (backend A) fixes a typo and
deletes a message, Grace and Carol (backend B) react, Ada's backend dies in the middle, and every
page, a fresh one included, converges on the same view."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Locator, expect

from tests.e2e.conftest import PHONE, ChatPage, OpenChat
from tests.e2e.test_ui_cluster import Cluster, hold_reconnects, start_cluster
from tests.fixtures.chatprocs import SpawnChat
from tests.fixtures.rabbitmq import RabbitMQNode

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.rabbitmq]

DELETED = "This message was deleted."


@pytest.fixture
def cluster(spawn_chat: SpawnChat, rabbitmq: RabbitMQNode, chat_cluster_name: str) -> Cluster:
    return start_cluster(spawn_chat, rabbitmq, chat_cluster_name)


def action(chat: ChatPage, text: str, name: str) -> Locator:
    """The button `name` of the message `text`, shown as a pointer shows it (hovering)."""
    message = chat.message(text)
    message.hover()
    return message.get_by_role("button", name=name, exact=True)


def react(chat: ChatPage, text: str, emoji: str) -> None:
    action(chat, text, "Add reaction").click()
    chat.message(text).get_by_role("button", name=f"React with {emoji}").click()


def chip(chat: ChatPage, text: str, emoji: str) -> Locator:
    return chat.message(text).locator(f'.chip[data-emoji="{emoji}"]')


def expect_chip(chat: ChatPage, text: str, emoji: str, count: int, *, mine: bool) -> None:
    expect(chip(chat, text, emoji).locator(".chip-count")).to_have_text(str(count))
    expect(chip(chat, text, emoji)).to_have_attribute("aria-pressed", str(mine).lower())


def expect_edited(chat: ChatPage, text: str) -> None:
    chat.expect_delivered(text)
    expect(chat.message(text).locator(".edited")).to_be_visible()


def test_edits_deletes_and_reactions_converge_on_every_page_across_a_failover(
    open_chat: OpenChat, cluster: Cluster, screenshot_dir: Path
) -> None:
    grace = open_chat(cluster.frontend_b_url)
    grace.sign_in("Grace")
    carol = open_chat(cluster.frontend_b_url)
    carol.sign_in("Carol")
    ada = open_chat(cluster.frontend_a_url)
    hold = hold_reconnects(ada.page.route_web_socket)
    ada.page.reload()
    ada.sign_in("Ada")
    expect(ada.pod).to_have_text("backend-a")

    ada.send("helo wrold")
    ada.send("oops, wrong room")
    grace.send("morning all")
    for chat in (ada, grace, carol):
        chat.expect_delivered("morning all")

    # Ada edits her typo in place: Enter saves, and every page shows the new text, edited.
    action(ada, "helo wrold", "Edit").click()
    box = ada.message("helo wrold").get_by_role("textbox", name="Edit message")
    expect(box).to_be_focused()
    box.fill("hello world")
    box.press("Enter")
    for chat in (ada, grace, carol):
        expect_edited(chat, "hello world")
        expect(chat.message("helo wrold")).to_have_count(0)
    # Only the author is offered Edit and Delete; anyone may react.
    expect(action(grace, "hello world", "Edit")).to_be_hidden()
    expect(action(ada, "morning all", "Delete")).to_be_hidden()
    react(grace, "hello world", "👍")
    expect_chip(ada, "hello world", "👍", 1, mine=False)
    expect_chip(grace, "hello world", "👍", 1, mine=True)
    expect(chip(ada, "hello world", "👍")).to_have_attribute("title", "👍 Grace")

    # Ada's backend dies; while she is away the others react.
    hold(True)
    cluster.backend_a.kill()
    expect(ada.connection).to_contain_text("Reconnecting")
    chip(carol, "hello world", "👍").click()  # a chip adds the reader's own reaction
    react(grace, "oops, wrong room", "🎉")
    expect_chip(grace, "hello world", "👍", 2, mine=True)
    expect_chip(grace, "oops, wrong room", "🎉", 1, mine=True)
    hold(False)
    expect(ada.connection).to_have_attribute("data-state", "live", timeout=30_000)
    expect(ada.pod).to_have_text("backend-b")
    expect_chip(ada, "hello world", "👍", 2, mine=False)
    expect_chip(ada, "oops, wrong room", "🎉", 1, mine=False)

    # Back, on the other backend: she is still the author. Escape cancels an edit; Delete asks.
    action(ada, "hello world", "Edit").focus()
    ada.page.keyboard.press("Enter")
    box = ada.message("hello world").get_by_role("textbox", name="Edit message")
    box.fill("never sent")
    box.press("Escape")
    expect(box).to_have_count(0)
    action(ada, "oops, wrong room", "Delete").click()
    confirm = ada.message("oops, wrong room").get_by_role("alertdialog")
    expect(confirm).to_contain_text("Delete this message?")
    confirm.get_by_role("button", name="Delete").click()
    chip(ada, "hello world", "👍").click()
    for chat in (ada, grace, carol):
        chat.expect_delivered(DELETED)
        expect(chat.message(DELETED)).to_have_class(re.compile(r"\bdeleted\b"))
        expect(chat.message(DELETED).locator(".chip")).to_have_count(0)
        expect_chip(chat, "hello world", "👍", 3, mine=True)
        expect_edited(chat, "hello world")
    expect(chat.message("never sent")).to_have_count(0)
    assert "Ada" in (chip(grace, "hello world", "👍").get_attribute("title") or "")

    # A page that joins now replays the room's log and shows the same.
    dan = open_chat(cluster.frontend_b_url)
    dan.sign_in("Dan")
    expect_edited(dan, "hello world")
    dan.expect_delivered(DELETED)
    expect_chip(dan, "hello world", "👍", 3, mine=False)
    expect(dan.message("helo wrold")).to_have_count(0)

    react(dan, "morning all", "😂")
    expect_chip(ada, "morning all", "😂", 1, mine=False)
    action(ada, "hello world", "Add reaction").click()  # the picker open in the shots
    ada.screenshot(screenshot_dir / "edits-desktop-light.png")
    dan.page.emulate_media(color_scheme="dark")
    dan.screenshot(screenshot_dir / "edits-desktop-dark.png")
    dan.page.set_viewport_size({"width": PHONE.width, "height": PHONE.height})
    dan.message("hello world").click()  # a tap shows the actions
    dan.screenshot(screenshot_dir / "edits-phone-dark.png")
    dan.page.emulate_media(color_scheme="light")
    dan.screenshot(screenshot_dir / "edits-phone-light.png")
