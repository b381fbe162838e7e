"""Browser fixtures: Debian's Chromium driven by Playwright, and a page object for the chat UI.

One Chromium per test module (starting it costs about a second); every chat page gets its own
browser context, so two pages are two different browsers to the server (own localStorage, own
client id). Each page fails its test on any uncaught script error or any JavaScript dialog: the UI
opens none, so a dialog can only be injected script running.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Dialog,
    Locator,
    Page,
    expect,
    sync_playwright,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

EXPECT_TIMEOUT_MS = 15_000
"""How long an expectation waits: cross-backend delivery and presence go through RabbitMQ on a
busy 2-core machine, so allow well over the 1 s the design promises."""


@dataclass(frozen=True)
class Viewport:
    width: int
    height: int


DESKTOP = Viewport(1280, 800)
PHONE = Viewport(390, 844)


class ChatPage:
    """One person in one browser: what a test reads and does on the chat UI."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.policy_violations: list[str] = []
        """Console reports of the Content-Security-Policy refusing something the page did."""
        page.on("dialog", self._on_dialog)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", self._on_console)

    def _on_console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            self.policy_violations.append(message.text)

    def _on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    @property
    def connection(self) -> Locator:
        return self.page.locator("#connection")

    @property
    def pod(self) -> Locator:
        return self.page.locator("#pod")

    @property
    def users_online(self) -> Locator:
        return self.page.locator("#users-online")

    @property
    def room_members(self) -> Locator:
        return self.page.locator("#room-members")

    @property
    def typing(self) -> Locator:
        """The line above the composer that says who is typing in the open room."""
        return self.page.locator("#typing")

    @property
    def member_names(self) -> Locator:
        """The names in the open room's members panel, in the order shown."""
        return self.page.locator("#member-list .member-name")

    def show_members(self) -> None:
        """Open the members panel with its toggle, the member count in the room's header."""
        toggle = self.room_members
        if toggle.get_attribute("aria-expanded") != "true":
            toggle.click()
        expect(
            self.page.get_by_role("complementary", name=re.compile("^People in #"))
        ).to_be_visible()

    @property
    def composer(self) -> Locator:
        return self.page.locator("#composer-input")

    @property
    def messages(self) -> Locator:
        return self.page.locator("#messages .msg")

    def message(self, text: str) -> Locator:
        """Every shown message whose text is exactly `text` (so a duplicate counts twice)."""
        exact = re.compile(f"^{re.escape(text)}$")
        return self.messages.filter(has=self.page.locator(".text", has_text=exact))

    def sign_in(self, name: str) -> None:
        self.page.get_by_role("textbox", name="Display name").fill(name)
        self.page.get_by_role("button", name="Start chatting").click()
        self.expect_live()

    def expect_live(self) -> None:
        expect(self.connection).to_have_attribute("data-state", "live")

    def send(self, text: str) -> None:
        self.composer.fill(text)
        self.composer.press("Enter")

    def expect_delivered(self, text: str, *, within_ms: float | None = None) -> None:
        """`text` is shown exactly once, and not as pending (within Playwright's default time
        unless `within_ms` says otherwise)."""
        expect(self.message(text)).to_have_count(1, timeout=within_ms)
        expect(self.message(text)).not_to_have_class(re.compile(r"\bpending\b"), timeout=within_ms)

    def watch_connection(self) -> None:
        """Record from now on every state the status bar shows, however brief, when it showed it
        (epoch milliseconds), and whether it ever counted down to a reconnect
        (`connectionStates`, `connectionStateTimes`, `connectionCountedDown`)."""
        self.page.evaluate(
            """() => {
              const connection = document.querySelector("#connection");
              const countdown = document.querySelector("#connection-countdown");
              window.connectionStates = [];
              window.connectionStateTimes = [];
              window.connectionCountedDown = false;
              new MutationObserver(() => {
                window.connectionStates.push(connection.dataset.state);
                window.connectionStateTimes.push(Date.now());
              }).observe(connection, { attributes: true, attributeFilter: ["data-state"] });
              new MutationObserver(() => {
                if (countdown.textContent) window.connectionCountedDown = true;
              }).observe(countdown, { childList: true, characterData: true, subtree: true });
            }"""
        )

    def expect_reconnected(self) -> None:
        """Since `watch_connection()`, the page showed reconnecting and is live again."""
        self.page.wait_for_function(
            "() => window.connectionStates.includes('reconnecting')"
            " && window.connectionStates.at(-1) === 'live'",
            timeout=EXPECT_TIMEOUT_MS,
        )

    def last_live_at(self) -> float:
        """Since `watch_connection()`, when (epoch seconds) the page last turned live."""
        at: float = self.page.evaluate(
            """() => {
              const i = window.connectionStates.lastIndexOf('live');
              return i < 0 ? NaN : window.connectionStateTimes[i] / 1000;
            }"""
        )
        return at

    def counted_down(self) -> bool:
        """Since `watch_connection()`, the page waited a backoff delay before reconnecting."""
        return bool(self.page.evaluate("() => window.connectionCountedDown"))

    def show_rooms(self) -> None:
        """On a phone the rooms live in a drawer: open it (a no-op on a desktop)."""
        toggle = self.page.get_by_role("button", name="Rooms", exact=True)
        if toggle.is_visible() and toggle.get_attribute("aria-expanded") != "true":
            toggle.click()

    def join(self, room: str) -> None:
        self.show_rooms()
        self.page.get_by_role("textbox", name="Join or create a room").fill(room)
        self.page.get_by_role("button", name="Join", exact=True).click()

    def select_room(self, room: str) -> None:
        self.show_rooms()
        self.page.locator(f'#room-list [data-room="{room}"]').click()

    def screenshot(self, path: Path) -> None:
        """A still picture: no hover highlight, no blinking caret."""
        self.page.mouse.move(0, 0)
        self.page.screenshot(path=path, animations="disabled", caret="hide")


OpenChat = Callable[..., ChatPage]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium for one test module. Not longer: Playwright's sync API keeps its event loop
    marked as running in this thread while it is started, which breaks any asyncio test run
    meanwhile (pytest-asyncio refuses to start a loop inside a running one)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make system-deps` installs Debian's chromium")
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def open_chat(browser: Browser) -> Iterator[OpenChat]:
    """open_chat(url, viewport=DESKTOP, color_scheme="light", timezone_id=None) -> ChatPage.

    Each call is a fresh browser profile; pages are checked for script errors, dialogs and
    Content-Security-Policy violations at teardown, so every browser test also asserts that
    nothing unexpected ran and that the UI works under its policy.
    """
    opened: list[ChatPage] = []

    def open_(
        url: str,
        *,
        viewport: Viewport = DESKTOP,
        color_scheme: str = "light",
        timezone_id: str | None = None,
    ) -> ChatPage:
        context = browser.new_context(
            viewport={"width": viewport.width, "height": viewport.height},
            color_scheme=color_scheme,  # type: ignore[arg-type]
            locale="en-GB",
            timezone_id=timezone_id,
        )
        chat = ChatPage(context.new_page())
        opened.append(chat)
        chat.page.goto(url)
        return chat

    yield open_
    for chat in opened:
        chat.page.context.close()
    for chat in opened:
        assert chat.errors == [], f"script errors on the page: {chat.errors}"
        assert chat.dialogs == [], f"the page opened dialogs: {chat.dialogs}"
        assert chat.policy_violations == [], "the UI broke its own Content-Security-Policy"


@pytest.fixture(scope="session")
def screenshot_dir(pytestconfig: pytest.Config) -> Path:
    """Where the browser tests leave their screenshots: test-output/screenshots/."""
    path = pytestconfig.rootpath / "test-output" / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path
