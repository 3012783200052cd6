"""The composition root of the demo upstream: one recorder, the `/v1` routes, a 404 fallback."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from guardproxy.demo.chat import chat_completions
from guardproxy.demo.completions import completions
from guardproxy.demo.embeddings import embeddings
from guardproxy.demo.endpoint import DemoCall, Handler, demo_endpoint
from guardproxy.demo.errors import unknown_url_error
from guardproxy.demo.model_catalog import list_models, retrieve_model
from guardproxy.demo.moderations import moderations
from guardproxy.demo.recorder import DemoRecorder

_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


async def _unknown_url(call: DemoCall) -> Response:
    raise unknown_url_error(call.request.method, call.request.url.path)


def create_demo_upstream() -> Starlette:
    """A fake OpenAI-compatible server; `app.state.recorder` is its `DemoRecorder`.

    Each call builds a fresh app with its own recorder, so parallel tests never
    share state. Routes that exist under another method answer like unknown URLs,
    as the real API does (`Invalid URL (GET /v1/chat/completions)`).
    """
    recorder = DemoRecorder()

    def post(path: str, handler: Handler) -> Route:
        return Route(path, demo_endpoint(handler, recorder, parses_json=True), methods=["POST"])

    def get(path: str, handler: Handler) -> Route:
        return Route(path, demo_endpoint(handler, recorder, parses_json=False), methods=["GET"])

    routes = [
        post("/v1/chat/completions", chat_completions),
        post("/v1/completions", completions),
        post("/v1/embeddings", embeddings),
        post("/v1/moderations", moderations),
        get("/v1/models", list_models),
        get("/v1/models/{model_id:path}", retrieve_model),
        Route(
            "/{path:path}",
            demo_endpoint(_unknown_url, recorder, parses_json=False),
            methods=_ALL_METHODS,
        ),
    ]
    app = Starlette(routes=routes)
    app.state.recorder = recorder
    return app
