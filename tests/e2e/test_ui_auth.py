"""The chat UI in token mode: the token travels in the page's fragment, the server names the
person, and refusals are shown instead of retried."""

from __future__ import annotations

import time

import jwt
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import OpenChat
from tests.fixtures.chatprocs import SpawnChat

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SECRET = "browser-test-secret-0123456789abcdef"


def token(**claims: object) -> str:
    body = {"sub": "u-ada", "aud": "chatcluster", "exp": time.time() + 300, **claims}
    return jwt.encode(body, SECRET, algorithm="HS256")


def test_the_token_in_the_fragment_names_the_person_and_limits_the_rooms(
    open_chat: OpenChat, spawn_chat: SpawnChat
) -> None:
    url = spawn_chat("dev", env={"CHAT_AUTH": "jwt", "CHAT_AUTH_SECRET": SECRET}).wait_ready().url
    ada = open_chat(f"{url}/#token={token(name='Ada', rooms=['general'])}")
    ada.expect_live()
    expect(ada.page.locator("#name-dialog")).not_to_be_visible()
    expect(ada.page.locator("#change-name")).to_be_hidden()
    expect(ada.page.locator("#my-name")).to_have_text("Ada")

    ada.send("signed in")
    ada.expect_delivered("signed in")
    expect(ada.message("signed in").locator(".author")).to_have_text("Ada")

    ada.join("secret")
    expect(ada.page.locator("#notice")).to_have_text("Access refused: not allowed to join secret.")
    ada.expect_live()  # the session goes on

    refused = open_chat(f"{url}/#token=not-a-token")
    expect(refused.connection).to_have_attribute("data-state", "refused")
    expect(refused.page.locator("#connection-state")).to_have_text("Access refused")
    expect(refused.page.get_by_role("button", name="Retry now")).to_be_visible()
