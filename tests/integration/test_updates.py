"""Edits, deletes and reactions (issue 13) through real backends on a real RabbitMQ node: seen
on every backend, refused to anyone but the author, and replayed alike after a kill -9, a
`since` resume and a fresh join."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import jwt
import pytest

from tests.fixtures.chatprocs import SpawnChat
from tests.fixtures.rabbitmq import RabbitMQNode
from tests.support.chatclient import ChatClient, Frame

pytestmark = pytest.mark.rabbitmq

FAST = {"CHAT_RATE_PER_SECOND": "1000", "CHAT_RATE_BURST": "1000"}
SECRET = "integration-secret-0123456789abcdef"
_refs = itertools.count(1)
State = dict[str, tuple[str, bool, bool, dict[str, frozenset[str]]]]


async def join(client: ChatClient, room: str, since: str | None = None) -> Frame:
    frame: Frame = {"type": "join", "room": room, "updates": True}
    if since is not None:
        frame["since"] = since
    await client.send(frame)
    return await client.expect("joined", room=room)


async def act(client: ChatClient, kind: str, room: str, target: str, **fields: Any) -> Frame:
    """An edit, delete or react; the answer to its ref (`ack` or `error`)."""
    ref = f"u-{next(_refs)}"
    await client.send({"type": kind, "room": room, "id": target, "ref": ref, **fields})
    return await client.expect_answer(ref)


def fold(frames: list[Frame]) -> State:
    """What a client shows, folded from message and update frames in log order: id -> (text,
    edited, deleted, {emoji: owners})."""
    state: State = {}
    reactions: dict[tuple[str, str], set[str]] = {}
    pending: list[Frame] = []
    for frame in sorted(frames, key=lambda f: tuple(int(p) for p in f["id"].split("-"))):
        if frame["type"] == "message":
            state[frame["id"]] = (frame["text"], False, False, {})
        else:
            pending.append(frame)
    for update in pending:
        _, edited, deleted, _ = state[update["target"]]
        if update["action"] == "edit" and not deleted:
            state[update["target"]] = (update["text"], True, deleted, {})
        elif update["action"] == "delete":
            state[update["target"]] = ("", edited, True, {})
        elif update["action"] == "react":
            owners = reactions.setdefault((update["target"], update["emoji"]), set())
            (owners.add if update["on"] else owners.discard)(update["owner"])
    for (target, emoji), owners in reactions.items():
        if owners:
            state[target][3][emoji] = frozenset(owners)
    return state


async def test_updates_reach_every_backend_and_replay_alike_after_a_kill(
    spawn_chat: SpawnChat, rabbitmq: RabbitMQNode, chat_cluster_name: str
) -> None:
    backends = [
        spawn_chat("backend", rabbitmq_url=rabbitmq.url, cluster=chat_cluster_name, env=FAST)
        for _ in range(2)
    ]
    await asyncio.gather(*(asyncio.to_thread(b.wait_ready) for b in backends))
    ada = await ChatClient.connect(backends[0].url, name="ada", client="ada-tab")
    bob = await ChatClient.connect(backends[1].url, name="bob", client="bob-tab")
    clients = [ada, bob]
    try:
        await join(ada, "lobby")
        await join(bob, "lobby")
        first = (await ada.say("lobby", "helo"))["id"]
        second = (await ada.say("lobby", "to be deleted"))["id"]
        assert (await act(ada, "edit", "lobby", first, text="hello"))["type"] == "ack"
        assert (await act(bob, "react", "lobby", first, emoji="👍", on=True))["type"] == "ack"
        assert (await act(ada, "react", "lobby", first, emoji="👍", on=True))["type"] == "ack"
        assert (await act(ada, "delete", "lobby", second))["type"] == "ack"
        for _ in range(4):
            await bob.expect("update")
        seen_by_ada = (await ada.expect("update", action="delete"))["id"]

        backends[0].kill()  # kill -9 of ada's backend
        ada_again = await ChatClient.connect(backends[1].url, name="ada", client="ada-tab")
        clients.append(ada_again)
        resumed = await join(ada_again, "lobby", since=first)
        assert [f["id"] for f in resumed["history"]][-1] == seen_by_ada
        # The same browser is the same author on another backend after the failover.
        redo = await act(ada_again, "react", "lobby", first, emoji="👍", on=False)
        assert redo["type"] == "ack"
        refused = await act(bob, "edit", "lobby", first, text="bob was here")
        assert (refused["type"], refused["code"]) == ("error", "forbidden")
        await bob.expect("update", action="react", on=False)

        third = spawn_chat(
            "backend", rabbitmq_url=rabbitmq.url, cluster=chat_cluster_name, env=FAST
        )
        await asyncio.to_thread(third.wait_ready)
        carol = await ChatClient.connect(third.url, name="carol")
        clients.append(carol)
        fresh = fold((await join(carol, "lobby"))["history"])
        live = fold(bob.messages + (await join(bob, "lobby", since=first))["history"])
        assert fresh == live
        assert fresh[first][:3] == ("hello", True, False)
        assert fresh[second][:3] == ("", False, True)
        assert fresh[first][3] == {"👍": frozenset({bob.welcome["owner"]})}
        assert "ada-tab" not in str(fresh)  # the client id itself is never broadcast
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


async def test_updates_of_others_or_of_nothing_are_refused_and_harm_no_one(
    spawn_chat: SpawnChat, rabbitmq: RabbitMQNode, chat_cluster_name: str
) -> None:
    backend = spawn_chat("backend", rabbitmq_url=rabbitmq.url, cluster=chat_cluster_name, env=FAST)
    await asyncio.to_thread(backend.wait_ready)
    ada = await ChatClient.connect(backend.url, name="ada", client="ada-tab")
    mallory = await ChatClient.connect(backend.url, name="ada", client="mallory-tab")
    try:
        await join(ada, "lobby")
        await join(mallory, "lobby")
        mine = (await ada.say("lobby", "mine"))["id"]
        epoch, offset = mine.split("-")
        other_epoch = f"{int(epoch) + 1}-{offset}"
        refusals = [
            (("edit", mine), {"text": "stolen"}, "forbidden"),
            (("delete", mine), {}, "forbidden"),
            (("edit", f"{epoch}-{int(offset) + 1000}"), {"text": "x"}, "message_not_found"),
            (("react", other_epoch), {"emoji": "👍", "on": True}, "message_not_found"),
            (("react", mine), {"emoji": "🦄", "on": True}, "bad_request"),
            (("edit", "not-an-id"), {"text": "x"}, "bad_request"),
            (("edit", mine), {"text": "x" * 5000}, "too_large"),
        ]  # fmt: skip
        for (kind, target), fields, code in refusals:
            answer = await act(mallory, kind, "lobby", target, **fields)
            assert (answer["type"], answer["code"]) == ("error", code), (kind, target, answer)
        await mallory.send({"type": "ping"})
        await mallory.expect("pong")
        assert (await act(mallory, "react", "lobby", mine, emoji="🎉", on=True))["type"] == "ack"
        history = (await join(ada, "lobby"))["history"]
        assert [f.get("action") for f in history] == [None, "react"]  # nothing else stored
    finally:
        await asyncio.gather(ada.close(), mallory.close())


def token(sub: str, name: str) -> str:
    body = {"sub": sub, "name": name, "aud": "chatcluster", "exp": time.time() + 300}
    return jwt.encode(body, SECRET, algorithm="HS256")


async def test_in_token_mode_the_sub_owns_the_message_on_every_backend(
    spawn_chat: SpawnChat, rabbitmq: RabbitMQNode, chat_cluster_name: str
) -> None:
    env = {**FAST, "CHAT_AUTH": "jwt", "CHAT_AUTH_SECRET": SECRET}
    backends = [
        spawn_chat("backend", rabbitmq_url=rabbitmq.url, cluster=chat_cluster_name, env=env)
        for _ in range(2)
    ]
    await asyncio.gather(*(asyncio.to_thread(b.wait_ready) for b in backends))
    ada = await ChatClient.connect(
        backends[0].url, client="tab", params={"token": token("u-ada", "Ada")}
    )
    # Another person who chose the same name and the same client id: the sub decides.
    eve = await ChatClient.connect(
        backends[1].url, client="tab", params={"token": token("u-eve", "Ada")}
    )
    ada_phone = await ChatClient.connect(
        backends[1].url, client="phone", params={"token": token("u-ada", "Ada")}
    )
    clients = [ada, eve, ada_phone]
    try:
        for client in clients:
            await join(client, "lobby")
        mine = (await ada.say("lobby", "mine"))["id"]
        await eve.wait_messages(1)
        refused = await act(eve, "edit", "lobby", mine, text="stolen")
        assert (refused["type"], refused["code"]) == ("error", "forbidden")
        assert (await act(ada_phone, "edit", "lobby", mine, text="edited"))["type"] == "ack"
        edit = await ada.expect("update", action="edit")
        assert (edit["sub"], edit["owner"]) == ("u-ada", ada.welcome["owner"])
    finally:
        await asyncio.gather(*(c.close() for c in clients))
