"""Prometheus metrics of one app: requests and latencies by route template, engine command outcomes by code.

One registry per app (not the library's global one), so two apps in one process (tests, the benchmark) never
share counters. Labels are route templates and catalogue codes only: never a path with an id in it.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from controller.engine.results import CommandResult

__all__ = ["CONTENT_TYPE_LATEST", "ApiMetrics"]


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "adc_api_requests", "HTTP requests answered", ("method", "route", "status"), registry=self.registry
        )
        self.latency = Histogram(
            "adc_api_request_seconds",
            "time to answer a request",
            ("method", "route"),
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )
        self.commands = Counter(
            "adc_engine_commands", "engine commands run through the API", ("command", "outcome"), registry=self.registry
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def observe_command(self, command: object, result: CommandResult[Any]) -> None:
        self.commands.labels(type(command).__name__, "ok" if result.ok else str(result.code)).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
