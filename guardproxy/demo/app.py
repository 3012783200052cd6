"""The composition root of the demo upstream: one recorder, the routes of each API, 404 fallbacks."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from guardproxy.demo.anthropic_errors import ANTHROPIC_CONVENTIONS, not_found_error
from guardproxy.demo.azure import AZURE_CONVENTIONS, azure_deployment, unknown_azure_path
from guardproxy.demo.chat import chat_completions
from guardproxy.demo.completions import completions
from guardproxy.demo.embeddings import embeddings
from guardproxy.demo.endpoint import OPENAI_CONVENTIONS, DemoCall, Handler, WireConventions, demo_endpoint
from guardproxy.demo.errors import unknown_url_error
from guardproxy.demo.messages import count_message_tokens, messages
from guardproxy.demo.model_catalog import list_models, retrieve_model
from guardproxy.demo.moderations import moderations
from guardproxy.demo.recorder import DemoRecorder
from guardproxy.demo.responses import responses

_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


async def _unknown_url(call: DemoCall) -> Response:
    raise unknown_url_error(call.request.method, call.request.url.path)


async def _unknown_anthropic_url(call: DemoCall) -> Response:
    raise not_found_error()


def create_demo_upstream() -> Starlette:
    """A fake OpenAI-, Anthropic- and Azure-compatible server; `app.state.recorder` is its `DemoRecorder`.

    Each call builds a fresh app with its own recorder, so parallel tests never
    share state. Routes that exist under another method answer like unknown URLs,
    as the real APIs do (`Invalid URL (GET /v1/chat/completions)`), each API in
    its own error shape.
    """
    recorder = DemoRecorder()

    def post(path: str, handler: Handler, conventions: WireConventions = OPENAI_CONVENTIONS) -> Route:
        endpoint = demo_endpoint(handler, recorder, parses_json=True, conventions=conventions)
        return Route(path, endpoint, methods=["POST"])

    def get(path: str, handler: Handler) -> Route:
        return Route(path, demo_endpoint(handler, recorder, parses_json=False), methods=["GET"])

    def fallback(path: str, handler: Handler, conventions: WireConventions) -> Route:
        endpoint = demo_endpoint(handler, recorder, parses_json=False, conventions=conventions)
        return Route(path, endpoint, methods=_ALL_METHODS)

    azure = "/openai/deployments/{deployment}"
    routes = [
        post("/v1/chat/completions", chat_completions),
        post("/v1/completions", completions),
        post("/v1/embeddings", embeddings),
        post("/v1/moderations", moderations),
        post("/v1/responses", responses),
        get("/v1/models", list_models),
        get("/v1/models/{model_id:path}", retrieve_model),
        post("/v1/messages", messages, ANTHROPIC_CONVENTIONS),
        post("/v1/messages/count_tokens", count_message_tokens, ANTHROPIC_CONVENTIONS),
        fallback("/v1/messages", _unknown_anthropic_url, ANTHROPIC_CONVENTIONS),
        fallback("/v1/messages/{rest:path}", _unknown_anthropic_url, ANTHROPIC_CONVENTIONS),
        post(f"{azure}/chat/completions", azure_deployment(chat_completions), AZURE_CONVENTIONS),
        post(f"{azure}/completions", azure_deployment(completions), AZURE_CONVENTIONS),
        post(f"{azure}/embeddings", azure_deployment(embeddings), AZURE_CONVENTIONS),
        fallback("/openai/{rest:path}", unknown_azure_path, AZURE_CONVENTIONS),
        fallback("/{path:path}", _unknown_url, OPENAI_CONVENTIONS),
    ]
    app = Starlette(routes=routes)
    app.state.recorder = recorder
    return app
