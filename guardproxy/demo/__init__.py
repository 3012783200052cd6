"""A built-in fake LLM server: the `guardproxy demo` upstream and the test fake.

It speaks the real wire formats (JSON bodies, SSE streams, usage, tool calls,
error bodies) of the OpenAI API (`/v1/chat/completions`, `/v1/completions`,
`/v1/embeddings`, `/v1/moderations`, `/v1/responses`, `/v1/models`), the
Anthropic Messages API (`/v1/messages`, `/v1/messages/count_tokens`) and Azure
OpenAI deployments (`/openai/deployments/{name}/...?api-version=...`), and is
steered by `x-demo-*` request headers on every route:

- `x-demo-reply` / `x-demo-reply-b64`: the exact reply text (latin-1 / base64 UTF-8).
  Without it, offered tools get a call (chat `tool_calls`, a Responses
  `function_call`, an Anthropic `tool_use`) unless a tool result was just sent
  or the tool choice is none; else a canned answer or an echo of the user.
- `x-demo-status`: answer with that error status in the API's error shape.
- `x-demo-delay-ms`: wait before answering; `x-demo-chunk-delay-ms`: wait between stream chunks.
- `x-demo-require-key`: insist on that key where the API carries it
  (`Authorization: Bearer`; `x-api-key` or Bearer for Anthropic; `api-key` for Azure), else 401.

`app.state.recorder` records every request and how each stream ended.
"""

from guardproxy.demo.app import create_demo_upstream
from guardproxy.demo.recorder import DemoRecorder, RecordedRequest

__all__ = ["DemoRecorder", "RecordedRequest", "create_demo_upstream"]
