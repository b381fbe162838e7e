"""Reading a room back in the UI (issue 13): two pages on two backends sharing one RabbitMQ."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import EXPECT_TIMEOUT_MS, ChatPage, OpenChat
from tests.e2e.test_ui_cluster import ada_and_grace, start_cluster
from tests.fixtures.chatprocs import SpawnChat
from tests.fixtures.rabbitmq import RabbitMQNode
from tests.support.chatclient import ChatClient

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.rabbitmq]

SMALL_PAGES = {
    "CHAT_HISTORY_SIZE": "10",
    "CHAT_HISTORY_PAGE_MAX": "10",
    "CHAT_RATE_PER_SECOND": "1000",
    "CHAT_RATE_BURST": "1000",
}
"""A join shows ten messages and a page brings ten more, so a short history has many pages."""


def seed(backend_url: str, texts: list[str]) -> None:
    """Say `texts` in #general through a socket of its own, before any page is open."""

    async def say_all() -> None:
        client = await ChatClient.connect(backend_url, name="Archivist")
        try:
            await client.join("general")
            for text in texts:
                assert (await client.say("general", text))["type"] == "ack"
        finally:
            await client.close()

    # Playwright's sync API holds this thread's event loop.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, say_all()).result()


def shown_texts(chat: ChatPage) -> list[str]:
    texts: list[str] = chat.page.locator("#messages .msg .text").all_text_contents()
    return texts


def scroll_back_to_the_beginning(chat: ChatPage) -> None:
    """Scroll to the top again and again, as a reader would, until the list's beginning shows."""
    chat.page.wait_for_function(
        """() => {
          const list = document.querySelector("#messages");
          list.scrollTop = 0;
          return list.querySelector(".older.start") !== null;
        }""",
        polling=250,
        timeout=EXPECT_TIMEOUT_MS,
    )


def test_scrolling_up_pages_back_in_place_across_a_failover_with_nothing_twice(
    open_chat: OpenChat,
    spawn_chat: SpawnChat,
    rabbitmq: RabbitMQNode,
    chat_cluster_name: str,
    screenshot_dir: Path,
) -> None:
    cluster = start_cluster(spawn_chat, rabbitmq, chat_cluster_name, env=SMALL_PAGES)
    archive = [f"archived {n}" for n in range(90)]
    seed(cluster.backend_a.url, archive)
    ada, grace = ada_and_grace(open_chat, cluster)
    # The join brings ten; while the list cannot scroll yet, the page asks for more itself.
    expect(ada.message("archived 70")).to_have_count(1)
    expect(ada.page.locator("#messages .older")).to_have_text("Loading earlier messages…")

    # Scrolled to the top, the next page goes in above without moving what the reader sees
    # (the first message's text: its author line goes once an older message is by its author).
    first_text, first_top, count = ada.page.locator("#messages").evaluate(
        """list => {
          const first = list.querySelector(".msg .text");
          const top = first.getBoundingClientRect().top + list.scrollTop;
          const count = list.querySelectorAll(".msg").length;
          list.scrollTop = 0;
          return [first.textContent, top, count];
        }"""
    )
    ada.page.wait_for_function(
        "n => document.querySelectorAll('#messages .msg').length > n", arg=count
    )
    # The view is put back in the frame after the page goes in: wait for it (bounded), then
    # check where it settled.
    ada.page.wait_for_function(
        """([text, top]) => {
          const el = [...document.querySelectorAll("#messages .msg .text")]
            .find(e => e.textContent === text);
          return el && Math.abs(el.getBoundingClientRect().top - top) <= 1;
        }""",
        arg=[first_text, first_top],
        timeout=EXPECT_TIMEOUT_MS,
    )
    moved = ada.message(first_text).locator(".text").bounding_box()
    assert moved is not None
    assert abs(moved["y"] - first_top) <= 1, (moved["y"], first_top)

    # Ada's backend dies mid-way: the page resumes on the other one and pages on from there.
    loaded = shown_texts(ada)
    cluster.backend_a.kill()
    grace.send("said during the failover")
    expect(ada.pod).to_have_text("backend-b", timeout=30_000)
    ada.expect_delivered("said during the failover")
    # What was loaded stays, in one piece (a page more may have gone in above it), nothing twice.
    shown = shown_texts(ada)
    start = shown.index(loaded[0])
    assert shown[start : start + len(loaded)] == loaded
    assert len(shown) == len(set(shown))

    everything = [*archive, "said during the failover"]
    for chat in (ada, grace):
        scroll_back_to_the_beginning(chat)
        expect(chat.page.locator("#messages .older")).to_have_text("Beginning of #general")
        assert shown_texts(chat) == everything
        # One day, so one separator: above the oldest message, under the beginning.
        kinds = chat.page.locator("#messages > li").evaluate_all(
            "items => items.slice(0, 3).map(li => li.className)"
        )
        assert kinds == ["older start", "day", "msg"]
        expect(chat.page.locator("#messages .day")).to_have_count(1)
    grace.screenshot(screenshot_dir / "older-messages-beginning.png")
