"""ReusedThreads: every call on a thread of its own, finished threads reused."""

from __future__ import annotations

import threading
import time

import pytest

from notifier.delivery.threadreuse import ReusedThreads


def test_a_finished_thread_takes_the_next_call() -> None:
    pool = ReusedThreads("t")
    seen: list[int] = []
    for _ in range(50):
        assert pool.start(lambda: seen.append(threading.get_ident())).wait(5)
        deadline = time.monotonic() + 5
        while pool.idle() == 0 and time.monotonic() < deadline:
            time.sleep(0.001)
    assert len(set(seen)) == 1


def test_a_hung_call_does_not_hold_up_the_next() -> None:
    pool = ReusedThreads("t")
    release = threading.Event()
    hung = pool.start(lambda: release.wait(10))
    try:
        names: list[str] = []
        assert pool.start(lambda: names.append(threading.current_thread().name)).wait(2)
        assert not hung.is_set()
        assert names == ["t"]
    finally:
        release.set()
    assert hung.wait(5)


def test_calls_at_once_each_get_a_thread() -> None:
    pool = ReusedThreads("t")
    barrier = threading.Barrier(6, timeout=5)
    done = [pool.start(barrier.wait) for _ in range(5)]
    barrier.wait()  # only if all five run at the same time
    assert all(d.wait(5) for d in done)


def test_idle_threads_end() -> None:
    pool = ReusedThreads("t-idle", idle_for=0.05)
    threads: list[threading.Thread] = []
    assert pool.start(lambda: threads.append(threading.current_thread())).wait(5)
    threads[0].join(5)
    assert not threads[0].is_alive()
    assert pool.idle() == 0
    ran: list[bool] = []
    assert pool.start(lambda: ran.append(True)).wait(5)
    assert ran == [True]


def test_a_call_that_raises_is_done_and_the_pool_goes_on() -> None:
    pool = ReusedThreads("t")
    caught: list[type[BaseException]] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: caught.append(args.exc_type)
    try:
        def boom() -> None:
            raise RuntimeError("boom")

        assert pool.start(boom).wait(5)
        ran: list[bool] = []
        assert pool.start(lambda: ran.append(True)).wait(5)
        assert ran == [True]
    finally:
        threading.excepthook = previous
    assert caught == [RuntimeError]


def test_idle_for_must_be_positive() -> None:
    with pytest.raises(ValueError, match="idle_for"):
        ReusedThreads("t", idle_for=0)
