"""Edits, deletes and reactions (issue 13) through hubs on sibling in-memory brokers: who may
make them, who hears them, and that windows, `since` replays and `older` pages carry them."""

from __future__ import annotations

import pytest

from chatserver import closecodes, contract
from chatserver.access import Identity
from chatserver.hub import Hub
from chatserver.ids import MessageId, parse_id
from chatserver.interchange import Change
from chatserver.owners import owner_of
from chatserver.protocol import Older, ProtocolError, Update
from tests.unit.test_hub import HubFactory, RecordingMember, attached, make_hub, say

__all__ = ["make_hub"]  # the fixture, shared with test_hub

THUMBS = contract.REACTIONS[0]


def target(message_id: str) -> MessageId:
    parsed = parse_id(message_id)
    assert parsed is not None
    return parsed


async def update(
    hub: Hub, member: RecordingMember, ref: str, change: Change, text: str = ""
) -> str:
    await hub.update(member, Update(room="lobby", ref=ref, change=change, text=text))
    ack = member.of_type("ack")[-1]
    assert ack["ref"] == ref
    return str(ack["id"])


async def refused(hub: Hub, member: RecordingMember, change: Change) -> str:
    with pytest.raises(ProtocolError) as caught:
        await hub.update(member, Update(room="lobby", ref="no", change=change, text="x"))
    assert caught.value.ref == "no"
    return caught.value.code


async def watcher(hub: Hub, name: str = "bob") -> RecordingMember:
    member = RecordingMember(name)
    hub.attach(member)
    await hub.join(member, "lobby", since=None, updates=True)
    return member


async def test_an_edit_on_one_backend_reaches_the_other_as_an_update(
    make_hub: HubFactory,
) -> None:
    a, b = await make_hub("a"), await make_hub("b")
    ada = await attached(a, "ada", "lobby")
    bob = await watcher(b)
    original = await say(a, ada, "lobby", "helo", "m1")
    edit_id = await update(a, ada, "e1", Change(target(original), "edit"), "hello")
    await bob.until(lambda: len(bob.of_type("update")) == 1)
    (frame,) = bob.of_type("update")
    assert frame["id"] == edit_id
    assert (frame["target"], frame["action"], frame["text"]) == (original, "edit", "hello")
    assert frame["owner"] == bob.of_type("message")[0]["owner"] == owner_of(sub=None, client="ada")


async def test_only_the_author_may_edit_or_delete_in_open_mode(make_hub: HubFactory) -> None:
    hub = await make_hub("a")
    ada = await attached(hub, "ada", "lobby", client="ada-tab")
    # Same display name, another browser: another owner.
    impostor = await attached(hub, "ada", "lobby", client="other-tab")
    original = target(await say(hub, ada, "lobby", "mine", "m1"))
    assert await refused(hub, impostor, Change(original, "edit")) == closecodes.FORBIDDEN
    assert await refused(hub, impostor, Change(original, "delete")) == closecodes.FORBIDDEN
    await update(hub, ada, "d1", Change(original, "delete"))
    assert len(hub.logs._rooms["lobby"].window or ()) == 2  # the message and one delete


async def test_only_the_tokens_sub_may_edit_in_token_mode(make_hub: HubFactory) -> None:
    hub = await make_hub("a")
    ada = await attached(hub, "x", "lobby")
    ada.identity = Identity(user="u-ada", name="Ada", client="tab", verified=True)
    eve = await attached(hub, "y", "lobby")
    # The same client id, another sub: the sub decides.
    eve.identity = Identity(user="u-eve", name="Ada", client="tab", verified=True)
    original = target(await say(hub, ada, "lobby", "mine", "m1"))
    assert await refused(hub, eve, Change(original, "edit")) == closecodes.FORBIDDEN
    # Another tab of the same sub is the same owner.
    ada.identity = Identity(user="u-ada", name="Ada", client="tab2", verified=True)
    await update(hub, ada, "e1", Change(original, "edit"), "again")


async def test_anyone_in_the_room_may_react(make_hub: HubFactory) -> None:
    hub = await make_hub("a")
    ada = await attached(hub, "ada", "lobby")
    bob = await watcher(hub)
    original = target(await say(hub, ada, "lobby", "hi", "m1"))
    await update(hub, bob, "r1", Change(original, "react", THUMBS, on=True))
    await bob.until(lambda: len(bob.of_type("update")) == 1)
    assert bob.of_type("update")[0]["emoji"] == THUMBS


async def test_updates_of_what_is_not_a_message_are_refused(make_hub: HubFactory) -> None:
    hub = await make_hub("a")
    ada = await attached(hub, "ada", "lobby")
    original = target(await say(hub, ada, "lobby", "hi", "m1"))
    edit = target(await update(hub, ada, "e1", Change(original, "edit"), "hey"))
    unknown = MessageId(original.epoch, original.offset + 100)
    other_epoch = MessageId(original.epoch + 1, original.offset)
    for missing in (unknown, other_epoch, edit):
        code = await refused(hub, ada, Change(missing, "react", THUMBS, on=True))
        assert code == closecodes.MESSAGE_NOT_FOUND


async def test_a_message_beyond_the_window_is_found_in_the_log(make_hub: HubFactory) -> None:
    hub = await make_hub("a", history_size=2)
    ada = await attached(hub, "ada", "lobby")
    eve = await attached(hub, "eve", "lobby")
    first = target(await say(hub, ada, "lobby", "old", "m1"))
    for n in range(3):
        await say(hub, ada, "lobby", f"newer {n}", f"n{n}")
    assert await refused(hub, eve, Change(first, "edit")) == closecodes.FORBIDDEN
    await update(hub, ada, "e1", Change(first, "edit"), "old, edited")


async def test_a_client_that_did_not_ask_for_updates_never_gets_one(make_hub: HubFactory) -> None:
    a, b = await make_hub("a"), await make_hub("b")
    ada = await attached(a, "ada", "lobby")
    old_client = await attached(b, "old", "lobby")  # joined without `updates`
    bob = await watcher(b)
    original = target(await say(a, ada, "lobby", "hi", "m1"))
    await update(a, ada, "e1", Change(original, "edit"), "hey")
    await say(a, ada, "lobby", "after", "m2")
    await bob.until(lambda: len(bob.texts()) == 2)
    await old_client.until(lambda: len(old_client.texts()) == 2)
    assert old_client.of_type("update") == []
    late_old = await attached(b, "late", "lobby")
    assert [m["text"] for m in late_old.of_type("joined")[0]["history"]] == ["hi", "after"]
    late_new = await watcher(b, "new")
    history = late_new.of_type("joined")[0]["history"]
    assert [frame["type"] for frame in history] == ["message", "update", "message"]


async def test_since_and_older_replay_the_updates_in_log_order(make_hub: HubFactory) -> None:
    hub = await make_hub("a", history_size=3)
    ada = await attached(hub, "ada", "lobby")
    original = await say(hub, ada, "lobby", "one", "m1")
    await say(hub, ada, "lobby", "two", "m2")
    edit = await update(hub, ada, "e1", Change(target(original), "edit"), "uno")
    delete = await update(hub, ada, "d1", Change(target(original), "delete"))
    # A resume after the original: the updates of an earlier message still come.
    resumed = RecordingMember("bob")
    hub.attach(resumed)
    await hub.join(resumed, "lobby", since=target(original), updates=True)
    history = resumed.of_type("joined")[0]["history"]
    assert [frame["id"] for frame in history][-2:] == [edit, delete]
    # The window (3) has lost the original; the page before it holds it.
    fresh = await watcher(hub, "carol")
    window = fresh.of_type("joined")[0]["history"]
    assert original not in [frame["id"] for frame in window]
    await hub.older(fresh, Older(room="lobby", before=target(window[0]["id"]), limit=None))
    page = fresh.of_type("older")[0]["messages"]
    assert page[-1]["id"] == original
    plain = await attached(hub, "dan", "lobby")
    await hub.older(plain, Older(room="lobby", before=target(edit), limit=None))
    assert all(frame["type"] == "message" for frame in plain.of_type("older")[0]["messages"])


async def test_a_retried_update_is_stored_once(make_hub: HubFactory) -> None:
    a, b = await make_hub("a"), await make_hub("b")
    ada = await attached(a, "ada", "lobby")
    original = target(await say(a, ada, "lobby", "hi", "m1"))
    first = await update(a, ada, "r1", Change(original, "react", THUMBS, on=True))
    ada_again = await attached(b, "ada", "lobby")  # the same client, reconnected elsewhere
    await ada_again.until(lambda: True)
    assert await update(b, ada_again, "r1", Change(original, "react", THUMBS, on=True)) == first
