"""A built-in fake OpenAI-compatible LLM server: the `guardproxy demo` upstream and the test fake.

It speaks the real wire format (JSON bodies, SSE streams, usage, tool calls,
OpenAI error bodies) and is steered by `x-demo-*` request headers:

- `x-demo-reply` / `x-demo-reply-b64`: the exact reply text (latin-1 / base64 UTF-8).
- `x-demo-status`: answer with that error status and an OpenAI error body.
- `x-demo-delay-ms`: wait before answering; `x-demo-chunk-delay-ms`: wait between stream chunks.
- `x-demo-require-key`: insist on `Authorization: Bearer <key>`, else 401.

`app.state.recorder` records every request and how each stream ended.
"""

from guardproxy.demo.app import create_demo_upstream
from guardproxy.demo.recorder import DemoRecorder, RecordedRequest

__all__ = ["DemoRecorder", "RecordedRequest", "create_demo_upstream"]
