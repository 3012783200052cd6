"""``guardproxy serve --workers 2``: every worker's counts add up in ``/metrics``
(prometheus-client's multiprocess mode, directory made by the CLI)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import BASIC_POLICY, wait_until
from tests.servers import ThreadedServer, free_port
from tests.test_metrics import scrape, total


@pytest.mark.parametrize("own_port", [False, True], ids=["public-port", "metrics-port"])
def test_two_workers_sum_their_counts(tmp_path: Path, upstream_server: ThreadedServer, own_port: bool) -> None:
    """With --metrics-port, the parent process serves the sum on its own listener."""
    policy = tmp_path / "p.yaml"
    policy.write_text(BASIC_POLICY)
    port = free_port()
    metrics_port = free_port() if own_port else None
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    process = subprocess.Popen(
        [sys.executable, "-m", "guardproxy", "serve", "--upstream", upstream_server.url + "/v1",
         "--policy", str(policy), "--port", str(port), "--workers", "2",
         *(["--metrics-port", str(metrics_port)] if metrics_port else [])],
        env={**env, "GUARDPROXY_WATCH": "false", "TMPDIR": str(temp)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            try:
                return httpx.get(url + "/readyz").status_code == 200
            except httpx.TransportError:
                return False

        assert wait_until(up, timeout=60)
        [metrics_dir] = temp.glob("guardproxy-metrics-*")
        for i in range(30):  # a new connection each time, so both workers get requests
            text = "forbidden phrase" if i % 3 == 0 else f"hello {i}"
            response = httpx.post(url + "/v1/chat/completions", headers={"connection": "close"},
                                  json={"model": "demo", "messages": [{"role": "user", "content": text}]})
            assert response.status_code in (200, 400)
        if metrics_port:
            assert httpx.get(url + "/metrics").status_code == 404
        where = f"http://127.0.0.1:{metrics_port}" if metrics_port else url
        # Each worker records its finished requests in batches (at most 50 ms later, telemetry/batch.py):
        # a scrape answered by one worker sees the other's last requests once its batch is written.
        assert wait_until(lambda: total(scrape(where), "guardproxy_requests_total", route="chat") >= 30, timeout=5)
        samples = scrape(where)
        assert total(samples, "guardproxy_requests_total", route="chat") == 30
        assert total(samples, "guardproxy_requests_total", verdict="blocked") == 10
        assert total(samples, "guardproxy_violations_total", label="banned") == 10
        assert total(samples, "guardproxy_request_duration_seconds_count", route="chat") == 30
        digest = httpx.get(url + "/readyz").json()["policy"]
        assert total(samples, "guardproxy_policy_info", policy="testpolicy", version=digest) == 1
        pids = {sample_labels.get("pid") for _, sample_labels, _ in samples}
        assert pids == {None}  # aggregated, not one series per worker
        writers = {path.stem.rsplit("_", 1)[1] for path in metrics_dir.glob("counter_*.db")}
        assert len(writers) == 2  # both workers served requests, and /metrics added them up
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    workers = set(re.findall(r"Started server process \[(\d+)\]", output))
    assert len(workers) == 2, output
    assert not metrics_dir.exists()  # removed when the server stopped
