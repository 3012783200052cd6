"""guardproxy/abandonment.py: a scan learns that nobody waits for it, and only its own thread does."""

from __future__ import annotations

import threading

import pytest

from guardproxy.guards.abandonment import ScanAbandoned, abandonable, raise_if_abandoned


def test_outside_a_scan_the_check_does_nothing() -> None:
    raise_if_abandoned()


def test_the_check_raises_once_the_scan_is_abandoned_and_nests() -> None:
    outer, inner = threading.Event(), threading.Event()
    with abandonable(outer):
        raise_if_abandoned()
        inner.set()
        with abandonable(inner), pytest.raises(ScanAbandoned):
            raise_if_abandoned()
        raise_if_abandoned()  # back under the outer scan, which nobody abandoned
        outer.set()
        with pytest.raises(ScanAbandoned):
            raise_if_abandoned()
    raise_if_abandoned()  # and outside again


def test_an_abandoned_scan_in_one_thread_does_not_stop_another() -> None:
    abandoned = threading.Event()
    abandoned.set()
    seen: list[str] = []

    def other() -> None:
        with abandonable(threading.Event()):
            raise_if_abandoned()
            seen.append("ran")

    with abandonable(abandoned):
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        with pytest.raises(ScanAbandoned):
            raise_if_abandoned()
    assert seen == ["ran"]
