"""fogfed._lanes: kept worker threads, lent to one operation at a time, never across a fork."""

from __future__ import annotations

import os
import threading
import time

import pytest

from fogfed._lanes import MAX_IDLE, Lane


def _ident() -> int:
    return threading.get_ident()


def test_a_released_lane_is_lent_again_and_runs_jobs_in_order() -> None:
    lane = Lane()
    order: list[int] = []
    for i in range(50):
        lane.submit(order.append, i)
    first = lane.submit(_ident).result()
    lane.release()
    assert order == list(range(50))
    again = Lane()
    assert again.submit(_ident).result() == first  # the same thread: no new thread started
    again.release()


def test_two_lanes_at_once_are_two_threads() -> None:
    a, b = Lane(), Lane()
    assert a.submit(_ident).result() != b.submit(_ident).result()
    a.release()
    b.release()


def test_release_waits_for_running_jobs_and_cancel_drops_queued_ones() -> None:
    lane = Lane()
    done: list[str] = []
    gate = threading.Event()
    lane.submit(lambda: (gate.wait(5), done.append("running")))
    queued = lane.submit(done.append, "queued")
    threading.Timer(0.1, gate.set).start()
    lane.release(cancel=True)
    assert done == ["running"] and queued.cancelled()


def test_a_failed_job_does_not_spoil_the_lane() -> None:
    lane = Lane()
    assert isinstance(lane.submit(lambda: 1 / 0).exception(), ZeroDivisionError)
    lane.release()
    lane = Lane()
    assert lane.submit(lambda: 42).result() == 42
    lane.release()


def test_at_most_max_idle_lanes_are_kept() -> None:
    lanes = [Lane() for _ in range(MAX_IDLE + 3)]
    for lane in lanes:
        lane.submit(time.sleep, 0)
    for lane in lanes:
        lane.release()
    from fogfed import _lanes

    assert len(_lanes._idle) <= MAX_IDLE


def test_a_forked_child_starts_its_own_lanes() -> None:
    lane = Lane()
    lane.submit(_ident).result()
    lane.release()  # now idle in the parent: its thread does not exist in a child
    pid = os.fork()
    if pid == 0:  # child: a lent lane must run jobs (a parent's would hang forever)
        try:
            child = Lane()
            ok = child.submit(lambda: 7).result(timeout=10) == 7
            child.release()
            os._exit(0 if ok else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_second_release_gives_nothing_back_twice() -> None:
    from fogfed import _lanes

    _lanes._idle.clear()
    lane = Lane()
    lane.submit(_ident).result()
    lane.release()
    lane.release()  # e.g. a pack's sync and then its exit
    assert len(_lanes._idle) == 1
    with pytest.raises(RuntimeError, match="released"):
        lane.submit(_ident)
