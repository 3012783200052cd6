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

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from passthrough_latency import compare
from processes import free_port, start, stop_all
from prometheus_client import CollectorRegistry

from guardproxy.telemetry import FailureReport, FindingReport, GuardRunReport, RequestReport, Telemetry, Tracing

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


class DroppingExporter(SpanExporter):
    def export(self, spans: object) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def guarded_chat_report() -> RequestReport:
    """What the proxy hands telemetry for a guarded chat request: a finding in each
    stage, a guard that timed out, three guard runs, usage."""
    now, now_ns = time.perf_counter(), time.time_ns()
    runs = [GuardRunReport("keywords", "banned", stage, "flag", now_ns, 0.0001, "ok", 1, ("banned",), "flagged")
            for stage in ("input", "output")]
    runs.append(GuardRunReport("pii", "pii", "input", "redact", now_ns, 0.002, "timeout", 0, (), "pass"))
    return RequestReport(
        "0123456789abcdef", "chat", "POST", "/v1/chat/completions", now, ended=now + 0.01, status=200,
        model="gpt-4o-2024-08-06", response_model="gpt-4o-2024-08-06", verdict="flagged",
        policy="bench@000000000000", policy_name="bench", chain="default", upstream_sent=now + 0.001,
        upstream_done=now + 0.009, upstream_seconds=0.008, input_seconds=0.001, output_seconds=0.0001,
        usage={"input": 9, "output": 3}, guard_runs=runs,
        findings=[FindingReport(stage, "keywords", "banned", "flag", "enforce", "banned")
                  for stage in ("input", "output")],
        failures=[FailureReport("input", "pii", "pii", "timeout", False)])


def facade_cost(rounds: int, traced: bool) -> float:
    """Microseconds per request of what telemetry does for a guarded chat request
    (the report itself is the proxy's): the metrics, and with ``traced`` the request,
    upstream and guard spans too (dropped, not exported). The access logger is not
    enabled here, so its line is not written."""
    tracing = Tracing(DroppingExporter(), batch=False) if traced else None
    telemetry = Telemetry(CollectorRegistry(), tracing=tracing)
    report = guarded_chat_report()
    started = time.perf_counter()
    for _ in range(rounds):
        trace = telemetry.start_trace("POST", "/v1/chat/completions", "chat", [])
        if trace is not None:
            trace.upstream_started("POST")
            trace.upstream_answered(200)
            trace.upstream_ended(None)
        telemetry.request_finished(report, trace)
    elapsed = time.perf_counter() - started
    telemetry.close()
    return elapsed / rounds * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args()

    print(f"telemetry calls alone, in-process, per guarded request: metrics {facade_cost(20000, False):.1f} µs, "
          f"metrics and traces {facade_cost(5000, True):.1f} µs")
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
