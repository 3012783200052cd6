"""Azure OpenAI's deployment paths: ``/openai/deployments/{deployment}/chat/completions``,
``.../completions`` and ``.../embeddings`` (with ``?api-version=``), guarded exactly like
their OpenAI twins and sent to ``--azure-upstream``. The deployment names the model
(Azure requests carry no ``model``), so it is the model label in metrics and routes.

Azure's v1 API (``/openai/v1/...``) has OpenAI's own paths: point ``--upstream`` at
``https://RESOURCE.openai.azure.com/openai/v1`` and it is guarded as OpenAI is.
"""

from __future__ import annotations

import re

from guardproxy.proxy.dialects.base import Dialect
from guardproxy.proxy.dialects.chat import ChatDialect
from guardproxy.proxy.dialects.completions import CompletionsDialect
from guardproxy.proxy.dialects.embeddings import EmbeddingsDialect

DEPLOYMENT_PATH = re.compile(r"^/openai/deployments/([^/]+)/(chat/completions|completions|embeddings)$",
                             re.IGNORECASE)


class AzureChatDialect(ChatDialect):
    name = "azure_chat"
    path = "/openai/deployments/{deployment}/chat/completions"
    upstream = "azure"
    provider = "azure.ai.openai"


class AzureCompletionsDialect(CompletionsDialect):
    name = "azure_completions"
    path = "/openai/deployments/{deployment}/completions"
    upstream = "azure"
    provider = "azure.ai.openai"


class AzureEmbeddingsDialect(EmbeddingsDialect):
    name = "azure_embeddings"
    path = "/openai/deployments/{deployment}/embeddings"
    upstream = "azure"
    provider = "azure.ai.openai"


AZURE_DIALECTS: dict[str, Dialect] = {"chat/completions": AzureChatDialect(),
                                      "completions": AzureCompletionsDialect(),
                                      "embeddings": AzureEmbeddingsDialect()}


def azure_route(path: str) -> tuple[str, Dialect, str] | None:
    """For a deployment path: its canonical spelling (the fixed parts in lower case),
    its dialect and the deployment; None for any other path."""
    match = DEPLOYMENT_PATH.match(path)
    if match is None:
        return None
    deployment, tail = match.group(1), match.group(2).lower()
    return f"/openai/deployments/{deployment}/{tail}", AZURE_DIALECTS[tail], deployment
