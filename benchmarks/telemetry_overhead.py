"""What telemetry costs per request: the proxy with ``--no-metrics`` and no
tracing, with metrics on, and with metrics on plus OpenTelemetry traces exported
over OTLP/HTTP (to a local sink that accepts and discards them), all in front of
the demo upstream; and the cost of the telemetry calls themselves, in-process.

Each server runs in its own process; the load comes from this process with aiohttp.

    .venv/bin/python benchmarks/telemetry_overhead.py [--requests 2000] [--concurrency 1 16]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

from passthrough_latency import compare
from processes import free_port, start, stop_all

from guardproxy.engine.core import ChainResult, Decision, GuardFailure, GuardRun
from guardproxy.guards import Segment
from guardproxy.policy import RouteChoice
from guardproxy.policy.schema import Policy
from guardproxy.telemetry import RequestTelemetry, Telemetry
from guardproxy.telemetry.response_watch import ResponseWatch

REPO = Path(__file__).resolve().parent.parent
# A stand-in OTLP/HTTP collector: accepts every export and discards it.
OTLP_SINK = """
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class Sink(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers()
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200); self.send_header("content-type", "application/x-protobuf"); self.end_headers()
    def log_message(self, *args):
        pass
HTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
"""
KEYWORDS_ONLY = """version: 1
name: bench
chains:
  default:
    input: [{name: banned, guard: keywords, action: flag, terms: [forbidden phrase], label: banned}]
    output: [{name: promise, guard: keywords, action: flag, terms: [guaranteed returns], label: promise}]
"""


def facade_cost(rounds: int) -> float:
    """Microseconds per request of what telemetry does for a guarded chat request:
    the record, both stages (a finding and a guard error each), the guard timings, and the report."""
    from prometheus_client import CollectorRegistry

    telemetry = Telemetry(CollectorRegistry())
    policy = Policy.model_validate({"version": 1, "name": "bench", "chains": {"default": {}}})
    choice = RouteChoice(policy, "default", "bench@000000000000")
    segments = [Segment("hello", ("messages", 0, "content"), "user")]
    result = ChainResult("input", segments, ["hello"], verdict="flagged",
                         decisions=[Decision("keywords", "banned", "banned", 1.0, 0, 0, 5, "flag", "enforce")],
                         failures=[GuardFailure("pii", "pii", "timeout", "", False)],
                         runs=[GuardRun("keywords", "banned", 0.0001, 1, "ok"), GuardRun("pii", "pii", 0.002, 0,
                                                                                         "timeout")])
    body = b'{"choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":9,"completion_tokens":3}}'
    started = time.perf_counter()
    for _ in range(rounds):
        record = RequestTelemetry(telemetry, "chat")
        record.model = "gpt-4o-2024-08-06"
        telemetry.observe_run(result)
        record.stage_done(choice, result, "input")
        record.upstream_sending()
        record.upstream_answered(200)
        record.upstream_finished()
        telemetry.observe_run(result)
        record.stage_done(choice, result, "output")
        record.add_output_time(0.0001)
        watch = ResponseWatch(streamed_route=True, usage_route=True)
        watch.start([(b"content-type", b"application/json"), (b"x-guardproxy-verdict", b"flagged")])
        watch.body(body)
        telemetry.request_finished(record, 200, watch)
    return (time.perf_counter() - started) / rounds * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args()

    print(f"telemetry calls alone, in-process: {facade_cost(20000):.1f} µs per guarded request")
    processes: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        policy = Path(tmp) / "bench.yaml"
        policy.write_text(KEYWORDS_ONLY)
        upstream_port, on_port, off_port, otlp_port, sink_port = (free_port() for _ in range(5))
        upstream = f"http://127.0.0.1:{upstream_port}/v1"
        try:
            processes.append(start(["-m", "guardproxy.demo", "--port", str(upstream_port)], upstream + "/models"))
            processes.append(start(["-c", OTLP_SINK, str(sink_port)], f"http://127.0.0.1:{sink_port}/"))
            exporting = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}"}
            for port, flags, env in ((on_port, [], None), (off_port, ["--no-metrics"], None),
                                     (otlp_port, [], exporting)):
                processes.append(start(["-m", "guardproxy", "serve", "--upstream", upstream, "--policy", str(policy),
                                        "--port", str(port), *flags], f"http://127.0.0.1:{port}/readyz", env))
            targets = {"all off": f"http://127.0.0.1:{off_port}/v1",
                       "metrics on": f"http://127.0.0.1:{on_port}/v1",
                       "+ OTLP traces": f"http://127.0.0.1:{otlp_port}/v1"}
            print(f"{args.requests} chat completions per row, keyword guards in and out; latency to the last byte; "
                  f"{os.cpu_count()} CPUs shared by load, proxy and upstream")
            compare(targets, args.requests, args.concurrency, width=14)
        finally:
            stop_all(processes)


if __name__ == "__main__":
    main()
