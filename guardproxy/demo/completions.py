"""`POST /v1/completions`: the legacy `text_completion` API, plain and streamed.

One choice per prompt and per `n`, indexed `prompt_index * n + k` like the real
API, each echoing its own prompt unless `x-demo-reply` forces the text.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from guardproxy.demo.endpoint import DemoCall
from guardproxy.demo.envelope import CompletionEnvelope, token_usage
from guardproxy.demo.replies import count_tokens, header_reply, split_into_pieces
from guardproxy.demo.sse import sse_response

_OBJECT = "text_completion"


async def completions(call: DemoCall) -> Response:
    envelope = CompletionEnvelope.new("cmpl", call.model())
    prompts = [
        item if isinstance(item, str) else " ".join(map(str, item)) for item in call.texts_or_token_lists("prompt")
    ]
    choice_count = call.choice_count()
    forced_reply = header_reply(call.headers)
    replies = [
        forced_reply if forced_reply is not None else " You said: " + prompt
        for prompt in prompts
        for _ in range(choice_count)
    ]
    usage = token_usage(
        max(1, sum(len(prompt.split()) for prompt in prompts)),
        sum(count_tokens(reply) for reply in replies),
    )

    if call.wants_stream():
        chunks = _stream_chunks(envelope, replies)
        if call.wants_stream_usage():
            chunks = [{**chunk, "usage": None} for chunk in chunks]
            chunks.append({**envelope.fields(_OBJECT), "choices": [], "usage": usage})
        return sse_response(chunks, call.recorder, call.chunk_delay_seconds())

    choices = [
        {"text": reply, "index": index, "logprobs": None, "finish_reason": "stop"}
        for index, reply in enumerate(replies)
    ]
    return JSONResponse({**envelope.fields(_OBJECT), "choices": choices, "usage": usage})


def _stream_chunks(envelope: CompletionEnvelope, replies: list[str]) -> list[dict[str, Any]]:
    def chunk(index: int, text: str, finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"text": text, "index": index, "logprobs": None, "finish_reason": finish_reason}
        return {**envelope.fields(_OBJECT), "choices": [choice]}

    chunks: list[dict[str, Any]] = []
    for index, reply in enumerate(replies):
        chunks.extend(chunk(index, piece) for piece in split_into_pieces(reply))
        chunks.append(chunk(index, "", "stop"))
    return chunks
