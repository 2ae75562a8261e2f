from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_bidi.io._buffers import FrameRing


def frames_of(values: list[int], channels: int = 1) -> np.ndarray:
    return np.array(values, dtype=np.int16).reshape(-1, channels)


ops = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.integers(0, 40)),
        st.tuples(st.just("read"), st.integers(0, 40)),
        st.tuples(st.just("clear"), st.just(0)),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.integers(1, 32),
    overflow=st.sampled_from(["drop_oldest", "drop_newest"]),
    operations=ops,
)
def test_ring_matches_a_list_model(
    capacity: int, overflow: str, operations: list[tuple[str, int]]
) -> None:
    ring = FrameRing(capacity, channels=2, overflow=overflow)  # type: ignore[arg-type]
    model: list[int] = []
    counter = 0
    dropped = 0
    for op, n in operations:
        if op == "write":
            values = list(range(counter, counter + n))
            counter += n
            chunk = np.repeat(frames_of(values), 2, axis=1)
            lost = ring.write(chunk)
            model.extend(values)
            excess = max(0, len(model) - capacity)
            if overflow == "drop_oldest":
                del model[:excess]
            else:
                del model[len(model) - excess :]
            assert lost == excess
            dropped += excess
        elif op == "read":
            out = np.full((n, 2), 7, dtype=np.int16)
            got = ring.read_into(out)
            expected = model[:n]
            del model[:n]
            assert got == len(expected)
            # Ordering: the oldest frames first, both channels; padding is silence.
            assert out[:got, 0].tolist() == [np.int16(v) for v in expected]
            assert (out[:, 0] == out[:, 1]).all()
            assert (out[got:] == 0).all()
        else:
            assert ring.clear() == len(model)
            model.clear()
        stats = ring.statistics()
        assert stats.buffered == len(model) == len(ring)
        assert stats.dropped == dropped
        assert stats.written == stats.read + stats.dropped + stats.cleared + stats.buffered


def test_read_returns_at_most_what_is_buffered() -> None:
    ring = FrameRing(8, channels=1)
    ring.write(frames_of([1, 2, 3]))
    assert ring.read(2).ravel().tolist() == [1, 2]
    assert ring.read().ravel().tolist() == [3]
    assert ring.read().shape == (0, 1)


def test_write_of_more_than_capacity_keeps_the_newest() -> None:
    ring = FrameRing(4, channels=1)
    ring.write(frames_of([1]))
    assert ring.write(frames_of([2, 3, 4, 5, 6, 7])) == 3
    assert ring.read().ravel().tolist() == [4, 5, 6, 7]


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="capacity"):
        FrameRing(0, channels=1)
    with pytest.raises(ValueError, match="channels"):
        FrameRing(4, channels=0)
    with pytest.raises(ValueError, match="overflow"):
        FrameRing(4, channels=1, overflow="wrap")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\(frames, 2\)"):
        FrameRing(4, channels=2).write(frames_of([1, 2]))


def test_concurrent_writer_and_reader_keep_order_and_count() -> None:
    ring = FrameRing(64, channels=1, overflow="drop_oldest")
    total = 20_000
    seen: list[int] = []
    done = threading.Event()

    def writer() -> None:
        for start in range(0, total, 10):
            ring.write(frames_of([v % 30000 for v in range(start, start + 10)]))
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    buf = np.empty((16, 1), dtype=np.int16)
    while not done.is_set() or len(ring):
        got = ring.read_into(buf)
        seen.extend(buf[:got, 0].tolist())
    thread.join()
    stats = ring.statistics()
    assert stats.written == total
    assert len(seen) + stats.dropped == total
    # What was read is in order (drops only remove, never reorder).
    unwrapped = np.array(seen)
    steps = np.diff(unwrapped)
    assert ((steps > 0) | (steps < -20000)).all()
