"""``guardproxy``: serve, demo, check, test, eval, keys, replay, review, report."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace

from guardproxy.audit import commands as audit_commands
from guardproxy.config import Settings, env_name
from guardproxy.policy import PolicyError, load_policy_set

_DEFAULTS = Settings()


def _env_default(name: str, cast: Callable[[str], object] = str) -> object:
    raw = os.environ.get(env_name(name))
    return getattr(_DEFAULTS, name) if raw is None else cast(raw)


def _boolean(raw: str) -> bool:
    return raw.strip().lower() in ("1", "true", "yes", "on")


def _add_serve_flags(parser: argparse.ArgumentParser, demo: bool) -> None:
    if not demo:
        parser.add_argument("--upstream", default=_env_default("upstream"),
                            help="upstream base URL, as the SDK's base_url, /v1 included [GUARDPROXY_UPSTREAM]")
    parser.add_argument("--policy", default=_env_default("policy"),
                        help="policy file, or directory of *.yaml [GUARDPROXY_POLICY]")
    parser.add_argument("--host", default=_env_default("host"), help="[GUARDPROXY_HOST]")
    parser.add_argument("--port", type=int, default=_env_default("port", int), help="[GUARDPROXY_PORT]")
    parser.add_argument("--workers", type=int, default=_env_default("workers", int), help="[GUARDPROXY_WORKERS]")
    parser.add_argument("--upstream-key-env", default=_env_default("upstream_key_env"), metavar="NAME",
                        help="environment variable holding the upstream API key; it replaces the client's "
                             "Authorization [GUARDPROXY_UPSTREAM_KEY_ENV]")
    parser.add_argument("--anthropic-upstream", default=_env_default("anthropic_upstream"), metavar="URL",
                        help="Anthropic Messages upstream, as the Anthropic SDK's base_url (no /v1): "
                             "https://api.anthropic.com; unset: --upstream's origin [GUARDPROXY_ANTHROPIC_UPSTREAM]")
    parser.add_argument("--anthropic-key-env", default=_env_default("anthropic_key_env"), metavar="NAME",
                        help="environment variable holding the Anthropic key; it replaces the client's x-api-key "
                             "[GUARDPROXY_ANTHROPIC_KEY_ENV]")
    parser.add_argument("--azure-upstream", default=_env_default("azure_upstream"), metavar="URL",
                        help="Azure OpenAI resource for /openai/deployments/... paths: "
                             "https://RESOURCE.openai.azure.com [GUARDPROXY_AZURE_UPSTREAM]")
    parser.add_argument("--azure-key-env", default=_env_default("azure_key_env"), metavar="NAME",
                        help="environment variable holding the Azure key; it replaces the client's api-key "
                             "[GUARDPROXY_AZURE_KEY_ENV]")
    parser.add_argument("--keys-file", default=_env_default("keys_file"), metavar="PATH",
                        help="YAML file of client keys (sha256 digests), each bound to a chain; every proxied "
                             "request must then carry one. Unset: anyone who reaches the port may call "
                             "[GUARDPROXY_KEYS_FILE]")
    parser.add_argument("--admin-key-env", default=_env_default("admin_key_env"), metavar="NAME",
                        help="environment variable holding the key that /v1/guardrails/check requires "
                             "[GUARDPROXY_ADMIN_KEY_ENV]")
    parser.add_argument("--metrics-port", type=int, default=_env_default("metrics_port", int), metavar="N",
                        help="serve GET /metrics on this port, on its own listener, instead of the public port "
                             "(0: the public port) [GUARDPROXY_METRICS_PORT]")
    parser.add_argument("--upstream-retries", type=int, default=_env_default("upstream_retries", int), metavar="N",
                        help="retries, with jittered backoff, of a connect error or a 502/503 before any byte "
                             "(never a 4xx, never once a stream has started) [GUARDPROXY_UPSTREAM_RETRIES]")
    parser.add_argument("--max-body-bytes", type=int, default=_env_default("max_body_bytes", int),
                        help="largest request body accepted (413 beyond) [GUARDPROXY_MAX_BODY_BYTES]")
    parser.add_argument("--upstream-timeout", type=float, default=_env_default("upstream_timeout", float),
                        help="seconds of upstream silence before a 504 [GUARDPROXY_UPSTREAM_TIMEOUT]")
    parser.add_argument("--guard-threads", type=int, default=_env_default("guard_threads", int),
                        help="threads for CPU-heavy guards, per worker [GUARDPROXY_GUARD_THREADS]")
    parser.add_argument("--log-level", default=_env_default("log_level"), help="[GUARDPROXY_LOG_LEVEL]")
    parser.add_argument("--no-metrics", dest="metrics", action="store_false",
                        default=_env_default("metrics", _boolean),
                        help="do not collect metrics or serve GET /metrics [GUARDPROXY_METRICS=false]")
    parser.add_argument("--audit", default=_env_default("audit"), metavar="PATH",
                        help="write one JSON record per guarded request to PATH (rotated by size) or - for "
                             "standard output [GUARDPROXY_AUDIT]")
    parser.add_argument("--audit-max-bytes", type=int, default=_env_default("audit_max_bytes", int), metavar="N",
                        help="rotate the audit file past this size [GUARDPROXY_AUDIT_MAX_BYTES]")
    parser.add_argument("--audit-keep", type=int, default=_env_default("audit_keep", int), metavar="N",
                        help="rotated audit files kept [GUARDPROXY_AUDIT_KEEP]")
    parser.add_argument("--audit-otlp", action="store_true", default=_env_default("audit_otlp", _boolean),
                        help="also send each audit record as an OpenTelemetry log record to the OTLP endpoint "
                             "[GUARDPROXY_AUDIT_OTLP]")
    parser.add_argument("--trace-content", choices=["off", "redacted"], default=_env_default("trace_content"),
                        help="text in trace spans: off (never), or redacted (each stage's text after redaction); "
                             "traces are sent when OTEL_EXPORTER_OTLP_ENDPOINT is set [GUARDPROXY_TRACE_CONTENT]")
    if demo:
        parser.add_argument("--demo-port", type=int, default=0, help="port of the demo upstream (0: any free)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="guardproxy", description="Runtime guardrail proxy for LLM APIs.")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_serve_flags(commands.add_parser("serve", help="run the proxy in front of an upstream"), demo=False)
    _add_serve_flags(commands.add_parser("demo", help="run the proxy in front of a built-in demo model"),
                     demo=True)
    check = commands.add_parser("check", help="validate policy files")
    check.add_argument("paths", nargs="+")
    test = commands.add_parser("test", help="run policy test files")
    test.add_argument("paths", nargs="+")
    test.add_argument("--policy", default=None,
                      help="the policy that reviewed JSONL files (from guardproxy review) are run against")
    evaluate = commands.add_parser("eval", help="measure a chain on labelled JSONL data")
    evaluate.add_argument("--policy", required=True)
    evaluate.add_argument("--chain", default="default")
    evaluate.add_argument("--stage", choices=["input", "output"], required=True)
    evaluate.add_argument("--data", required=True)
    evaluate.add_argument("--positive", nargs="*", default=None,
                          help="labels that count as positive (topics, or PII entity types)")
    evaluate.add_argument("--limit", type=int, default=None, help="use only the first N rows")
    evaluate.add_argument("--json", action="store_true", help="print the figures as JSON")
    promote = commands.add_parser("promote", help="make a policy's shadow live, and the live rules its shadow "
                                                  "(run again to roll back)")
    promote.add_argument("path", help="the live policy's file (the one that names shadow: PATH)")
    keys = commands.add_parser("keys", help="client keys for --keys-file")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    key_commands.add_parser("hash", help="print the sha256 of a key read from stdin (one line), for the keys file")
    key_check = key_commands.add_parser("check", help="validate a keys file against the policies it binds to")
    key_check.add_argument("path")
    key_check.add_argument("--policy", default=_env_default("policy"), help="[GUARDPROXY_POLICY]")
    audit_commands.add_commands(commands)
    return parser


def cmd_keys(args: argparse.Namespace) -> int:
    from guardproxy.keys import key_digest, load_keys

    if args.keys_command == "hash":
        key = sys.stdin.readline().rstrip("\r\n")
        if not key.strip():
            print("guardproxy keys hash: no key on stdin (echo -n \"$KEY\" | guardproxy keys hash)", file=sys.stderr)
            return 2
        print(key_digest(key))
        return 0
    try:
        keys = load_keys(args.path, load_policy_set(args.policy))
    except PolicyError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 1
    print(f"{args.path}: OK: {len(keys.entries)} keys; " + ", ".join(f"{k.name} -> {k.policy or 'default'}/{k.chain}"
                                                          for k in keys.entries))
    return 0


def _settings(args: argparse.Namespace, upstream: str) -> Settings:
    return replace(
        _DEFAULTS.from_env(os.environ), upstream=upstream, policy=args.policy, host=args.host, port=args.port,
        workers=args.workers, upstream_key_env=args.upstream_key_env or None,
        anthropic_upstream=args.anthropic_upstream or None, anthropic_key_env=args.anthropic_key_env or None,
        azure_upstream=args.azure_upstream or None, azure_key_env=args.azure_key_env or None,
        keys_file=args.keys_file or None, admin_key_env=args.admin_key_env or None,
        metrics_port=args.metrics_port, upstream_retries=args.upstream_retries,
        max_body_bytes=args.max_body_bytes, upstream_timeout=args.upstream_timeout,
        guard_threads=args.guard_threads, log_level=args.log_level, metrics=args.metrics,
        trace_content=args.trace_content, audit=args.audit or None, audit_max_bytes=args.audit_max_bytes,
        audit_keep=args.audit_keep, audit_otlp=bool(args.audit_otlp),
    )


def _check_policy(path: str, keys_file: str | None = None) -> bool:
    """The policy (and the keys file, bound to its chains) are valid: else the problems, and no start."""
    try:
        policies = load_policy_set(path)
        if keys_file:
            from guardproxy.keys import load_keys

            load_keys(keys_file, policies)
    except PolicyError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return False
    return True


def cmd_promote(path: str) -> int:
    from guardproxy.policy.promote import promote

    try:
        done = promote(path)
    except PolicyError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 1
    print(f"{done.live}: now holds the rules that were shadow {done.shadow_name!r}; {done.shadow}: now holds "
          f"the rules that were live {done.live_name!r} and runs as the shadow. A running proxy reloads both; "
          f"run the same command again to roll back.")
    return 0


def cmd_check(paths: Sequence[str]) -> int:
    ok = True
    for path in paths:
        try:
            policies = load_policy_set(path)
        except PolicyError as exc:
            print("\n".join(exc.problems), file=sys.stderr)
            ok = False
            continue
        for item in policies.policies:
            chains = ", ".join(f"{name} ({len(c.input)} in, {len(c.output)} out)"
                               for name, c in item.policy.chains.items())
            print(f"{item.source}: OK: policy {item.policy.name}@{policies.digest}; chains: {chains}")
    return 0 if ok else 1


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "check":
        return cmd_check(args.paths)
    if args.command == "test":
        from guardproxy.policytest import run_test_files

        return run_test_files(args.paths, args.policy)
    if args.command == "keys":
        return cmd_keys(args)
    if args.command == "promote":
        return cmd_promote(args.path)
    if args.command in audit_commands.COMMANDS:
        return audit_commands.run_command(args)
    if args.command == "eval":
        from guardproxy.evaluation import run_eval

        return run_eval(args)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from guardproxy.http.server import serve, serve_demo

    if args.command == "demo":
        settings = _settings(args, upstream="http://127.0.0.1:0/v1")
        return serve_demo(settings, args.demo_port) if _check_policy(settings.policy, settings.keys_file) else 1
    settings = _settings(args, upstream=args.upstream)
    return serve(settings) if _check_policy(settings.policy, settings.keys_file) else 1


def main() -> None:
    sys.exit(run())
