"""Azure OpenAI deployment paths: `/openai/deployments/{deployment}/...?api-version=...`.

Azure serves the OpenAI chat, completions and embeddings bodies under a
deployment name, authenticates with the `api-key` header and insists on an
`api-version` query parameter (without one it answers 404 "Resource not
found", not 400). The deployment name is what the response reports as `model`.
The routes reuse the OpenAI handlers; only what Azure's gateway decides before
the model sees the request has Azure's own error shape, `{"error": {"code":
"<status>", "message"}}`.
"""

from __future__ import annotations

from dataclasses import replace

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response

from guardproxy.demo.endpoint import DemoCall, Handler, WireConventions
from guardproxy.demo.errors import DemoRequestError

API_KEY_HEADER = "api-key"
API_VERSION_PARAM = "api-version"

_ACCESS_DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key "
    "for an active subscription and use a correct regional API endpoint for your resource."
)


class AzureGatewayError(DemoRequestError):
    """A failure Azure's gateway answers itself, in its `{"error": {"code", "message"}}` shape."""

    def to_response(self) -> JSONResponse:
        body = {"error": {"code": str(self.status_code), "message": self.message}}
        return JSONResponse(body, status_code=self.status_code, headers=self.headers)


def resource_not_found_error() -> AzureGatewayError:
    return AzureGatewayError(404, "Resource not found")


def azure_deployment(handler: Handler) -> Handler:
    """`handler` behind a deployment path: `api-version` required, the deployment as `model`."""

    async def handle(call: DemoCall) -> Response:
        if not call.request.query_params.get(API_VERSION_PARAM):
            raise resource_not_found_error()
        deployment = call.request.path_params["deployment"]
        return await handler(replace(call, body={**call.body, "model": deployment}))

    return handle


async def unknown_azure_path(call: DemoCall) -> Response:
    raise resource_not_found_error()


def _check_azure_key(headers: Headers, required_key: str) -> None:
    if headers.get(API_KEY_HEADER) != required_key:
        raise AzureGatewayError(401, _ACCESS_DENIED)


AZURE_CONVENTIONS = WireConventions(check_key=_check_azure_key)
