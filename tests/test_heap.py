"""Process memory settings: glibc's allocator and the frozen start-up heap."""

from __future__ import annotations

import gc
import platform

import pytest

from guardproxy.heap import settle_heap, tune_allocator


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_allocator_options_take_on_glibc() -> None:
    assert tune_allocator() is True


def test_settled_objects_are_out_of_the_collectors_sight() -> None:
    loaded = [{"model": i} for i in range(1000)]  # stands for what guards load at start-up
    try:
        settle_heap()
        assert gc.get_freeze_count() >= len(loaded)
        assert not any(obj is loaded for obj in gc.get_objects())
    finally:
        gc.unfreeze()
