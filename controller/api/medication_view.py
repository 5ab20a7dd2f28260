"""A formulary item as the API shows it (no stock quantities: a nurse's blind count must stay blind)."""

from __future__ import annotations

from typing import Any

from controller.domain.medication import Medication


def medication_view(medication: Medication) -> dict[str, Any]:
    return {
        "item_id": medication.id,
        "display_name": medication.display_name,
        "generic_name": medication.generic_name,
        "brand_name": medication.brand_name,
        "strength": medication.strength,
        "dosage_form": medication.dosage_form,
        "route": medication.route,
        "unit": medication.unit,
        "ndc": str(medication.ndc),
        "dea_schedule": medication.dea_schedule.value,
        "controlled": medication.is_controlled,
        "high_alert": medication.high_alert,
        "lasa": medication.lasa,
        "hazardous": medication.hazardous,
        "refrigerated": medication.refrigerated,
        "neuromuscular_blocker": medication.neuromuscular_blocker,
    }
