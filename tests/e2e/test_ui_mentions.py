"""Mentions and notifications across a cluster: Grace (backend B) calls Ada (backend A) by name.

Headless Chromium shows no notifications and its tab is never hidden, so Ada's page runs with
both stood in for (`hidden_tab_with_notifications`): the tab's visibility is the test's to set,
and every `Notification` the page creates is recorded instead of shown.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ChatPage, OpenChat
from tests.e2e.test_ui_cluster import Cluster, hold_reconnects, start_cluster
from tests.fixtures.chatprocs import SpawnChat
from tests.fixtures.rabbitmq import RabbitMQNode

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.rabbitmq]

STAND_INS = """(() => {
  let hidden = false;
  Object.defineProperty(Document.prototype, "hidden", { configurable: true, get: () => hidden });
  Object.defineProperty(Document.prototype, "visibilityState", {
    configurable: true,
    get: () => (hidden ? "hidden" : "visible"),
  });
  window.setTabHidden = (on) => {
    hidden = on;
    document.dispatchEvent(new Event("visibilitychange"));
  };
  const Browsers = window.Notification;
  window.notificationsShown = [];
  window.Notification = class extends EventTarget {
    static get permission() { return Browsers.permission; }
    static requestPermission() { return Browsers.requestPermission(); }
    constructor(title, { body, tag } = {}) {
      super();
      window.notificationsShown.push({ title, body, tag, shown: this });
    }
    close() {}
  };
})()"""


@pytest.fixture
def cluster(spawn_chat: SpawnChat, rabbitmq: RabbitMQNode, chat_cluster_name: str) -> Cluster:
    return start_cluster(spawn_chat, rabbitmq, chat_cluster_name)


def hidden_tab_with_notifications(chat: ChatPage) -> None:
    """From the next load on, the page's visibility is set by `set_hidden` and its notifications
    are recorded (`notifications`); the browser's permission to notify is granted."""
    chat.page.context.grant_permissions(["notifications"])
    chat.page.add_init_script(STAND_INS)


def set_hidden(chat: ChatPage, hidden: bool) -> None:
    chat.page.evaluate(f"() => window.setTabHidden({str(hidden).lower()})")


def notifications(chat: ChatPage) -> list[dict[str, Any]]:
    shown: list[dict[str, Any]] = chat.page.evaluate(
        "() => window.notificationsShown.map(({title, body, tag}) => ({title, body, tag}))"
    )
    return shown


def expect_notifications(chat: ChatPage, count: int) -> None:
    chat.page.wait_for_function(f"() => window.notificationsShown.length >= {count}")


def test_a_hidden_tab_is_told_of_mentions_and_its_room_once_even_across_a_failover(
    open_chat: OpenChat, cluster: Cluster, screenshot_dir: Path
) -> None:
    grace = open_chat(cluster.frontend_b_url)
    grace.sign_in("Grace")
    ada = open_chat(cluster.frontend_a_url)
    hold = hold_reconnects(ada.page.route_web_socket)
    hidden_tab_with_notifications(ada)
    ada.page.reload()
    ada.sign_in("Ada")
    expect(ada.pod).to_have_text("backend-a")
    switch = ada.page.get_by_role("switch", name="Notifications")
    switch.click()
    expect(switch).to_have_attribute("aria-checked", "true")

    # Visible: the mention is highlighted, its link still a link; nothing is notified.
    first = "@Ada have a look at https://ci.example/run/7"
    grace.send(first)
    ada.expect_delivered(first)
    expect(ada.message(first)).to_have_class(re.compile(r"\bmentions-me\b"))
    expect(ada.message(first).locator("mark.mention")).to_have_text("@Ada")
    expect(ada.message(first).get_by_role("link")).to_have_attribute(
        "href", "https://ci.example/run/7"
    )
    expect(grace.message(first).locator(".mention")).to_have_text("@Ada")
    expect(grace.message(first).locator("mark")).to_have_count(0)

    ada.join("random")
    grace.join("random")
    expect(ada.room_members).to_have_text("2 members")
    set_hidden(ada, True)
    grace.select_room("general")
    grace.send("@Ada the deploy is green")
    expect(ada.page).to_have_title("(@) #random · chatcluster")
    grace.send("lunch?")  # neither a mention nor the open room: counted, not notified
    expect(ada.page).to_have_title("(2@) #random · chatcluster")
    ada.send("@Ada note to self")  # her own: never notified
    ada.expect_delivered("@Ada note to self")
    grace.select_room("random")
    grace.send("random chatter")
    expect(ada.page).to_have_title("(3@) #random · chatcluster")
    expect_notifications(ada, 2)

    # Away and back on the other backend: what the resume replays is not notified again.
    hold(True)
    cluster.backend_a.kill()
    expect(ada.connection).to_contain_text("Reconnecting")
    grace.select_room("general")
    grace.send("@Ada while you were away")
    grace.expect_delivered("@Ada while you were away")
    hold(False)
    expect(ada.connection).to_have_attribute("data-state", "live", timeout=30_000)
    expect(ada.pod).to_have_text("backend-b")
    grace.send("@Ada welcome back")
    expect_notifications(ada, 3)
    assert notifications(ada) == [
        {
            "title": "Grace mentioned you in #general",
            "body": "@Ada the deploy is green",
            "tag": "chatcluster:general",
        },
        {"title": "Grace in #random", "body": "random chatter", "tag": "chatcluster:random"},
        {
            "title": "Grace mentioned you in #general",
            "body": "@Ada welcome back",
            "tag": "chatcluster:general",
        },
    ]

    # Back to the tab: the open room is read; the other keeps its mark until opened.
    set_hidden(ada, False)
    expect(ada.page).to_have_title("(3@) #random · chatcluster")
    badge = ada.page.locator('#room-list [data-room="general"] .badge')
    expect(badge).to_have_text("3@")
    expect(badge).to_have_class(re.compile(r"\bmention\b"))
    ada.screenshot(screenshot_dir / "mentions-desktop-light.png")
    ada.page.evaluate(
        "() => window.notificationsShown.at(-1).shown.dispatchEvent(new Event('click'))"
    )
    expect(ada.page.locator("#room-name")).to_have_text("general")
    expect(ada.page).to_have_title("#general · chatcluster")
    for text in [
        first,
        "@Ada the deploy is green",
        "@Ada while you were away",
        "@Ada welcome back",
    ]:
        ada.expect_delivered(text)
    assert len(notifications(ada)) == 3


def test_notifications_stay_off_when_the_browser_does_not_allow_them(
    open_chat: OpenChat, spawn_chat: SpawnChat
) -> None:
    ada = open_chat(spawn_chat("dev").wait_ready().url)
    ada.sign_in("Ada")
    switch = ada.page.get_by_role("switch", name="Notifications")
    switch.click()
    # Headless Chromium dismisses the browser's question: still not asked, so asked again later.
    expect(switch).to_have_attribute("aria-checked", "false")
    assert ada.page.evaluate("() => Notification.permission") == "default"
    expect(switch).to_be_enabled()
    expect(ada.page.locator("#notify-hint")).to_have_text(
        "Mentions of you, and the open room, while this tab is hidden."
    )
