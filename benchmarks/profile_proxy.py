"""Where a proxy's CPU goes under load: py-spy samples the server while wrk drives it.

Starts the fixed-answer upstream and the server under test (guardproxy with a
policy, or the raw-ASGI reference), pins them as the suite does (upstream and
wrk on CPU 0, server on CPU 1), samples the server for ``--seconds`` with
py-spy, and prints the share of samples by package and the guardproxy functions
with the most inclusive time. Profiles before and after each fast-path change
came from this script.

    .venv/bin/python benchmarks/profile_proxy.py --policy benchmarks/policies/no_guards.yaml
    .venv/bin/python benchmarks/profile_proxy.py --policy policies --stream
    .venv/bin/python benchmarks/profile_proxy.py --reference

Needs wrk (Debian) and py-spy (``pip install py-spy``; sampling another process
needs root or ptrace permission).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from processes import free_port, start, stop_all

HERE = Path(__file__).resolve().parent
BODY = '{"model":"gpt-4o-mini",%s"messages":[{"role":"user","content":"What is the capital of France?"}]}'


def wrk_script(stream: bool) -> str:
    body = BODY % ('"stream":true,' if stream else "")
    return (f"wrk.method = \"POST\"\nwrk.body = '{body}'\n"
            "wrk.headers[\"Content-Type\"] = \"application/json\"\n"
            "wrk.headers[\"Authorization\"] = \"Bearer sk-bench\"\n")


def where(frame: str) -> tuple[str, str]:
    """(package, function) of a py-spy raw frame ``func (package/module.py:line)``; py-spy
    shows paths relative to the ``sys.path`` entry they were imported from."""
    function, _, location = frame.partition(" (")
    path = location.rsplit(":", 1)[0]
    package = path.split("/", 1)[0] if "/" in path else Path(path).name or "native"
    if package == "guardproxy":
        return package, f"{function} ({path.removeprefix('guardproxy/')})"
    return package, function


def summarise(raw: Path, top: int) -> None:
    total = 0
    by_package: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        samples = int(count)
        total += samples
        frames = stack.split(";")
        by_package[where(frames[-1])[0]] += samples
        package, function = where(frames[-1])
        own[f"{package}: {function}"] += samples
        seen = set()
        for frame in frames:
            package, function = where(frame)
            if package == "guardproxy" and function not in seen:
                seen.add(function)
                inclusive[function] += samples
    print(f"{total} samples")
    print("\nself time by package")
    for package, samples in by_package.most_common(top):
        print(f"  {samples / total * 100:5.1f}%  {package}")
    print("\nfunctions, self time")
    for function, samples in own.most_common(top):
        print(f"  {samples / total * 100:5.1f}%  {function}")
    print("\nguardproxy functions, inclusive")
    for function, samples in inclusive.most_common(top):
        print(f"  {samples / total * 100:5.1f}%  {function}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--policy", help="run guardproxy with this policy file or directory")
    target.add_argument("--reference", action="store_true", help="profile the raw-ASGI reference instead")
    parser.add_argument("--stream", action="store_true", help="streamed chat completions")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    for tool in ("wrk", "py-spy", "taskset"):
        if shutil.which(tool) is None and not (tool == "py-spy" and (Path(sys.executable).parent / tool).exists()):
            print(f"profile_proxy: {tool} is not installed", file=sys.stderr)
            return 2
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    upstream_port, port = free_port(), free_port()
    processes = []
    try:
        upstream_process = start([str(HERE / "fast_upstream.py"), "--port", str(upstream_port)],
                                 f"http://127.0.0.1:{upstream_port}/v1/models")
        processes.append(upstream_process)
        subprocess.run(["taskset", "-pc", "0", str(upstream_process.pid)], check=True, stdout=subprocess.DEVNULL)
        upstream = f"http://127.0.0.1:{upstream_port}"
        if args.reference:
            server = [str(HERE / "reference_proxy.py"), "--port", str(port), "--upstream", upstream]
            ready = f"http://127.0.0.1:{port}/v1/models"
        else:
            server = ["-c", "from guardproxy.cli import main; main()", "serve", "--upstream", upstream + "/v1",
                      "--policy", args.policy, "--port", str(port)]
            ready = f"http://127.0.0.1:{port}/readyz"
        process = start(server, ready, env={"GUARDPROXY_LOG_LEVEL": "info"})
        processes.append(process)
        subprocess.run(["taskset", "-pc", "1", str(process.pid)], check=True, stdout=subprocess.DEVNULL)
        with tempfile.TemporaryDirectory() as scratch:
            script = Path(scratch) / "post.lua"
            script.write_text(wrk_script(args.stream))
            load = subprocess.Popen(["taskset", "-c", "0", "wrk", "-t1", f"-c{args.concurrency}",
                                     f"-d{args.seconds + 3}s", "-s", str(script),
                                     f"http://127.0.0.1:{port}/v1/chat/completions"], stdout=subprocess.DEVNULL)
            time.sleep(1)
            raw = Path(scratch) / "profile.txt"
            subprocess.run([py_spy, "record", "-p", str(process.pid), "-d", str(args.seconds), "-r", "400",
                            "-f", "raw", "-o", str(raw), "--nonblocking"], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            load.wait()
            summarise(raw, args.top)
    finally:
        stop_all(processes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
