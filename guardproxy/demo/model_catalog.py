"""`GET /v1/models` and `GET /v1/models/{id}`: the fixed list of demo models."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from guardproxy.demo.endpoint import DemoCall
from guardproxy.demo.errors import model_not_found_error

DEMO_MODEL_IDS = ("demo", "demo-large", "gpt-4o-mini")
_CREATED = 1_700_000_000
_OWNER = "guardproxy-demo"


def _model_object(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": _CREATED, "owned_by": _OWNER}


async def list_models(call: DemoCall) -> Response:
    return JSONResponse({"object": "list", "data": [_model_object(model_id) for model_id in DEMO_MODEL_IDS]})


async def retrieve_model(call: DemoCall) -> Response:
    model_id = call.request.path_params["model_id"]
    if model_id not in DEMO_MODEL_IDS:
        raise model_not_found_error(model_id)
    return JSONResponse(_model_object(model_id))
