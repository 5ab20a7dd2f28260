"""Medications as the cabinet sees them: identity (NDC and alternates), names, schedule and safety flags."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from controller.domain.ndc import Ndc


class DeaSchedule(StrEnum):
    """DEA controlled-substance schedule; the ``N`` suffix marks non-narcotic substances."""

    NONE = ""
    II = "II"
    IIN = "IIN"
    III = "III"
    IIIN = "IIIN"
    IV = "IV"
    V = "V"

    @property
    def is_controlled(self) -> bool:
        return self is not DeaSchedule.NONE

    @property
    def is_schedule_ii(self) -> bool:
        """Schedule II items get separate records, blind counts and double counts on fills."""
        return self in (DeaSchedule.II, DeaSchedule.IIN)

    @classmethod
    def parse(cls, text: str) -> DeaSchedule:
        """Accept our spelling ("II", "IIN") and the FDA directory's ("CII", "CIII"); blank means none."""
        cleaned = text.strip().upper()
        if cleaned.startswith("C") and cleaned[1:2] in ("I", "V"):
            cleaned = cleaned[1:]
        try:
            return cls(cleaned)
        except ValueError:
            raise ValueError(
                f"unknown DEA schedule {text!r}; expected one of II, IIN, III, IIIN, IV, V or blank"
            ) from None


_ORAL_SOLID_FORMS = ("tablet", "capsule")


@dataclass(frozen=True, slots=True)
class Medication:
    """One formulary item. ``ndc`` is the primary package NDC; ``alternate_ndcs`` stand for the same item
    (other package sizes, relabelers that keep the maker's barcode, interchangeable generics)."""

    id: str
    ndc: Ndc
    generic_name: str
    display_name: str
    strength: str
    dosage_form: str
    route: str
    unit: str
    brand_name: str = ""
    package: str = ""
    dea_schedule: DeaSchedule = DeaSchedule.NONE
    high_alert: bool = False
    lasa: bool = False
    hazardous: bool = False
    refrigerated: bool = False
    neuromuscular_blocker: bool = False
    critical_override: bool = False  # removable without an order in critical-override mode (rescue drugs)
    alternate_ndcs: tuple[Ndc, ...] = field(default=())

    @property
    def is_controlled(self) -> bool:
        return self.dea_schedule.is_controlled

    @property
    def is_oral_solid(self) -> bool:
        form = self.dosage_form.lower()
        return any(word in form for word in _ORAL_SOLID_FORMS)

    @property
    def all_ndcs(self) -> tuple[Ndc, ...]:
        return (self.ndc, *self.alternate_ndcs)

    def carries_ndc10(self, digits: str) -> bool:
        """True when a scanned package's 10 NDC digits (from a UPC-A or GTIN) are this item's NDC or an alternate."""
        return any(n.is_ten_digit and n.ndc10 == digits for n in self.all_ndcs)

    def search_names(self) -> tuple[str, ...]:
        return tuple(name for name in (self.generic_name, self.brand_name, self.display_name) if name)
