"""The UI's pure modules, run in the browser itself (no Node, no build step, no server)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Route

from chatserver.auth import display_name

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


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("  Ada  ", "Ada"),
        ("\u202eAda\u200b\u2028", "Ada"),
        ("Jose\u0301", "Jos\u00e9"),
        ("\u200b\u200d\ufeff", ""),
        ("x" * 70, "x" * 64),
    ],
)
def test_a_display_name_is_cleaned_as_the_server_cleans_it(
    run_module: Any, typed: str, shown: str
) -> None:
    assert run_module("protocol.js", f"m => m.displayName({json.dumps(typed)})") == shown
    assert display_name(typed) == shown


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
          log.addMessage(msg("1", "grace", "hi"), {user: "ada"});
          log.addPending("r1", "first", {user: "ada"}, 2);
          log.addPending("r2", "second", {user: "ada"}, 3);
          log.addMessage(msg("2", "grace", "meanwhile"), {user: "ada"});
          log.ack("r2", "4");                                  // ack before its broadcast
          log.addMessage(msg("3", "ada", "first"), {user: "ada"});     // broadcast before its ack
          const beforeAck = log.entries().map(e => e.key);
          log.ack("r1", "3");
          log.addMessage(msg("1", "grace", "hi"), {user: "ada"});      // replayed after a reconnect
          log.addMessage(msg("4", "ada", "second"), {user: "ada"});
          log.addMessage(msg("4", "ada", "second"), {user: "ada"});
          return {beforeAck, after: log.entries().map(e => [e.key, e.id, e.text, e.status])};
        }""",
    )
    # Its broadcast waits unseen for the ack that names it: the text is never shown twice.
    assert shown["beforeAck"] == ["id:1", "id:2", "ref:r1", "ref:r2"]
    assert shown["after"] == [
        ["id:1", "1", "hi", "sent"],
        ["id:2", "2", "meanwhile", "sent"],
        ["ref:r1", "3", "first", "sent"],
        ["ref:r2", "4", "second", "sent"],
    ]


def test_a_pending_send_is_never_paired_with_a_message_by_its_text(run_module: Any) -> None:
    shown = run_module(
        "roomlog.js",
        """m => {
          const log = new m.RoomLog("general");
          log.addPending("r1", "same words", {user: "ada"}, 1);
          // Another tab of the same person says the same words first.
          log.addMessage({id: "7", user: "ada", text: "same words", ts: 1}, {user: "ada"});
          const beforeAck = log.entries().map(e => e.key);
          log.ack("r1", "8");
          log.addMessage({id: "8", user: "ada", text: "same words", ts: 2}, {user: "ada"});
          return {beforeAck, after: log.entries().map(e => [e.key, e.id])};
        }""",
    )
    assert shown == {"beforeAck": ["ref:r1"], "after": [["id:7", "7"], ["ref:r1", "8"]]}


def test_in_token_mode_ones_own_messages_are_told_by_sub_not_by_name(run_module: Any) -> None:
    # Two people may choose one display name; the token's `sub` tells them apart (issue 10).
    mine = run_module(
        "roomlog.js",
        """m => {
          const me = {user: "Ada", sub: "u-1"};
          const log = new m.RoomLog("general");
          log.addMessage({id: "1", user: "Ada", sub: "u-2", text: "another Ada", ts: 1}, me);
          log.addMessage({id: "2", user: "Ada", sub: "u-1", text: "me", ts: 2}, me);
          log.addMessage({id: "3", user: "Grace", text: "open mode", ts: 3}, {user: "Grace"});
          return [...log.entries().map(e => e.mine),
                  m.isMe({user: "Ada", sub: "u-2"}, me), m.isMe({user: "Ada"}, {user: "Ada"})];
        }""",
    )
    assert mine == [False, True, True, False, True]


def test_a_refused_send_stays_visible_until_discarded(run_module: Any) -> None:
    shown = run_module(
        "roomlog.js",
        """m => {
          const log = new m.RoomLog("general");
          log.addPending("r1", "way too long", {user: "ada"}, 1);
          log.fail("r1", "That message is too long for this chat.");
          const failed = log.entries().map(e => [e.status, e.problem]);
          log.addMessage({id: "9", user: "ada", text: "way too long", ts: 2}, {user: "ada"});
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
          // Nothing seen before: no gap.
          fresh.addHistory([msg("5"), msg("6")], true, {user: "ada"});
          const resumed = new m.RoomLog("general");
          resumed.addHistory([msg("1"), msg("2")], false, {user: "ada"});
          resumed.addHistory([msg("8"), msg("9")], true, {user: "ada"});  // 3..7 are gone
          const overlapping = new m.RoomLog("general");
          overlapping.addHistory([msg("1"), msg("2")], false, {user: "ada"});
          overlapping.addHistory([msg("2"), msg("3")], true, {user: "ada"});
          return [fresh.gapBefore, resumed.gapBefore, overlapping.gapBefore,
                  resumed.entries().map(e => e.id)];
        }""",
    )
    assert gaps == [None, "8", None, ["1", "2", "8", "9"]]


def test_older_messages_go_above_once_and_only_when_asked_for(run_module: Any) -> None:
    shown = run_module(
        "roomlog.js",
        """m => {
          const msg = (id) => ({id, user: "grace", text: "t" + id, ts: 1});
          const log = new m.RoomLog("general");
          const empty = log.olderRequest(0);
          log.addHistory([msg("5-10"), msg("5-11")], false, {user: "ada"});
          // Nobody asked: ignored.
          const unasked = log.addOlder([msg("5-9")], false, {user: "ada"});
          const asked = log.olderRequest(1000);
          const whileWaiting = log.olderRequest(2000);
          const added = log.addOlder(
            [msg("4-3"), msg("5-7"), msg("5-8"), msg("5-10"), msg("5-12")], false, {user: "ada"});
          const afterPage = log.entries().map(e => e.id);
          const next = log.olderRequest(3000);
          log.olderLost();                                     // its connection went away
          const again = log.olderRequest(3500);
          log.addOlder([msg("5-6")], true, {user: "ada"});
          return {empty, unasked, asked, whileWaiting, added, afterPage, next, again,
                  start: log.olderStart, atStart: log.olderRequest(99999),
                  last: log.entries().map(e => e.id)};
        }""",
    )
    assert shown == {
        "empty": None,
        "unasked": 0,
        "asked": "5-10",
        "whileWaiting": None,
        # Another epoch, what is shown already and what is not before the first: left out.
        "added": 2,
        "afterPage": ["5-7", "5-8", "5-10", "5-11"],
        "next": "5-7",
        "again": "5-7",
        "start": True,
        "atStart": None,
        "last": ["5-6", "5-7", "5-8", "5-10", "5-11"],
    }


def test_an_unanswered_older_request_is_asked_again_and_a_reset_forgets_the_start(
    run_module: Any,
) -> None:
    shown = run_module(
        "roomlog.js",
        """m => {
          const msg = (id) => ({id, user: "grace", text: id, ts: 1});
          const log = new m.RoomLog("general");
          log.addHistory([msg("5-1")], false, {user: "ada"});
          const first = log.olderRequest(0);
          const retried = log.olderRequest(m.OLDER_RETRY_MS);
          log.addOlder([msg("5-0")], true, {user: "ada"});
          const start = log.olderStart;
          // The room's log started again.
          log.addHistory([msg("6-0")], false, {user: "ada"}, true);
          return {first, retried, start, afterReset: log.olderStart,
                  next: log.olderRequest(2 * m.OLDER_RETRY_MS)};
        }""",
    )
    assert shown == {
        "first": "5-1",
        "retried": "5-1",
        "start": True,
        "afterReset": False,
        "next": "6-0",
    }


def test_message_ids_follow_the_order_rule_within_and_across_epochs(run_module: Any) -> None:
    ordered = run_module(
        "ids.js",
        """m => {
          const ids = ["1700000000500-3", "9007199254740993-1", "1700000000000-12", "42",
                       "1700000000500-0", "1700000000000-2", "9007199254740993-0"];
          return {
            sorted: [...ids].sort(m.compareIds),
            newer: [m.newerEpoch("1700000000500-0", "1700000000000-12"),
                    m.newerEpoch("1700000000000-12", "1700000000000-2"),
                    m.newerEpoch("1700000000000-0", "42")],
            later: [m.laterId(undefined, "5-1"), m.laterId("5-2", "5-1"), m.laterId("5-2", "6-0")],
          };
        }""",
    )
    assert ordered == {
        # A bare offset is an id from before epochs; 2**53 + 1 is compared exactly.
        "sorted": [
            "42",
            "1700000000000-2",
            "1700000000000-12",
            "1700000000500-0",
            "1700000000500-3",
            "9007199254740993-0",
            "9007199254740993-1",
        ],
        "newer": [True, False, True],
        "later": ["5-1", "5-2", "6-0"],
    }


def test_a_reset_history_replaces_the_list_and_a_new_log_never_hides_a_message(
    run_module: Any,
) -> None:
    shown = run_module(
        "roomlog.js",
        """m => {
          const msg = (id, user, text) => ({id, user, text, ts: 1, pod: "p", room: "general"});
          const log = new m.RoomLog("general");
          const seen = [msg("100-0", "bob", "hi"), msg("100-1", "ada", "hello")];
          log.addHistory(seen, false, {user: "ada"});
          log.addPending("r1", "typed while away", {user: "ada"}, 2);
          // The server restarted with no history: the join since 100-1 is answered with a reset.
          log.addHistory([msg("200-0", "bob", "anyone?")], false, {user: "ada"}, true);
          const afterReset = [log.resetAt, log.entries().map(e => [e.id, e.text])];
          log.addMessage(msg("200-1", "ada", "typed while away"), {user: "ada"});  // its broadcast
          log.ack("r1", "200-1");                                           // then its ack
          log.addMessage(msg("200-1", "ada", "typed while away"), {user: "ada"});  // replayed
          const afterAck = log.entries().map(e => [e.key, e.id, e.status]);
          // The log is replaced again while this page stays connected: same offsets, new epoch.
          log.addMessage(msg("300-0", "bob", "again"), {user: "ada"});
          // A backend that has not read 300-0 yet answers the resume with a reset of the same
          // log: nothing shown is dropped.
          log.addHistory([msg("300-0", "bob", "again")], false, {user: "ada"}, true);
          return {afterReset, afterAck, resetAt: log.resetAt,
                  last: log.entries().map(e => e.id)};
        }""",
    )
    assert shown["afterReset"] == [
        "top",
        [["200-0", "anyone?"], [None, "typed while away"]],
    ]
    assert shown["afterAck"] == [["id:200-0", "200-0", "sent"], ["ref:r1", "200-1", "sent"]]
    assert shown["resetAt"] == "300-0"
    assert shown["last"] == ["200-0", "200-1", "300-0"]


def test_the_client_resumes_a_reset_room_from_the_new_log(run_module: Any) -> None:
    result = run_client(
        run_module,
        """
        client.join("general");
        client.start();
        const sinces = [];
        const reconnect = (history, reset) => {
          const socket = sockets.at(-1);
          socket.open();
          socket.receive(welcome);
          sinces.push(socket.sent[0].since ?? null);
          socket.receive({type: "joined", room: "general", members: 1, truncated: false,
                          reset, history});
          socket.drop(1006);
          timers.runDue();
        };
        const msg = (id) => ({id, room: "general", user: "bo", text: id});
        reconnect([msg("100-7")], false);
        reconnect([], true);             // a new log with nothing in it yet
        reconnect([msg("200-0")], false);
        const socket = sockets.at(-1);
        socket.open();
        socket.receive(welcome);
        sinces.push(socket.sent[0].since);
        socket.receive({type: "joined", room: "general", members: 1, truncated: false,
                        reset: false, history: []});
        socket.receive({type: "message", ...msg("300-0")});   // replaced while connected
        socket.drop(1006);
        timers.runDue();
        sockets.at(-1).open();
        sockets.at(-1).receive(welcome);
        sinces.push(sockets.at(-1).sent[0].since);
        return sinces;
        """,
    )
    assert result == [None, "100-7", None, "200-0", "300-0"]


CLIENT_HARNESS = """
  const sockets = [];
  class FakeSocket {
    static OPEN = 1;
    constructor(url) { this.url = url; this.readyState = 1; this.sent = []; sockets.push(this); }
    send(data) { this.sent.push(JSON.parse(data)); }
    close() { this.readyState = 3; }
    open() { this.onopen?.(); }
    receive(frame) { this.onmessage({data: JSON.stringify(frame)}); }
    drop(code) { this.readyState = 3; this.onclose({code}); }
  }
  const due = new Map();
  let nextTimer = 1;
  const timers = {
    setTimeout(fn) { due.set(nextTimer, fn); return nextTimer++; },
    clearTimeout(id) { due.delete(id); },
    setInterval() { return 0; },
    clearInterval() {},
    runDue() {  // everything due so far, whatever its delay; not what they set in turn
      const now = [...due.values()];
      due.clear();
      for (const fn of now) fn();
    },
  };
  const network = {isOnline: () => true, subscribe() {}};
  const client = new m.ChatClient({
    urlFor: () => "ws://chat.test/ws", WebSocket: FakeSocket, timers, network, now: () => 0,
  });
  const events = [];
  for (const type of ["ack", "sendError", "joinRefused"]) {
    client.addEventListener(type, (e) => events.push([type, e.detail]));
  }
  const welcome = {type: "welcome", protocol: 1, session: "s", user: "ada", pod: "p",
                   users_online: 1};
"""


def run_client(run_module: Callable[[str, str], Any], script: str) -> Any:
    """Run ``script`` against a ChatClient on fake sockets and timers (``CLIENT_HARNESS``)."""
    return run_module("client.js", f"m => {{ {CLIENT_HARNESS} {script} }}")


def test_the_client_resumes_every_room_and_resends_what_is_unacked(run_module: Any) -> None:
    result = run_client(
        run_module,
        """
        client.join("general");
        client.start();
        const first = sockets[0];
        first.open();
        first.receive(welcome);
        first.receive({type: "joined", room: "general", members: 1, truncated: false,
                       history: [{id: "5", room: "general", user: "bo", text: "hi"}]});
        const acked = client.send("general", "hello");
        first.receive({type: "ack", ref: acked, id: "6"});
        const unacked = client.send("general", "later");
        first.drop(1006);
        timers.runDue();                       // the reconnect delay
        const second = sockets[1];
        second.open();
        second.receive(welcome);
        return {acked, unacked, events, first: first.sent, second: second.sent};
        """,
    )
    acked, unacked = result["acked"], result["unacked"]
    assert result["first"] == [
        {"type": "join", "room": "general", "updates": True},
        {"type": "send", "room": "general", "text": "hello", "ref": acked},
        {"type": "send", "room": "general", "text": "later", "ref": unacked},
    ]
    assert result["second"] == [
        {"type": "join", "room": "general", "since": "5", "updates": True},
        {"type": "send", "room": "general", "text": "later", "ref": unacked},
    ]
    assert result["events"] == [["ack", {"ref": acked, "room": "general", "id": "6"}]]


def test_a_refused_join_is_dropped_and_a_busy_one_asked_again_alone(run_module: Any) -> None:
    result = run_client(
        run_module,
        """
        for (const room of ["general", "secret", "busy"]) client.join(room);
        client.start();
        const first = sockets[0];
        first.open();
        first.receive(welcome);
        first.receive({type: "joined", room: "general", members: 1, history: [],
                       truncated: false});
        first.receive({type: "error", code: "forbidden", message: "no", room: "secret"});
        first.receive({type: "error", code: "unavailable", message: "later", room: "busy"});
        const sentBefore = first.sent.length;
        timers.runDue();                       // the retry delay
        const retried = first.sent.slice(sentBefore);
        first.drop(1012);
        timers.runDue();
        sockets[1].open();
        sockets[1].receive(welcome);
        return {events, retried, rejoined: sockets[1].sent.map(f => f.room)};
        """,
    )
    assert result["events"] == [
        ["joinRefused", {"room": "secret", "code": "forbidden", "message": "no"}]
    ]
    assert result["retried"] == [{"type": "join", "room": "busy", "updates": True}]
    assert result["rejoined"] == ["general", "busy"]


def test_an_expired_session_is_not_reconnected_in_a_loop(run_module: Any) -> None:
    result = run_client(
        run_module,
        """
        client.start();
        sockets[0].open();
        sockets[0].receive(welcome);
        sockets[0].drop(4001);
        timers.runDue();
        return {state: client.status.state, sockets: sockets.length};
        """,
    )
    assert result == {"state": "expired", "sockets": 1}


def test_the_client_paces_its_frames_to_the_servers_rate(run_module: Any) -> None:
    harness = CLIENT_HARNESS.replace("now: () => 0", "now: () => clock.now")
    script = """
        for (let n = 0; n < 30; n++) client.join(`room-${n}`);
        client.start();
        const socket = sockets[0];
        socket.open();
        socket.receive({...welcome, rate: {per_second: 10, burst: 20}});
        const atOnce = socket.sent.length;
        clock.now = 1000;
        timers.runDue();                       // the wait for the next token
        const afterASecond = socket.sent.length;
        clock.now = 10000;
        timers.runDue();
        return {atOnce, afterASecond, all: socket.sent.map(f => f.room)};
    """
    result = run_module("client.js", f"m => {{ const clock = {{now: 0}}; {harness} {script} }}")
    # 80 % of the server's bucket: 16 at once, then 8 a second.
    assert (result["atOnce"], result["afterASecond"]) == (16, 24)
    assert result["all"] == [f"room-{n}" for n in range(30)]


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("no address here", ["no address here"]),
        ("see https://example.com.", ["see ", {"url": "https://example.com"}, "."]),
        (
            "(a map: http://maps.example/a?b=1&c=2#x)",
            ["(a map: ", {"url": "http://maps.example/a?b=1&c=2#x"}, ")"],
        ),
        (
            "https://en.wikipedia.org/wiki/Mercury_(planet), the planet",
            [{"url": "https://en.wikipedia.org/wiki/Mercury_(planet)"}, ", the planet"],
        ),
        (
            "http://a.example http://b.example",
            [{"url": "http://a.example"}, " ", {"url": "http://b.example"}],
        ),
        (
            "javascript:alert(1) data:text/html,x ftp://f.example",
            ["javascript:alert(1) data:text/html,x ftp://f.example"],
        ),
        ('<a href="https://x.example">', ['<a href="', {"url": "https://x.example"}, '">']),
        ("https:// nothing", ["https:// nothing"]),
    ],
)
def test_only_http_addresses_in_a_message_become_links(
    run_module: Any, text: str, parts: list[Any]
) -> None:
    assert run_module("links.js", f"m => m.linkParts({json.dumps(text)})") == parts


PEOPLE = {"me": "Ada Lovelace", "names": ["Grace Hopper", "Grace", "Linus", "Zoë Ñúñez"]}
"""The reader and the names a room has seen, for the mention finder."""


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("no mention here", ["no mention here"]),
        ("@Ada Lovelace, look", [{"mention": "@Ada Lovelace", "me": True}, ", look"]),
        ("hey @ada!", ["hey ", {"mention": "@ada", "me": True}, "!"]),
        ("@ADA LOVELACE.", [{"mention": "@ADA LOVELACE", "me": True}, "."]),
        # The longest name seen wins; a name ends where a word ends.
        ("@grace hopper: hi", [{"mention": "@grace hopper", "me": False}, ": hi"]),
        ("@Grace, hi", [{"mention": "@Grace", "me": False}, ", hi"]),
        ("@Adam?", [{"mention": "@Adam", "me": False}, "?"]),
        ("ask @zoë ñúñez", ["ask ", {"mention": "@zoë ñúñez", "me": False}]),
        ("@日本語 ok", [{"mention": "@日本語", "me": False}, " ok"]),
        ("@new.person-x.", [{"mention": "@new.person-x", "me": False}, "."]),
        ("mail ada@example.com", ["mail ada@example.com"]),
        ("@ alone, and @", ["@ alone, and @"]),
        ("@@ada", ["@", {"mention": "@ada", "me": True}]),
        (
            "@Ada see https://x.example/@ada, @linus",
            [
                {"mention": "@Ada", "me": True},
                " see ",
                {"url": "https://x.example/@ada"},
                ", ",
                {"mention": "@linus", "me": False},
            ],
        ),
    ],
)
def test_mentions_are_found_by_the_longest_name_seen_and_links_keep_theirs(
    run_module: Any, text: str, parts: list[Any]
) -> None:
    found = run_module(
        "mentions.js", f"m => m.messageParts({json.dumps(text)}, {json.dumps(PEOPLE)})"
    )
    assert found == parts


def test_a_message_mentions_the_reader_only_by_their_name_or_its_first_word(
    run_module: Any,
) -> None:
    texts = ["@Ada hi", "@ada lovelace", "@Lovelace", "ada@lovelace.org", "https://x.example/@ada"]
    found = run_module(
        "mentions.js", f"m => {json.dumps(texts)}.map(t => m.mentionsMe(t, {json.dumps(PEOPLE)}))"
    )
    assert found == [True, True, False, False, False]
    anonymous = run_module("mentions.js", "m => m.mentionsMe('@ada', {me: null, names: []})")
    assert anonymous is False


@pytest.mark.parametrize(
    ("unread", "mentions", "mark"),
    [(0, 0, ""), (3, 0, "3"), (1, 1, "@"), (3, 1, "3@"), (3, 3, "3@")],
)
def test_the_unread_mark_counts_messages_and_flags_mentions(
    run_module: Any, unread: int, mentions: int, mark: str
) -> None:
    assert run_module("mentions.js", f"m => m.unreadMark({unread}, {mentions})") == mark


@pytest.mark.parametrize(
    ("names", "text"),
    [
        ([], ""),
        (["Ada"], "Ada is typing…"),
        (["Ada", "Bob"], "Ada and Bob are typing…"),
        (["Ada", "Bob", "Cy"], "3 people are typing…"),
    ],
)
def test_who_is_typing_is_said_by_name_up_to_two(
    run_module: Any, names: list[str], text: str
) -> None:
    assert run_module("typing.js", f"m => m.typingText({json.dumps(names)})") == text


def test_a_typist_is_shown_five_seconds_after_the_last_signal_or_until_their_message(
    run_module: Any,
) -> None:
    shown = run_module(
        "typing.js",
        """m => {
          const t = new m.Typists();
          t.saw({ room: "r", user: "Ada" }, 0);
          t.saw({ room: "r", user: "Bob", sub: "u2" }, 1000);
          t.saw({ room: "r", user: "Ada" }, 3000);
          const before = t.names("r", 4999);
          const expiry = t.nextExpiry("r");
          t.sent({ room: "r", user: "Bob", sub: "u2" });
          return [before, expiry, t.names("r", 5000), t.names("r", 8000), t.names("other", 0)];
        }""",
    )
    assert shown == [["Ada", "Bob"], 6000, ["Ada"], [], []]


FOLD = """
  const msg = (id, owner = "o-ada", text = "t" + id) =>
    ({type: "message", id, user: "ada", owner, text, ts: 1});
  const upd = (id, target, action, fields = {}) =>
    ({type: "update", id, target, action, user: "ada", owner: "o-ada", ts: 2, ...fields});
  const shown = (log, owner = "o-bob") => log.entries(owner).map(
    e => [e.id, e.text, e.edited ?? false, e.deleted ?? false,
          (e.reactions ?? []).map(r => [r.emoji, r.count, r.names, r.mine])]);
"""


def test_edits_deletes_and_reactions_fold_the_same_in_any_order(run_module: Any) -> None:
    result = run_module(
        "roomlog.js",
        f"""m => {{
          {FOLD}
          const updates = [
            upd("5-3", "5-1", "edit", {{text: "first edit"}}),
            upd("5-4", "5-1", "edit", {{text: "second edit"}}),
            upd("5-5", "5-2", "delete"),
            upd("5-6", "5-2", "edit", {{text: "after the delete"}}),
            upd("5-7", "5-1", "react", {{emoji: "👍", on: true}}),
            upd("5-8", "5-1", "react", {{emoji: "👍", on: true, owner: "o-bob", user: "bob"}}),
            upd("5-9", "5-1", "react", {{emoji: "🎉", on: true, owner: "o-bob", user: "bob"}}),
            upd("5-10", "5-1", "react", {{emoji: "🎉", on: false, owner: "o-bob", user: "bob"}}),
          ];
          const inOrder = new m.RoomLog("general");
          inOrder.addHistory([msg("5-1"), msg("5-2"), ...updates], false, {{user: "ada"}});
          // The window holds the newest updates only; the older page brings the messages and
          // the rest, oldest first; a live repeat changes nothing.
          const paged = new m.RoomLog("general");
          paged.addHistory([...updates.slice(3), msg("5-11")], false, {{user: "ada"}});
          paged.olderRequest(0);
          paged.addOlder([msg("5-1"), msg("5-2"), ...updates.slice(0, 3)], true, {{user: "ada"}});
          paged.addUpdate(updates[0]);
          return [shown(inOrder), shown(paged).slice(0, 2), shown(paged, "o-ada")[0]];
        }}""",
    )
    first = ["5-1", "second edit", True, False, [["👍", 2, ["ada", "bob"], True]]]
    assert result[0] == [first, ["5-2", "", False, True, []]]
    assert result[1] == result[0]
    assert result[2] == [*first[:4], [["👍", 2, ["ada", "bob"], True]]]


def test_an_edit_or_delete_by_someone_else_is_not_taken(run_module: Any) -> None:
    result = run_module(
        "roomlog.js",
        f"""m => {{
          {FOLD}
          const log = new m.RoomLog("general");
          log.addHistory([msg("5-1"), upd("5-2", "5-1", "edit", {{text: "x", owner: "o-eve"}}),
                          upd("5-3", "5-1", "delete", {{owner: "o-eve"}})], false, {{user: "ada"}});
          return shown(log);
        }}""",
    )
    assert result == [["5-1", "t5-1", False, False, []]]


def test_a_page_of_updates_alone_moves_the_next_older_request_back(run_module: Any) -> None:
    result = run_module(
        "roomlog.js",
        f"""m => {{
          {FOLD}
          const log = new m.RoomLog("general");
          log.addHistory([msg("5-20")], false, {{user: "ada"}});
          const first = log.olderRequest(0);
          log.addOlder([upd("5-17", "5-3", "react", {{emoji: "👍", on: true}}),
                        upd("5-18", "5-3", "react", {{emoji: "👍", on: false}})],
                       false, {{user: "ada"}});
          const second = log.olderRequest(1);
          log.addOlder([msg("5-3")], true, {{user: "ada"}});
          return [first, second, shown(log)];
        }}""",
    )
    assert result == [
        "5-20",
        "5-17",
        [["5-3", "t5-3", False, False, []], ["5-20", "t5-20", False, False, []]],
    ]


def test_a_reset_forgets_the_updates_of_the_old_log(run_module: Any) -> None:
    result = run_module(
        "roomlog.js",
        f"""m => {{
          {FOLD}
          const log = new m.RoomLog("general");
          log.addHistory([msg("5-1"), upd("5-2", "5-1", "delete")], false, {{user: "ada"}});
          log.addHistory([msg("6-1")], false, {{user: "ada"}}, true);
          log.addHistory([msg("5-1")], false, {{user: "ada"}}, true);  // the old log again
          return shown(log);
        }}""",
    )
    assert result == [["5-1", "t5-1", False, False, []]]


def test_a_reaction_tooltip_names_a_bounded_list(run_module: Any) -> None:
    result = run_module(
        "updates.js",
        """m => {
          const u = new m.Updates();
          for (let i = 0; i < 25; i++) {
            u.add({id: "5-" + (10 + i), target: "5-1", action: "react", emoji: "😂", on: true,
                   owner: "o" + i, user: "p" + i});
          }
          const [r] = u.apply({id: "5-1", owner: "o0", text: "t"}, "o3").reactions;
          return [r.count, r.names.length, r.mine, m.reactionTitle(r).endsWith("and 5 more")];
        }""",
    )
    assert result == [25, 20, True, True]


def test_a_direct_message_is_asked_by_sub_and_resumed_with_dm_never_join(
    run_module: Any,
) -> None:
    result = run_client(
        run_module,
        """
        client.start();
        const first = sockets[0];
        first.open();
        first.receive(welcome);
        client.joinDirect("u-grace");
        first.receive({type: "joined", room: "dm-1", with: "u-grace", members: 2,
                       truncated: false, reset: false,
                       history: [{type: "message", id: "1-4", room: "dm-1", user: "g",
                                  text: "hi"}]});
        client.rooms("bo", 0);
        first.drop(1006);
        timers.runDue();
        sockets[1].open();
        sockets[1].receive(welcome);
        client.leave("dm-1");
        return {first: first.sent, second: sockets[1].sent};
        """,
    )
    assert result["first"] == [
        {"type": "dm", "with": "u-grace", "updates": True},
        {"type": "rooms", "query": "bo", "offset": 0},
    ]
    assert result["second"] == [
        {"type": "dm", "with": "u-grace", "since": "1-4", "updates": True},
        {"type": "leave", "room": "dm-1"},
    ]


def test_a_refused_direct_message_is_not_asked_again(run_module: Any) -> None:
    result = run_client(
        run_module,
        """
        client.start();
        sockets[0].open();
        sockets[0].receive(welcome);
        client.joinDirect("u-grace");
        sockets[0].receive({type: "error", code: "forbidden", message: "token mode"});
        sockets[0].drop(1006);
        timers.runDue();
        sockets[1].open();
        sockets[1].receive(welcome);
        return sockets[1].sent;
        """,
    )
    assert result == []
