import pytest

from chatserver.broker.rabbitmq import RabbitMQSettings


@pytest.mark.parametrize("ack_every", [0, 201])
def test_acks_are_held_back_for_at_least_one_delivery_and_at_most_the_prefetch(
    ack_every: int,
) -> None:
    with pytest.raises(ValueError, match="ack_every"):
        RabbitMQSettings(prefetch=200, ack_every=ack_every)
    assert RabbitMQSettings(prefetch=200, ack_every=200).ack_every == 200
