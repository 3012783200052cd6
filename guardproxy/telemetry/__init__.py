"""Telemetry: Prometheus metrics and OpenTelemetry traces behind one facade.

What the rest of the proxy touches:

- ``Telemetry``: built once by the app factory (``guardproxy.http.app.create_app``);
- ``RequestTelemetry`` and ``request_telemetry(scope)``: one request's notes
  (model, stage outcomes, upstream timing and failures), reported when the response ends;
- ``RequestObserver`` (used by the proxy's front), ``ObservedEngine``, ``metrics_endpoint``,
  ``Tracing``: wired by the factory.

Guards never see any of it.
"""

from guardproxy.telemetry.exposition import metrics_endpoint
from guardproxy.telemetry.facade import Telemetry
from guardproxy.telemetry.observed_engine import ObservedEngine
from guardproxy.telemetry.observer import RequestObserver
from guardproxy.telemetry.record import RequestTelemetry, request_telemetry
from guardproxy.telemetry.tracing import Tracing

__all__ = ["ObservedEngine", "RequestObserver", "RequestTelemetry", "Telemetry", "Tracing", "metrics_endpoint",
           "request_telemetry"]
