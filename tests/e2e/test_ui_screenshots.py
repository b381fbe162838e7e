"""Screenshots of the main views, light and dark, desktop and phone, for people to look at.

They land in test-output/screenshots/; docs/screenshots/ holds a reviewed copy for the README.
The flow doubles as a test of a realistic session: three people, two rooms, a dropped server.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import DESKTOP, PHONE, ChatPage, OpenChat, Viewport
from tests.e2e.test_ui_edits import action, expect_edited, react
from tests.fixtures.chatprocs import SpawnChat

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CONVERSATION = [
    ("Grace Hopper", "Morning! The autoscaling example is merged: backends now scale on CPU."),
    ("Linus", "Nice. Does the operator still write replicas when the HPA is on?"),
    ("Grace Hopper", "@Linus no, it steps back and lets the HPA own the count."),
    ("Grace Hopper", "I ran the kill test three times: every tab came back on the other pod."),
    ("Ada", "Lovely. I'll try the production example on the staging cluster after lunch."),
    ("Ada", "Anyone up for reviewing the dashboard PR? It's small, promise."),
    ("Linus", "@Ada sure, send it over in #design-review."),
]
EDITED = (
    CONVERSATION[3][1],
    "I ran the kill test four times: every tab came back on the other pod, history intact.",
)
"""A message Grace fixes after sending it, shown "(edited)"."""
REACTIONS = [("Linus", 0, "👍"), ("Ada", 0, "👍"), ("Ada", 0, "🎉"), ("Grace Hopper", 4, "❤️")]
"""Who reacts to which message of the conversation, with what."""


def test_screenshots_of_the_main_views(
    open_chat: OpenChat, spawn_chat: SpawnChat, screenshot_dir: Path
) -> None:
    dev = spawn_chat("dev").wait_ready()
    people: dict[str, ChatPage] = {}
    for name in ("Grace Hopper", "Linus", "Ada"):
        people[name] = open_chat(dev.url)
        people[name].sign_in(name)
    for page in people.values():
        page.join("design-review")
        page.select_room("general")
    for name, text in CONVERSATION:
        people[name].send(text)
        people[name].expect_delivered(text)
    for name, index, emoji in REACTIONS:
        react(people[name], CONVERSATION[index][1], emoji)
    grace = people["Grace Hopper"]
    action(grace, EDITED[0], "Edit").click()
    box = grace.message(EDITED[0]).get_by_role("textbox", name="Edit message")
    box.fill(EDITED[1])
    box.press("Enter")
    expect_edited(grace, EDITED[1])
    people["Linus"].select_room("design-review")
    people["Linus"].send("Dashboard PR is up, two screens of CSS.")

    welcome = open_chat(dev.url)
    expect(welcome.page.get_by_role("dialog")).to_be_visible()
    welcome.screenshot(screenshot_dir / "welcome-desktop-light.png")

    def viewer(viewport: Viewport, scheme: str) -> ChatPage:
        page = open_chat(dev.url, viewport=viewport, color_scheme=scheme)
        page.sign_in("Ada")
        page.join("design-review")
        page.select_room("general")
        page.expect_delivered(CONVERSATION[-1][1])
        # Ada's name is highlighted, Linus's only tinted; the sidebar shows the notifications
        # switch.
        expect(page.message(CONVERSATION[-1][1]).locator("mark.mention")).to_have_text("@Ada")
        expect(page.message(CONVERSATION[2][1]).locator("span.mention")).to_have_text("@Linus")
        expect(page.users_online).to_contain_text("people online")
        expect_edited(page, EDITED[1])
        first = page.message(CONVERSATION[0][1])
        expect(first.locator('.chip[data-emoji="👍"] .chip-count')).to_have_text("2")
        return page

    def grace_types_for(reader: ChatPage) -> None:
        """Grace starts a reply in #general, shown to `reader` as typing (each reader is opened
        more than the 2 s between two typing signals after the last)."""
        grace = people["Grace Hopper"]
        grace.composer.fill("")
        grace.composer.press_sequentially("On it")
        expect(reader.typing).to_have_text("Grace Hopper is typing…")

    for scheme in ("light", "dark"):
        desktop = viewer(DESKTOP, scheme)
        desktop.screenshot(screenshot_dir / f"chat-desktop-{scheme}.png")
        desktop.show_members()
        expect(desktop.member_names).to_have_text(["Ada", "Grace Hopper", "Linus"])
        expect(desktop.page.locator("#members-more")).to_contain_text("more than one tab")
        grace_types_for(desktop)
        desktop.screenshot(screenshot_dir / f"members-typing-desktop-{scheme}.png")
        desktop.page.keyboard.press("Escape")
        phone = viewer(PHONE, scheme)
        phone.screenshot(screenshot_dir / f"chat-phone-{scheme}.png")
        phone.page.get_by_role("button", name="Rooms", exact=True).click()
        expect(phone.page.get_by_role("button", name="Rooms", exact=True)).to_have_attribute(
            "aria-expanded", "true"
        )
        phone.screenshot(screenshot_dir / f"rooms-phone-{scheme}.png")
        phone.page.keyboard.press("Escape")
        grace_types_for(phone)
        phone.screenshot(screenshot_dir / f"typing-phone-{scheme}.png")
        phone.show_members()
        phone.screenshot(screenshot_dir / f"members-phone-{scheme}.png")
        phone.page.keyboard.press("Escape")

    dev.kill()
    expect(desktop.connection).to_contain_text("Reconnecting")
    desktop.send("Is the server down?")
    expect(desktop.message("Is the server down?")).to_contain_text("Waiting for the connection")
    desktop.screenshot(screenshot_dir / "reconnecting-desktop-dark.png")

    names = sorted(path.name for path in screenshot_dir.glob("*.png"))
    assert {
        "welcome-desktop-light.png",
        "chat-desktop-light.png",
        "chat-desktop-dark.png",
        "chat-phone-light.png",
        "chat-phone-dark.png",
        "rooms-phone-light.png",
        "rooms-phone-dark.png",
        "reconnecting-desktop-dark.png",
        "members-typing-desktop-light.png",
        "members-typing-desktop-dark.png",
        "typing-phone-light.png",
        "typing-phone-dark.png",
        "members-phone-light.png",
        "members-phone-dark.png",
    } <= set(names)
