"""Stable import path for the demo upstream; the implementation lives in `guardproxy.demo`."""

from guardproxy.demo import DemoRecorder, RecordedRequest, create_demo_upstream

__all__ = ["DemoRecorder", "RecordedRequest", "create_demo_upstream"]
