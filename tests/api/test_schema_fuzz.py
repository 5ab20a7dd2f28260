"""A property-based run against the API's own OpenAPI document (schemathesis): generated requests, valid and
invalid, to every operation over real HTTP (uvicorn on loopback) with a nurse's token, against the running cabinet
on the simulators. No answer may be a 500, and every answer must match what the document declares: its status
codes, its content types (problem+json for errors) and its response schemas. Bounded: a few examples an
operation, derandomised so a failure reproduces."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from controller.api.app import create_app
from controller.api.settings import ApiSettings
from controller.domain.clock import FixedClock
from tests.api.rig import START, cabinet_settings, running_simulators, seed_demo, serve_in_thread

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp_path = Path(tmp_path_factory.mktemp("fuzz"))
    clock = FixedClock(START)
    seed_demo(f"sqlite:///{tmp_path / 'adc.db'}", clock)
    with running_simulators() as sims:
        app = create_app(cabinet_settings(tmp_path, sims), ApiSettings(sim_control=sims.control_url), clock=clock)
        with serve_in_thread(app) as base_url:
            import httpx

            for _ in range(300):
                if httpx.get(f"{base_url}/ready").status_code == 200:
                    break
            answer = httpx.post(f"{base_url}/api/v1/cabinet/session", json={"user_id": "NURSE1", "pin": "1111"})
            assert answer.status_code == 200, answer.text
            yield {"base_url": base_url, "token": answer.json()["data"]["token"]}


def operations(base_url: str) -> list[Any]:
    loaded = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    # A logout would end the session the run uses; everything else is fair game.
    kept = loaded.exclude(method="DELETE", path="/api/v1/cabinet/session")
    found = []
    for result in kept.get_all_operations():
        assert isinstance(result, Ok), f"the document has an operation schemathesis cannot read: {result}"
        found.append(result.ok())
    return found


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_error_and_every_answer_as_documented(live: dict[str, Any], mode: GenerationMode) -> None:
    headers = {"Authorization": f"Bearer {live['token']}"}
    found = operations(live["base_url"])
    assert len(found) > 60
    calls = 0

    for operation in found:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=4, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            nonlocal calls
            calls += 1
            case.call_and_validate(base_url=live["base_url"], headers=headers, checks=CHECKS, timeout=10)

        check()
    assert calls > 150
