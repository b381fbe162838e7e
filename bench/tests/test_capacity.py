import pytest

from bench import capacity
from bench.capacity import Broker, JoinLatencies, Step

MIB = 1024 * 1024


def step(rooms: int, *, descriptors: int, one_reader: int, memory: int) -> Step:
    def broker(fds: int, mem: int) -> Broker:
        return Broker(fds, 20_000, mem, mem + MIB, rooms * 20 * 1024)

    return Step(
        rooms=rooms,
        grow_seconds=1.0,
        broker_one_reader=broker(one_reader, memory - 10 * MIB),
        broker=broker(descriptors, memory),
        backend_rss_bytes=(50 * MIB + rooms * 5 * 1024, 52 * MIB + rooms * 5 * 1024),
        joins=JoinLatencies((2.0, 4.0), (1.0, 3.0), (0.5, 0.7)),
    )


def test_a_room_costs_the_difference_between_two_sizes_per_room_added() -> None:
    small = step(1_000, descriptors=5_100, one_reader=2_800, memory=400 * MIB)
    large = step(3_000, descriptors=15_100, one_reader=10_500, memory=900 * MIB)

    (cost,) = capacity.per_room([small, large])

    assert (cost.from_rooms, cost.to_rooms) == (1_000, 3_000)
    assert cost.broker_descriptors == pytest.approx(5.0)
    # Two more backends joined the 2 000 new rooms after the one-reader snapshot: 4 000 readers.
    assert cost.descriptors_per_reader == pytest.approx(4_600 / 4_000)
    assert cost.broker_memory_bytes == pytest.approx(500 * MIB / 2_000)
    assert cost.memory_per_reader_bytes == pytest.approx(10 * MIB / 4_000)
    assert cost.broker_disk_bytes == pytest.approx(20 * 1024)
    assert cost.backend_rss_bytes == pytest.approx(5 * 1024)


def test_a_size_is_grown_to_only_while_the_descriptors_it_needs_leave_headroom() -> None:
    measured = step(1_000, descriptors=5_000, one_reader=2_800, memory=400 * MIB)
    limit = measured.broker

    assert capacity.fits(3_600, limit, measured)  # 18 000 of 20 000: within 90 %
    assert not capacity.fits(3_700, limit, measured)
    # Before any size was measured, the first guess decides.
    assert capacity.fits(2_500, limit, None)
    assert not capacity.fits(2_600, limit, None)


def test_percentiles_are_nearest_rank() -> None:
    sample = [float(n) for n in range(1, 101)]
    assert capacity.percentile(sample, 0.5) == 50.0
    assert capacity.percentile(sample, 0.99) == 99.0
    assert capacity.percentile([7.0], 0.99) == 7.0


def test_the_table_has_a_row_per_size_and_a_cost_line_per_pair() -> None:
    steps = [
        step(1_000, descriptors=5_100, one_reader=2_800, memory=400 * MIB),
        step(3_000, descriptors=15_100, one_reader=10_500, memory=900 * MIB),
    ]
    lines = capacity.table(steps).splitlines()

    assert [line.split()[0] for line in lines[2:4]] == ["1000", "3000"]
    assert "5.00 descriptors" in lines[-1]
    assert "256.0 KiB broker memory" in lines[-1]
