"""The metric families guardproxy exposes, built on a registry the app factory owns.

Names and labels are a public contract (dashboards and alerts in ``deploy/``
query them): change them only together with those files.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Seconds. The proxy's own work is milliseconds; an upstream answer is seconds to minutes.
OVERHEAD_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
GUARD_BUCKETS = OVERHEAD_BUCKETS
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


@dataclass(frozen=True)
class ProxyMetrics:
    requests: Counter
    request_duration: Histogram
    overhead: Histogram
    upstream_duration: Histogram
    time_to_first_token: Histogram
    guard_duration: Histogram
    violations: Counter
    guard_errors: Counter
    upstream_errors: Counter
    upstream_retries: Counter
    policy_reloads: Counter
    policy_info: Gauge
    tokens: Counter
    client_requests: Counter
    auth_failures: Counter
    audit_records: Counter
    audit_dropped: Counter
    shadow_decisions: Counter
    shadow_dropped: Counter

    @classmethod
    def register(cls, registry: CollectorRegistry) -> ProxyMetrics:
        def histogram(name: str, doc: str, labels: tuple[str, ...], buckets: tuple[float, ...]) -> Histogram:
            return Histogram(name, doc, labels, registry=registry, buckets=buckets)

        return cls(
            requests=Counter("guardproxy_requests_total", "Requests answered, by route, model, final verdict "
                             "and status code.", ("route", "model", "verdict", "status_code"), registry=registry),
            request_duration=histogram("guardproxy_request_duration_seconds", "Whole request, from arrival until "
                                       "the last byte (streams: until the stream ends).", ("route",),
                                       LATENCY_BUCKETS),
            overhead=histogram("guardproxy_overhead_seconds", "Time the proxy itself added, upstream excluded: "
                               "input = arrival until the upstream call (or the answer, if none), output = "
                               "output guards and rewriting.", ("route", "stage"), OVERHEAD_BUCKETS),
            upstream_duration=histogram("guardproxy_upstream_duration_seconds", "From sending the request upstream "
                                        "until its answer was read (streams: until it ended, output stage "
                                        "excluded).", ("route",), LATENCY_BUCKETS),
            time_to_first_token=histogram("guardproxy_time_to_first_token_seconds", "Streamed answers: from arrival "
                                          "until the first content was sent to the client.", ("route",),
                                          LATENCY_BUCKETS),
            guard_duration=histogram("guardproxy_guard_duration_seconds", "One guard's run over a stage's text "
                                     "(streams: per release).", ("guard", "stage"), GUARD_BUCKETS),
            violations=Counter("guardproxy_violations_total", "Guard findings, one per finding, with the action and "
                               "mode the policy gave them.",
                               ("policy", "chain", "guard", "stage", "action", "mode", "label"), registry=registry),
            guard_errors=Counter("guardproxy_guard_errors_total", "Guards that raised (exception) or overran "
                                 "timeout_ms (timeout); outcome is what on_error did: blocked or bypassed.",
                                 ("guard", "stage", "kind", "outcome"), registry=registry),
            upstream_errors=Counter("guardproxy_upstream_errors_total", "Upstream failures, one per request: "
                                    "unreachable, timeout (no byte for --upstream-timeout, also mid-stream), "
                                    "error (connection broke), incomplete (a stream closed before its last "
                                    "event), bad_stream (a guarded stream's event was not JSON), redirect (a 3xx "
                                    "the proxy neither follows nor relays), status_429, status_5xx.", ("kind",),
                                    registry=registry),
            upstream_retries=Counter("guardproxy_upstream_retries_total", "Upstream calls retried "
                                     "(--upstream-retries), by why: unreachable, connect_timeout, status_502, "
                                     "status_503.", ("kind",), registry=registry),
            policy_reloads=Counter("guardproxy_policy_reloads_total", "Policy reloads by result: ok or rejected "
                                   "(the previous policy stayed in force).", ("result",), registry=registry),
            policy_info=Gauge("guardproxy_policy_info", "1 for each policy in force, with the digest of the loaded "
                              "files as version.", ("policy", "version"), registry=registry,
                              multiprocess_mode="livemax"),
            tokens=Counter("guardproxy_tokens_total", "Tokens the upstream reported in usage; direction input "
                           "(prompt) or output (completion).", ("model", "direction"), registry=registry),
            client_requests=Counter("guardproxy_client_requests_total", "Requests by client key (its name in the "
                                    "keys file), route, final verdict and status code; only with --keys-file.",
                                    ("key", "route", "verdict", "status_code"), registry=registry),
            auth_failures=Counter("guardproxy_auth_failures_total", "Requests refused for their key: 401 (missing "
                                  "or unknown key), 403 (a key that may not do this).", ("route", "status_code"),
                                  registry=registry),
            audit_records=Counter("guardproxy_audit_records_total", "Audit records written (--audit).",
                                  registry=registry),
            audit_dropped=Counter("guardproxy_audit_dropped_total", "Audit records lost: the writer's queue was "
                                  "full, or a record could not be written.", registry=registry),
            shadow_decisions=Counter("guardproxy_shadow_decisions_total", "Stages a shadow policy ran on live "
                                     "traffic, by the live and the shadow verdict of the stage.",
                                     ("policy", "shadow_policy", "stage", "live_verdict", "shadow_verdict"),
                                     registry=registry),
            shadow_dropped=Counter("guardproxy_shadow_dropped_total", "Sampled requests the shadow policy did "
                                   "not run on: its queue was full, or it failed.", registry=registry),
        )
