"""Every resource on its way out: validated with fhir.resources' R4B models (R4 JSON), then dumped as JSON."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class


def render(resource: dict[str, Any]) -> dict[str, Any]:
    model = get_fhir_model_class(str(resource["resourceType"]))
    dumped: dict[str, Any] = model.model_validate(resource).model_dump(mode="json")
    return dumped
