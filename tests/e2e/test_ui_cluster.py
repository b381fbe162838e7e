"""The chat UI across a cluster: two backends sharing one RabbitMQ, each behind its own frontend.

Frontend A tries backend A first and frontend B tries backend B first (BACKEND_URL "A,B" and
"B,A"), so two pages land on two different backends, and a page whose backend dies fails over
to the other one through the same frontend.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from playwright.sync_api import WebSocketRoute, expect

from tests.e2e.conftest import ChatPage, OpenChat
from tests.fixtures.chatprocs import ChatProcess, SpawnChat
from tests.fixtures.rabbitmq import RabbitMQNode

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.rabbitmq]


@dataclass(frozen=True)
class Cluster:
    backend_a: ChatProcess
    backend_b: ChatProcess
    frontend_a_url: str
    frontend_b_url: str


def start_cluster(
    spawn_chat: SpawnChat, rabbitmq: RabbitMQNode, name: str, *, env: dict[str, str] | None = None
) -> Cluster:
    """Two backends (with `env`) and their two frontends, ready."""
    backend_a, backend_b = (
        spawn_chat("backend", rabbitmq_url=rabbitmq.url, cluster=name, pod=pod, env=env)
        for pod in ("backend-a", "backend-b")
    )
    frontend_a = spawn_chat("frontend", backend_urls=[backend_a.url, backend_b.url])
    frontend_b = spawn_chat("frontend", backend_urls=[backend_b.url, backend_a.url])
    for process in (backend_a, backend_b, frontend_a, frontend_b):
        process.wait_ready()
    return Cluster(backend_a, backend_b, frontend_a.url, frontend_b.url)


@pytest.fixture
def cluster(spawn_chat: SpawnChat, rabbitmq: RabbitMQNode, chat_cluster_name: str) -> Cluster:
    return start_cluster(spawn_chat, rabbitmq, chat_cluster_name)


def ada_and_grace(open_chat: OpenChat, cluster: Cluster) -> tuple[ChatPage, ChatPage]:
    """Ada signed in on backend A, Grace on backend B."""
    ada = open_chat(cluster.frontend_a_url)
    ada.sign_in("Ada")
    grace = open_chat(cluster.frontend_b_url)
    grace.sign_in("Grace")
    expect(ada.pod).to_have_text("backend-a")
    expect(grace.pod).to_have_text("backend-b")
    return ada, grace


def test_pages_on_two_backends_chat_with_each_other(open_chat: OpenChat, cluster: Cluster) -> None:
    ada, grace = ada_and_grace(open_chat, cluster)
    for page in (ada, grace):
        expect(page.users_online).to_have_text("2 people online")
        expect(page.room_members).to_have_text("2 members")

    ada.send("from backend a")
    grace.send("from backend b")
    for page in (ada, grace):
        page.expect_delivered("from backend a")
        page.expect_delivered("from backend b")


def hold_reconnects(page_route: Callable[..., None]) -> Callable[[bool], None]:
    """Relay the page's WebSockets untouched; `hold(True)` refuses new ones until released.

    Holding keeps a page away for as long as the test needs, so what happens "meanwhile" really
    happens while the page is disconnected, whatever the reconnect delays drawn.
    """
    held = [False]

    def relay(page_side: WebSocketRoute) -> None:
        if held[0]:
            page_side.close()
        else:
            page_side.connect_to_server()

    page_route(re.compile(r"/ws\b"), relay)
    return lambda on: held.__setitem__(0, on)


def test_a_page_whose_backend_dies_resumes_on_the_other_without_loss_or_duplicates(
    open_chat: OpenChat, cluster: Cluster
) -> None:
    grace = open_chat(cluster.frontend_b_url)
    grace.sign_in("Grace")
    ada = open_chat(cluster.frontend_a_url)
    hold = hold_reconnects(ada.page.route_web_socket)
    ada.page.reload()
    ada.sign_in("Ada")
    expect(ada.pod).to_have_text("backend-a")
    grace.send("before the crash")
    ada.expect_delivered("before the crash")

    hold(True)
    cluster.backend_a.kill()
    expect(ada.connection).to_contain_text(re.compile(r"Reconnecting( in \d+s)?"))
    meanwhile = [f"while Ada is away {n}" for n in range(3)]
    for text in meanwhile:
        grace.send(text)
        grace.expect_delivered(text)
    ada.send("typed while disconnected")
    expect(ada.message("typed while disconnected")).to_contain_text("Waiting for the connection")

    hold(False)
    # Refused attempts grew the backoff: the next one may be up to its 15 s cap away.
    expect(ada.connection).to_have_attribute("data-state", "live", timeout=30_000)
    expect(ada.pod).to_have_text("backend-b")
    for text in ["before the crash", *meanwhile, "typed while disconnected"]:
        ada.expect_delivered(text)
        grace.expect_delivered(text)
    expect(ada.users_online).to_have_text("2 people online")


def test_a_draining_backend_sends_its_pages_elsewhere_at_once(
    open_chat: OpenChat, cluster: Cluster
) -> None:
    ada = open_chat(cluster.frontend_a_url)
    ada.sign_in("Ada")
    grace = open_chat(cluster.frontend_b_url)
    grace.sign_in("Grace")
    expect(ada.pod).to_have_text("backend-a")

    ada.watch_connection()
    cluster.backend_a.terminate()
    ada.expect_reconnected()
    expect(ada.pod).to_have_text("backend-b")
    assert not ada.counted_down(), "the page waited a backoff delay instead of leaving at once"
    grace.send("after the drain")
    ada.expect_delivered("after the drain")


def test_a_message_sent_while_the_broker_is_away_waits_and_is_delivered_once(
    open_chat: OpenChat,
    spawn_chat: SpawnChat,
    rabbitmq_restartable: RabbitMQNode,
    chat_cluster_name: str,
) -> None:
    broker_url = rabbitmq_restartable.url
    backend = spawn_chat("backend", rabbitmq_url=broker_url, cluster=chat_cluster_name)
    frontend = spawn_chat("frontend", backend_urls=[backend.url])
    backend.wait_ready()
    frontend.wait_ready()
    page = open_chat(frontend.url)
    page.sign_in("Ada")

    rabbitmq_restartable.stop()
    backend.wait_readyz(503)
    page.send("sent while the broker restarts")
    waiting = page.message("sent while the broker restarts")
    expect(waiting).to_contain_text(re.compile("briefly unavailable|Rejoining #general"))
    expect(waiting).to_have_class(re.compile(r"\bpending\b"))

    rabbitmq_restartable.start()
    page.expect_delivered("sent while the broker restarts")
    page.page.reload()
    page.expect_live()
    page.expect_delivered("sent while the broker restarts")


def test_the_members_panel_lists_people_on_both_backends_live_and_across_a_reconnect(
    open_chat: OpenChat, cluster: Cluster
) -> None:
    ada, grace = ada_and_grace(open_chat, cluster)

    ada.show_members()
    expect(ada.member_names).to_have_text(["Ada", "Grace"])
    expect(ada.page.locator("#member-list .member-you")).to_have_count(1)
    linus = open_chat(cluster.frontend_b_url)
    linus.sign_in("Linus")
    expect(ada.member_names).to_have_text(["Ada", "Grace", "Linus"])
    expect(ada.room_members).to_have_text("3 members")

    grace.page.context.set_offline(True)
    expect(ada.member_names).to_have_text(["Ada", "Linus"])
    expect(ada.room_members).to_have_text("2 members")
    grace.page.context.set_offline(False)
    grace.expect_live()
    expect(ada.member_names).to_have_text(["Ada", "Grace", "Linus"])

    # The keyboard alone opens and closes it.
    grace.room_members.focus()
    grace.page.keyboard.press("Enter")
    expect(grace.member_names).to_have_text(["Ada", "Grace", "Linus"])
    grace.page.keyboard.press("Escape")
    expect(grace.page.locator("#members-panel")).to_be_hidden()
    expect(grace.room_members).to_be_focused()
    expect(grace.room_members).to_have_attribute("aria-expanded", "false")


def test_typing_on_one_backend_is_shown_on_the_other_until_sent_or_stopped(
    open_chat: OpenChat, cluster: Cluster
) -> None:
    ada, grace = ada_and_grace(open_chat, cluster)
    linus = open_chat(cluster.frontend_b_url)
    linus.sign_in("Linus")
    expect(grace.room_members).to_have_text("3 members")

    ada.composer.press_sequentially("Hello")
    expect(grace.typing).to_have_text("Ada is typing…")
    linus.composer.press_sequentially("Hi")
    expect(grace.typing).to_have_text("Ada and Linus are typing…")
    expect(ada.typing).to_have_text("Linus is typing…")  # never oneself
    ada.composer.press("Enter")
    grace.expect_delivered("Hello")
    # Gone with the message, well before the 5 s it would otherwise be shown.
    expect(grace.typing).to_have_text("Linus is typing…", timeout=3_000)
    expect(grace.typing).to_have_text("", timeout=10_000)  # Linus stopped: it expires

    # A reconnect in the middle: the typist's page and the reader's both come back and go on.
    for page in (ada, grace):
        page.page.context.set_offline(True)
        expect(page.connection).to_have_attribute("data-state", "offline")
        page.page.context.set_offline(False)
        page.expect_live()
    expect(grace.room_members).to_have_text("3 members")
    ada.composer.press_sequentially("Hello again")
    expect(grace.typing).to_have_text("Ada is typing…")
    ada.composer.press("Enter")
    expect(grace.typing).to_have_text("", timeout=3_000)
    grace.expect_delivered("Hello again")
