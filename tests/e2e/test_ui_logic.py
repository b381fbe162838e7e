"""The UI's pure modules, run in the browser itself (no Node, no build step, no server)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Route

pytestmark = [pytest.mark.browser, pytest.mark.slow]


ORIGIN = "http://ui.test"
"""A made-up origin whose requests Playwright answers from the static folder: no server."""
STATIC = Path(__file__).resolve().parents[2] / "chatserver" / "static"


def _serve_static(route: Route) -> None:
    path = urlsplit(route.request.url).path.removeprefix("/static/")
    file = (STATIC / path).resolve()
    if route.request.url == ORIGIN + "/":
        route.fulfill(content_type="text/html", body="<!doctype html><title>modules</title>")
    elif file.is_relative_to(STATIC) and file.is_file():
        route.fulfill(path=file)
    else:
        route.fulfill(status=404)


@pytest.fixture(scope="module")
def run_module(browser: Browser) -> Iterator[Callable[[str, str], Any]]:
    """run_module("protocol.js", "m => m.parseFrames('...')") -> the function's JSON result."""
    context = browser.new_context()
    context.route(ORIGIN + "/**", _serve_static)
    page = context.new_page()
    page.goto(ORIGIN + "/")

    def run(module: str, body: str) -> Any:
        return page.evaluate(
            f"async () => {{ const m = await import('/static/js/{module}'); return ({body})(m); }}"
        )

    yield run
    context.close()


def test_batched_frames_are_split_and_a_bad_line_spares_the_rest(run_module: Any) -> None:
    batch = '{"type":"pong"}\\n{not json}\\n[1]\\n\\n{"type":"presence","users_online":3}'
    result = run_module("protocol.js", f"m => m.parseFrames('{batch}')")
    assert result == {
        "frames": [{"type": "pong"}, {"type": "presence", "users_online": 3}],
        "problems": ["{not json}", "[1]"],
    }


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("general", None),
        ("a", None),
        ("0-room_x", None),
        ("r" * 64, None),
        ("", "Type a room name."),
        ("r" * 65, f"A room name has at most 64 characters. Try “{'r' * 64}”."),
        ("General", "Use lowercase letters. Try “general”."),
        ("Café Talk", "Use lowercase letters. Try “cafe-talk”."),
        ("_x", "Start with a lowercase letter or a digit. Try “x”."),
        ("two words", "Use only a-z, 0-9, “-” and “_”. Try “two-words”."),
        ("??", "Start with a lowercase letter or a digit."),
        ("日本", "Start with a lowercase letter or a digit."),
    ],
)
def test_room_names_follow_the_protocol_pattern(
    run_module: Any, name: str, problem: str | None
) -> None:
    assert run_module("protocol.js", f"m => m.roomNameProblem({name!r})") == problem


def test_reconnect_delays_grow_exponentially_with_full_jitter(run_module: Any) -> None:
    ceilings = run_module(
        "backoff.js",
        "m => [0, 1, 2, 3, 4, 5, 10, 100].map(a => m.fullJitterDelay(a, {random: () => 0.999999}))",
    )
    assert ceilings == [499, 999, 1999, 3999, 7999, 14999, 14999, 14999]
    assert run_module("backoff.js", "m => m.fullJitterDelay(6, {random: () => 0})") == 0


def test_a_room_log_shows_each_message_once_and_keeps_pending_sends_last(
    run_module: Any,
) -> None:
    shown = run_module(
        "roomlog.js",
        """m => {
          const log = new m.RoomLog("general");
          const msg = (id, user, text) => ({id, user, text, ts: 1, pod: "p", room: "general"});
          log.addMessage(msg("1", "grace", "hi"), "ada");
          log.addPending("r1", "first", "ada", 2);
          log.addPending("r2", "second", "ada", 3);
          log.addMessage(msg("2", "grace", "meanwhile"), "ada");
          log.ack("r2", "4");                                  // ack before its broadcast
          log.addMessage(msg("3", "ada", "first"), "ada");     // broadcast before its ack
          log.ack("r1", "3");
          log.addMessage(msg("1", "grace", "hi"), "ada");      // replayed after a reconnect
          log.addMessage(msg("4", "ada", "second"), "ada");
          log.addMessage(msg("4", "ada", "second"), "ada");
          return log.entries().map(e => [e.key, e.id, e.text, e.status]);
        }""",
    )
    assert shown == [
        ["id:1", "1", "hi", "sent"],
        ["id:2", "2", "meanwhile", "sent"],
        ["ref:r1", "3", "first", "sent"],
        ["ref:r2", "4", "second", "sent"],
    ]


def test_a_refused_send_stays_visible_until_discarded(run_module: Any) -> None:
    shown = run_module(
        "roomlog.js",
        """m => {
          const log = new m.RoomLog("general");
          log.addPending("r1", "way too long", "ada", 1);
          log.fail("r1", "That message is too long for this chat.");
          const failed = log.entries().map(e => [e.status, e.problem]);
          log.addMessage({id: "9", user: "ada", text: "way too long", ts: 2}, "ada");
          const afterSameText = log.entries().map(e => e.key);
          log.discard("r1");
          return {failed, afterSameText, after: log.entries().map(e => e.key)};
        }""",
    )
    assert shown == {
        "failed": [["failed", "That message is too long for this chat."]],
        "afterSameText": ["id:9", "ref:r1"],
        "after": ["id:9"],
    }


def test_a_truncated_history_marks_the_gap_before_its_first_new_message(
    run_module: Any,
) -> None:
    gaps = run_module(
        "roomlog.js",
        """m => {
          const msg = (id) => ({id, user: "grace", text: id, ts: 1});
          const fresh = new m.RoomLog("general");
          fresh.addHistory([msg("5"), msg("6")], true, "ada");   // nothing seen before: no gap
          const resumed = new m.RoomLog("general");
          resumed.addHistory([msg("1"), msg("2")], false, "ada");
          resumed.addHistory([msg("8"), msg("9")], true, "ada");  // 3..7 are gone
          const overlapping = new m.RoomLog("general");
          overlapping.addHistory([msg("1"), msg("2")], false, "ada");
          overlapping.addHistory([msg("2"), msg("3")], true, "ada");
          return [fresh.gapBefore, resumed.gapBefore, overlapping.gapBefore,
                  resumed.entries().map(e => e.id)];
        }""",
    )
    assert gaps == [None, "8", None, ["1", "2", "8", "9"]]
