"""``python -m guardproxy.demo --port N``: the demo upstream alone, for benchmarks."""

from __future__ import annotations

import argparse

import uvicorn

from guardproxy.demo.app import create_demo_upstream


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m guardproxy.demo")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args()
    uvicorn.run(create_demo_upstream(), host=args.host, port=args.port, loop="uvloop", http="httptools",
                log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
