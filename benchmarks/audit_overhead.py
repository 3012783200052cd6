"""What the audit trail and a shadow policy cost the live path, side by side in one run: the
same policy with both off, with the audit trail (every request, and passed ones sampled at
0.1), and with a shadow policy sampled at 1.0 and 0.1; then the trail's size per 1,000
requests, with ``text: none`` and ``text: redacted``.

Each proxy runs in its own process in front of the demo upstream; the load comes from this
process with aiohttp (``passthrough_latency.compare``). Every request sends the same text, so
guards that cache findings per text scan it once: the figures are the trail's and the shadow's
own plumbing, plus a shadow entry the live policy does not have.

    .venv/bin/python benchmarks/audit_overhead.py [--requests 2000] [--concurrency 1 16]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from pathlib import Path

from passthrough_latency import compare
from processes import free_port, start, stop_all

LIVE = """version: 1
name: bench
{audit}
{shadow}
chains:
  default:
    input:
      - {{name: pii, guard: pii, action: redact, restore: true}}
      - {{name: banned, guard: keywords, action: block, terms: [forbidden phrase]}}
    output:
      - {{name: out_pii, guard: pii, action: redact, style: type, nlp: pattern, entities: [EMAIL_ADDRESS]}}
      - {{name: promise, guard: keywords, action: flag, terms: [guaranteed returns]}}
"""
SHADOW = LIVE.format(audit="", shadow="").replace("name: bench", "name: bench-next").replace(
    "      - {name: banned,", "      - {name: quarterly, guard: keywords, action: block, terms: [quarterly]}\n"
                              "      - {name: banned,")

VARIANTS = {  # row name: (audit keys, shadow keys, --audit)
    "both off": ("", "", False),
    "audit, all": ("audit: {text: redacted, sample_passed: 1.0}", "", True),
    "audit, passed 0.1": ("audit: {text: redacted, sample_passed: 0.1}", "", True),
    "shadow 1.0": ("", "shadow: shadow/next.yaml\nshadow_sample: 1.0", False),
    "shadow 0.1": ("", "shadow: shadow/next.yaml\nshadow_sample: 0.1", False),
}


def policy_dir(root: Path, name: str, audit: str, shadow: str) -> Path:
    directory = root / name.replace(" ", "_").replace(",", "").replace(".", "")
    (directory / "shadow").mkdir(parents=True)
    (directory / "policy.yaml").write_text(LIVE.format(audit=audit, shadow=shadow))
    (directory / "shadow" / "next.yaml").write_text(SHADOW)
    return directory


def trail_size(root: Path, upstream: str, text: str, requests: int) -> tuple[int, int]:
    """Bytes and records of the trail ``requests`` requests leave, with ``audit.text`` = ``text``."""
    directory = policy_dir(root, f"size_{text}", f"audit: {{text: {text}, sample_passed: 1.0}}", "")
    trail = root / f"size_{text}.jsonl"
    port = free_port()
    process = start(["-m", "guardproxy", "serve", "--upstream", upstream, "--policy", str(directory),
                     "--port", str(port), "--audit", str(trail)], f"http://127.0.0.1:{port}/readyz")
    try:
        compare({f"audit text {text}": f"http://127.0.0.1:{port}/v1"}, requests, [4])
    finally:
        stop_all([process])
    lines = trail.read_text().splitlines()
    return trail.stat().st_size, len(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args()

    processes: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        upstream_port = free_port()
        upstream = f"http://127.0.0.1:{upstream_port}/v1"
        try:
            processes.append(start(["-m", "guardproxy.demo", "--port", str(upstream_port)], upstream + "/models"))
            targets = {}
            for name, (audit, shadow, audited) in VARIANTS.items():
                port = free_port()
                directory = policy_dir(root, name, audit, shadow)
                flags = ["--audit", str(root / f"{directory.name}.jsonl")] if audited else []
                processes.append(start(["-m", "guardproxy", "serve", "--upstream", upstream, "--policy",
                                        str(directory), "--port", str(port), *flags],
                                       f"http://127.0.0.1:{port}/readyz"))
                targets[name] = f"http://127.0.0.1:{port}/v1"
            print(f"{args.requests} chat completions per row (PII and keyword guards in and out); latency to the "
                  f"last byte; {os.cpu_count()} CPUs shared by load, proxies and upstream")
            compare(targets, args.requests, args.concurrency, width=18)
            stop_all(processes[1:])
            del processes[1:]
            for text in ("none", "redacted"):
                size, records = trail_size(root, upstream, text, 1000)
                print(f"trail, text: {text}: {records} records (JSON and streamed answers), "
                      f"{size / records * 1000 / 1024:.0f} KiB per 1,000 records ({size / records:.0f} B each)")
        finally:
            stop_all(processes)


if __name__ == "__main__":
    main()
