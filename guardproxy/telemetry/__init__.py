"""Telemetry: Prometheus metrics, OpenTelemetry traces and the access log, behind one facade.

What the rest of the proxy touches:

- ``Telemetry``: built once by the app factory (``guardproxy.http.app.create_app``).
  Per request, ``start_trace`` when it arrives (None with tracing off) and
  ``request_finished`` once, with the ``RequestReport``, when the response has ended;
- ``RequestTrace``: the live part of a trace, the upstream call's span
  (``upstream_started``, ``upstream_answered``, ``upstream_ended``);
- ``RequestReport`` and its parts: the plain record the proxy fills in;
- ``Tracing`` and ``metrics_endpoint``: wired by the factory.

Telemetry imports nothing from the proxy or the HTTP layer; guards never see it.
"""

from guardproxy.telemetry.exposition import metrics_endpoint, start_metrics_listener
from guardproxy.telemetry.facade import Telemetry
from guardproxy.telemetry.report import FailureReport, FindingReport, GuardRunReport, RequestReport
from guardproxy.telemetry.tracing import RequestTrace, Tracing

__all__ = ["FailureReport", "FindingReport", "GuardRunReport", "RequestReport", "RequestTrace", "Telemetry",
           "Tracing", "metrics_endpoint", "start_metrics_listener"]
