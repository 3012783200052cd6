"""Where a worker's memory goes: resident set size (VmRSS) per component, each in a fresh process.

1. Imports: a bare interpreter, then each heavy package imported alone (the change against the bare
   interpreter is its cost), then everything ``guardproxy.http.app`` imports.
2. Models: ``guardproxy.http.app`` imported, then one guard built and warmed as the proxy does at start-up
   (the change against "app imports" is the model's cost).
3. The proxy as operators run it (``python -m guardproxy serve``, one worker, demo upstream): RSS once
   ``/readyz`` answers, and again after requests through every guard of the chain; for
   ``policies/default.yaml`` and for the same policy with ``policies/examples/topics.yaml``'s semantic
   topics guard added to its input chain. The figures include the guard's own behaviour after warm-up
   (``malloc_trim`` if it does it).

    .venv/bin/python benchmarks/memory_breakdown.py [--requests 100] [--skip-serve]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
from itertools import count
from pathlib import Path

import aiohttp
import yaml
from processes import free_port, start, stop_all

REPO = Path(__file__).resolve().parent.parent
DEFAULT_POLICY = REPO / "policies" / "default.yaml"
TOPICS_POLICY = REPO / "policies" / "examples" / "topics.yaml"

RSS = "print(next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmRSS:')))"

IMPORTS = {
    "python (bare interpreter)": "pass",
    "numpy": "import numpy",
    "pydantic + PyYAML": "import pydantic, yaml",
    "starlette + uvicorn + httpx + aiohttp": "import starlette.applications, uvicorn, httpx, aiohttp",
    "prometheus_client": "import prometheus_client",
    "opentelemetry sdk": "import opentelemetry.sdk.trace",
    "opentelemetry OTLP http exporter": "import opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry OTLP grpc exporter": "import opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
    "spacy": "import spacy",
    "presidio_analyzer (imports spacy)": "import presidio_analyzer",
    "onnxruntime + tokenizers": "import onnxruntime, tokenizers",
    "scikit-learn + SciPy (the wheel's pickled profanity model)":
        "import sklearn.calibration, sklearn.svm, sklearn.feature_extraction.text",
    "guardproxy.http.app (everything it imports)": "import guardproxy.http.app",
}

_APP = "import guardproxy.http.app\n"
MODELS = {
    "app imports": _APP,
    "+ pii, nlp: ner (spaCy en_core_web_sm + Presidio)":
        _APP + "from guardproxy.guards.pii.guard import PiiGuard\nfrom guardproxy.guards.pii.config import PiiConfig\n"
        "PiiGuard(PiiConfig()).warm()",
    "+ pii, nlp: pattern (Presidio, no spaCy model)":
        _APP + "from guardproxy.guards.pii.guard import PiiGuard\nfrom guardproxy.guards.pii.config import PiiConfig\n"
        "PiiGuard(PiiConfig(nlp='pattern')).warm()",
    "+ toxicity, implicit: false (alt-profanity-check's model)":
        _APP + "from guardproxy.guards.toxicity.guard import ToxicityGuard\n"
        "from guardproxy.guards.toxicity.config import ToxicityConfig\n"
        "ToxicityGuard(ToxicityConfig(implicit=False)).warm()",
    "+ MiniLM encoder (topics semantic, implicit head, grounding)":
        _APP + "from guardproxy.embeddings import shared_encoder\nshared_encoder().encode(['warm up'])",
}

TEXTS = [
    "Hi, I'm Maria Gonzalez. Send the invoice to maria.gonzalez@brightfield.io or call (415) 555-0182.",
    "Could you book me a flight to Lisbon next Friday and find a hotel near the old town?",
    "Ship to 742 Evergreen Terrace, Springfield, IL 62704; charge card 4111 1111 1111 1111. Thanks!",
    "What is a good way to explain recursion to a twelve-year-old? Keep it short, please.",
]


def rss_of_snippet(code: str) -> int:
    """VmRSS in kB of a fresh interpreter after running ``code``."""
    output = subprocess.run([sys.executable, "-c", f"{code}\n{RSS}"], check=True, capture_output=True, text=True,
                            cwd=REPO).stdout
    return int(output.strip().splitlines()[-1])


def rss_of_pid(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def print_rows(title: str, rows: dict[str, str], base_label: str) -> None:
    print(f"\n{title}")
    print(f"   {'component':60} {'RSS MB':>8} {'+MB':>8}")
    base = None
    for label, code in rows.items():
        kb = rss_of_snippet(code)
        base = kb if label == base_label else base
        added = "" if base is None or label == base_label else f"{(kb - base) / 1024:8.1f}"
        print(f"   {label:60} {kb / 1024:8.1f} {added:>8}", flush=True)


async def send(url: str, requests: int) -> None:
    serial = count()
    async with aiohttp.ClientSession() as session:
        for i in range(requests):
            text = f"{TEXTS[i % len(TEXTS)]} (ref {next(serial)})"
            body = {"model": "demo", "messages": [{"role": "user", "content": text}]}
            async with session.post(url, json=body) as response:
                await response.read()


def policy_with_topics(directory: Path) -> Path:
    """``default.yaml`` with the semantic topics guard of ``examples/topics.yaml`` added to its input chain."""
    policy = yaml.safe_load(DEFAULT_POLICY.read_text())
    topics = yaml.safe_load(TOPICS_POLICY.read_text())["chains"]["default"]["input"][0]
    policy["chains"]["default"]["input"].append({**topics, "action": "flag"})
    path = directory / "default_topics.yaml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return path


def serve(requests: int) -> None:
    print(f"\n3. The proxy (python -m guardproxy serve, 1 worker), RSS at /readyz and after {requests} requests")
    print(f"   {'policy':60} {'ready MB':>9} {'served MB':>10}")
    processes: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        upstream_port = free_port()
        upstream = f"http://127.0.0.1:{upstream_port}/v1"
        try:
            processes.append(start(["-m", "guardproxy.demo", "--port", str(upstream_port)], upstream + "/models"))
            for label, policy in (("policies/default.yaml", DEFAULT_POLICY),
                                  ("default.yaml + topics (semantic)", policy_with_topics(Path(tmp)))):
                port = free_port()
                proxy = start(["-m", "guardproxy", "serve", "--upstream", upstream, "--policy", str(policy),
                               "--port", str(port)], f"http://127.0.0.1:{port}/readyz")
                processes.append(proxy)
                ready = rss_of_pid(proxy.pid)
                asyncio.run(send(f"http://127.0.0.1:{port}/v1/chat/completions", requests))
                served = rss_of_pid(proxy.pid)
                print(f"   {label:60} {ready / 1024:9.1f} {served / 1024:10.1f}", flush=True)
        finally:
            stop_all(processes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--skip-serve", action="store_true", help="skip part 3")
    args = parser.parse_args()
    print_rows("1. Imports, each in a fresh interpreter", IMPORTS, "python (bare interpreter)")
    print_rows("2. Models, each after importing guardproxy.http.app", MODELS, "app imports")
    if not args.skip_serve:
        serve(args.requests)


if __name__ == "__main__":
    main()
