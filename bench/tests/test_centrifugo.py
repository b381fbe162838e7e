from pathlib import Path

from bench.peers.centrifugo import HISTORY_SIZE, config
from bench.redisnode import command


def test_memory_engine_node_listens_on_loopback_and_lets_anonymous_clients_chat() -> None:
    settings = config(port=21000, redis_url=None, redis_prefix="run1")
    assert settings["http_server"] == {"address": "127.0.0.1", "port": 21000}
    assert settings["engine"] == {"type": "memory"}
    assert settings["client"]["allow_anonymous_connect_without_token"] is True
    channels = settings["channel"]["without_namespace"]
    for grant in ("subscribe_for_client", "subscribe_for_anonymous"):
        assert channels[f"allow_{grant}"] is True
    for grant in ("publish_for_subscriber", "publish_for_anonymous"):
        assert channels[f"allow_{grant}"] is True
    assert "allow_publish_for_client" not in channels  # only members publish, as in chatserver
    assert channels["history_size"] == HISTORY_SIZE
    assert channels["force_recovery"] is True
    assert settings["health"] == {"enabled": True}


def test_redis_engine_nodes_of_a_run_share_its_redis_and_prefix() -> None:
    settings = config(port=21001, redis_url="redis://127.0.0.1:22000", redis_prefix="run1")
    assert settings["engine"] == {
        "type": "redis",
        "redis": {"address": ["redis://127.0.0.1:22000"], "prefix": "run1"},
    }


def test_private_redis_binds_loopback_persists_nothing_and_stays_in_the_foreground() -> None:
    argv = command(port=22000, workdir=Path("/tmp/r"))
    options = dict(zip(argv[1::2], argv[2::2], strict=True))
    assert argv[0] == "redis-server"
    assert options == {
        "--bind": "127.0.0.1",
        "--port": "22000",
        "--dir": "/tmp/r",
        "--logfile": "/tmp/r/redis.log",
        "--save": "",
        "--appendonly": "no",
        "--daemonize": "no",
    }
