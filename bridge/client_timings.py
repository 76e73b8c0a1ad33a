"""Browser-side timings of the status page's own API calls (promflux-fetch.js posts them).

The same all-or-nothing contract as the exporter's endpoint: a malformed or oversized batch
gets a 400 naming the problem and records nothing; routes outside the bridge's own
templates are recorded as ``<unmatched>``.
"""

from __future__ import annotations

import math
from typing import Literal

from prometheus_client import CollectorRegistry, Histogram
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

MAX_BODY_BYTES = 64 * 1024
UNMATCHED = "<unmatched>"
ROUTES = frozenset({"/", "/api/targets", "/api/status", "/healthz", "/metrics"})


class _Timing(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    route: str
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    status: int = Field(ge=0, le=599)
    duration_ms: float = Field(ge=0, le=600_000)

    @field_validator("duration_ms", mode="before")
    @classmethod
    def _finite_number(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)  # JSON integers are fine; strict mode would refuse them
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("must be finite")
        return value


class _Batch(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    timings: list[_Timing] = Field(max_length=200)


class ClientTimings:
    """Validates batches and records them in the bridge's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.histogram = Histogram(
            "promflux_bridge_client_request_duration_seconds",
            "The status page's API calls, timed in the browser.",
            ["route", "method", "status"], registry=registry)

    def record(self, body: bytes) -> tuple[int, str]:
        """(204, "") or (400, why)."""
        if len(body) > MAX_BODY_BYTES:
            return 400, f"body over {MAX_BODY_BYTES} bytes"
        try:
            batch = _Batch.model_validate_json(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "body"
            return 400, f"{where}: {first['msg']}"
        for t in batch.timings:
            route = t.route if t.route in ROUTES else UNMATCHED
            self.histogram.labels(route, t.method, str(t.status)).observe(t.duration_ms / 1000)
        return 204, ""
