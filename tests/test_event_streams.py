"""The Responses and Anthropic stream guards, event by event, without a server: what
leaves for each upstream event, on the paths the SDK-level contract suite cannot reach
(an upstream that stops early, a tool input that arrives whole in its start event, the
proxy's own event numbering)."""

from __future__ import annotations

import json
from typing import Any

import anthropic.types
import openai.types.responses
import pytest
from pydantic import TypeAdapter

from guardproxy.engine import Engine
from guardproxy.guards import GuardContext
from guardproxy.policy.loader import parse_policy
from guardproxy.proxy.channel_guard import ChannelGuard
from guardproxy.proxy.dialects import DIALECTS
from guardproxy.proxy.sse import SSEDecoder, encode_event, parse_event
from guardproxy.proxy.stream_guards import new_stream_guard
from tests.scripted_upstream import messages_events, responses_events, split

POLICY = parse_policy("""
version: 1
name: s
stream: {hold_back_chars: 16}
chains:
  default:
    output:
      - {guard: keywords, action: block, terms: [stop here], label: stop}
      - {guard: keywords, action: redact, patterns: ['\\d{3}-\\d{4}'], label: PHONE}
""", "s")
RESPONSES_EVENT = TypeAdapter(openai.types.responses.ResponseStreamEvent)
MESSAGES_EVENT = TypeAdapter(anthropic.types.RawMessageStreamEvent)


async def run(path: str, events: list[dict[str, Any]], finish: bool = True,
              keep_streamed: bool = False) -> tuple[list[dict[str, Any]], ChannelGuard]:
    """Feed the events; the events sent to the client, each checked against the SDK's types.
    ``keep_streamed``: the guard keeps the streamed text, as it does for a shadow policy."""
    engine = Engine(1)
    guard = new_stream_guard(engine, POLICY, POLICY.chains["default"].output, GuardContext("output"),
                             DIALECTS[path])
    if keep_streamed:
        guard.streamed = {}
    out = b""
    for event in events:
        out += await guard.process(parse_event(encode_event(event["type"], event)))
        if guard.ended:
            break
    if finish:
        out += await guard.finish()
    engine.close()
    sent = [e.json() for e in SSEDecoder().feed(out) if e.data is not None]
    adapter = RESPONSES_EVENT if path == "/v1/responses" else MESSAGES_EVENT
    for event in sent:
        if event["type"] != "ping":  # a keep-alive, not in the SDK's event union
            adapter.validate_python(event)
    return sent, guard


def text_of(sent: list[dict[str, Any]]) -> str:
    return "".join(e["delta"] if e["type"] == "response.output_text.delta" else e["delta"].get("text", "")
                   for e in sent if e["type"] in ("response.output_text.delta", "content_block_delta"))


async def test_responses_events_are_numbered_in_order_after_the_proxy_adds_and_drops_some() -> None:
    text = "Call 555-1234 when you can, we are open all day long."
    sent, guard = await run("/v1/responses", responses_events(split(text)))
    assert [e["sequence_number"] for e in sent] == list(range(len(sent)))
    assert text_of(sent) == text.replace("555-1234", "[PHONE]")
    final = sent[-1]["response"]
    assert sent[-1]["type"] == "response.completed"
    assert final["output"][0]["content"][0]["text"] == text_of(sent)  # the final response agrees with the deltas
    assert guard.verdict == "redacted"


async def test_a_responses_stream_that_stops_early_releases_what_it_held_checked() -> None:
    events = responses_events(split("Dial 555-1234 now"))
    cut = next(i for i, e in enumerate(events) if e["type"] == "response.output_text.done")
    sent, _ = await run("/v1/responses", events[:cut])
    assert text_of(sent) == "Dial [PHONE] now"
    assert all(e["type"] != "response.completed" for e in sent)


async def test_a_responses_block_ends_with_incomplete_holding_only_what_was_released() -> None:
    text = "The first part is fine and long enough. Then stop here and say the rest."
    sent, guard = await run("/v1/responses", responses_events(split(text)))
    last = sent[-1]
    assert last["type"] == "response.incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "content_filter"}
    released = text_of(sent)
    assert "stop here" not in released and text.startswith(released)
    assert last["response"]["output"][0]["content"][0]["text"] == released
    assert guard.blocked


async def test_anthropic_tool_input_sent_whole_in_its_start_event_is_checked_too() -> None:
    events = messages_events(tool=("call", ["{}"]))
    events = [e for e in events if e["type"] != "content_block_delta"]
    start = next(e for e in events if e["type"] == "content_block_start")
    start["content_block"]["input"] = {"number": "555-1234", "note": "fine"}
    sent, _ = await run("/v1/messages", events)
    started = next(e for e in sent if e["type"] == "content_block_start")
    assert started["content_block"]["input"] == {}  # the input goes as one checked delta instead
    pieces = [e["delta"]["partial_json"] for e in sent if e["type"] == "content_block_delta"]
    assert [json.loads(p) for p in pieces] == [{"number": "[PHONE]", "note": "fine"}]


async def test_an_anthropic_stream_that_stops_early_releases_what_it_held_checked() -> None:
    events = messages_events(split("Dial 555-1234 now"))
    cut = next(i for i, e in enumerate(events) if e["type"] == "content_block_stop")
    sent, _ = await run("/v1/messages", events[:cut])
    assert text_of(sent) == "Dial [PHONE] now"
    assert sent[-1] == {"type": "content_block_stop", "index": 0}  # closed; no message_stop is invented


async def test_an_anthropic_block_closes_its_content_block_and_ends_as_a_refusal() -> None:
    text = "The first part is fine and long enough. Then stop here and say the rest."
    sent, _ = await run("/v1/messages", messages_events(split(text)), finish=False)
    types = [e["type"] for e in sent]
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert sent[-2]["delta"]["stop_reason"] == "refusal"
    assert "stop here" not in text_of(sent) and text.startswith(text_of(sent))


def custom_tool_events(pieces: list[str]) -> list[dict[str, Any]]:
    """A function-call stream turned into a custom tool's, as the Responses API streams one:
    ``custom_tool_call`` items with free-form ``input``, ``custom_tool_call_input`` deltas."""
    whole = "".join(pieces)
    out = []
    for event in responses_events(call=("sql", ["{}"])):
        event = json.loads(json.dumps(event))
        for holder in (event.get("item"), *(event.get("response", {}).get("output") or [])):
            if isinstance(holder, dict) and holder.get("type") == "function_call":
                holder["type"] = "custom_tool_call"
                del holder["arguments"]
                holder["input"] = "" if event["type"] == "response.output_item.added" else whole
        if event["type"] == "response.function_call_arguments.delta":
            out += [{**event, "type": "response.custom_tool_call_input.delta", "delta": piece} for piece in pieces]
            continue
        if event["type"] == "response.function_call_arguments.done":
            del event["arguments"]
            event.update(type="response.custom_tool_call_input.done", input=whole)
        out.append(event)
    return [{**event, "sequence_number": number} for number, event in enumerate(out)]


async def test_a_custom_tool_input_is_held_whole_and_checked() -> None:
    sent, _ = await run("/v1/responses", custom_tool_events(["call 555-", "0199 ", "now"]))
    deltas = [e["delta"] for e in sent if e["type"] == "response.custom_tool_call_input.delta"]
    assert deltas == ["call [PHONE] now"]  # one delta, released once checked
    done = next(e for e in sent if e["type"] == "response.custom_tool_call_input.done")
    assert done["input"] == "call [PHONE] now"
    completed = sent[-1]
    assert completed["type"] == "response.completed"
    assert completed["response"]["output"][0]["input"] == "call [PHONE] now"
    assert "555" not in json.dumps(sent)


async def test_a_blocked_custom_tool_input_never_leaves() -> None:
    sent, _ = await run("/v1/responses", custom_tool_events(["please ", "stop ", "here"]))
    assert sent[-1]["type"] == "response.incomplete"
    assert "stop here" not in json.dumps(sent)
    assert not any(e["type"].startswith("response.custom_tool_call_input") for e in sent)


@pytest.mark.parametrize(("path", "events", "text", "call"), [
    ("/v1/responses", responses_events(split("Plain prose.")), "Plain prose.", False),
    ("/v1/responses", responses_events(call=("f", ['{"city": ', '"Oslo"}'])), "Oslo", True),
    ("/v1/responses", custom_tool_events(["SELECT ", "1"]), "SELECT 1", True),
    ("/v1/messages", messages_events(split("Plain prose.")), "Plain prose.", False),
    ("/v1/messages", messages_events(tool=("f", ['{"city": ', '"Lima"}'])), "Lima", True),
])
async def test_the_streamed_text_kept_for_a_shadow_policy_says_which_a_tool_call_carries(
        path: str, events: list[dict[str, Any]], text: str, call: bool) -> None:
    _, guard = await run(path, events, keep_streamed=True)
    assert [(s.text, s.call) for s in guard.streamed_segments() or []] == [(text, call)]
