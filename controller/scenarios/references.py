"""Load-time reference checks: every user, patient, order, item, drawer, pocket and compartment a scenario names must
exist in its cabinet (or, for patients and orders, arrive by an HL7 message in an earlier step), so a typo fails
when the file is read, not halfway through a twelve-hour shift.

Responsible for: the cabinet document's own cross-references (pocket items in the formulary, orders for known
patients and items, ``loaded_by`` a user), and each step's and expectation's ids, in step order. Not responsible
for the shape of the file (the schema) or for whether a rule will allow the step (that is what the run shows).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from controller.scenarios.cabinet_doc import CabinetIndex
from controller.scenarios.problems import FieldPath, Problem
from controller.scenarios.yaml_source import YamlDocument


class ReferenceChecker:
    def __init__(self, file: Path, doc: YamlDocument, index: CabinetIndex) -> None:
        self.file = file
        self.doc = doc
        self.index = index
        self.problems: list[Problem] = []
        self.patients = set(index.patients)  # grows with HL7 ADT messages, step by step
        self.orders = set(index.orders)  # grows with HL7 RDE messages

    # --- entry points ---------------------------------------------------------------------------------------------

    def check(self, data: Mapping[str, Any]) -> list[Problem]:
        cabinet = data.get("cabinet")
        if isinstance(cabinet, Mapping):
            self._cabinet(cabinet)
        policy = data.get("policy") or {}
        for n, item in enumerate(policy.get("override_items", [])):
            self._known(("policy", "override_items", n), item, self.index.items, "formulary item")
        for n, step in enumerate(data.get("steps", [])):
            self._step(("steps", n), step)
        return self.problems

    # --- the cabinet document -------------------------------------------------------------------------------------

    def _cabinet(self, raw: Mapping[str, Any]) -> None:
        at: FieldPath = ("cabinet",)
        if "extends" not in raw:
            for key in ("care_area", "cabinet"):
                if key not in raw:
                    self._problem(at, f"a cabinet of its own needs {key!r} (or write extends: demo)")
        if "loaded_by" in raw:
            self._known((*at, "loaded_by"), raw["loaded_by"], self.index.users, "user")
        seen: dict[str, FieldPath] = {}
        for d, drawer in enumerate(raw.get("drawer", [])):
            for p, pocket in enumerate(drawer.get("pocket", [])):
                path: FieldPath = (*at, "drawer", d, "pocket", p)
                pocket_id = pocket["id"]
                if pocket_id in seen or pocket_id in self.index.drawers:
                    self._problem((*path, "id"), f"id {pocket_id!r} is used twice")
                seen[pocket_id] = path
                if "item" in pocket:
                    self._known((*path, "item"), pocket["item"], self.index.items, "formulary item")
        for n, order in enumerate(raw.get("order", [])):
            self._known((*at, "order", n, "mrn"), order["mrn"], self.index.patients, "patient")
            self._known((*at, "order", n, "item"), order["item"], self.index.items, "formulary item")

    # --- steps ----------------------------------------------------------------------------------------------------

    def _step(self, at: FieldPath, step: Mapping[str, Any]) -> None:
        if "actor" in step:
            self._user((*at, "actor"), step["actor"])
        for action, value in step.items():
            check = self._ACTIONS.get(action)
            if check is not None:
                check(self, (*at, action), value)
        if isinstance(step.get("expect"), Mapping):
            self._expect((*at, "expect"), step["expect"])

    def _user_ref(self, at: FieldPath, value: Any) -> None:
        if isinstance(value, Mapping):
            self._user((*at, "user"), value["user"])
        else:
            self._user(at, value)

    def _item_choice(self, at: FieldPath, value: Mapping[str, Any]) -> None:
        if "patient" in value:
            self._patient((*at, "patient"), value["patient"])
        if "order" in value:
            self._known((*at, "order"), value["order"], self.orders, "order")
        if "item" in value:
            self._known((*at, "item"), value["item"], self.index.items, "formulary item")
        if "pocket" in value:
            self._pocket((*at, "pocket"), value["pocket"])

    def _package(self, at: FieldPath, value: Mapping[str, Any]) -> None:
        if "item" in value:
            self._known((*at, "item"), value["item"], self.index.items, "formulary item")
        shapes = [k for k in ("item", "ndc", "barcode") if k in value]
        if len(shapes) != 1:
            self._problem(at, "name the package by exactly one of item, ndc or barcode")
        elif "barcode" not in value and value.get("form", "gs1") == "gs1":
            missing = [k for k in ("lot", "expiry", "serial") if k not in value]
            if missing:
                self._problem(
                    at,
                    f"a GS1 DataMatrix needs lot, expiry and serial (missing {', '.join(missing)}); "
                    "write form: upc for a plain UPC-A",
                )

    def _lid(self, at: FieldPath, pocket_id: Any) -> None:
        if self._pocket(at, pocket_id):
            place = self.index.pockets[pocket_id]
            if not place.has_lid:
                self._problem(
                    at,
                    f"pocket {pocket_id} has no lid ({place.drawer_kind.value} drawer "
                    f"{place.drawer_id}): open the drawer instead",
                )

    def _fault(self, at: FieldPath, value: Mapping[str, Any]) -> None:
        kinds = [
            k
            for k in ("jam", "stuck_sensor", "lock_fails", "miscount", "power_loss", "link_down", "paper_out")
            if k in value
        ]
        if len(kinds) != 1:
            self._problem(
                at,
                "give exactly one fault a step (jam, stuck_sensor, lock_fails, miscount, power_loss, "
                "link_down or paper_out)",
            )
        if "stuck_sensor" in value and not {"sensor", "value"} <= set(value):
            self._problem(at, "stuck_sensor needs sensor (open or closed) and value (true or false)")
        elif ("sensor" in value or "value" in value) and "stuck_sensor" not in value:
            self._problem(at, "sensor and value go with stuck_sensor")
        for key in ("jam", "stuck_sensor"):
            if key in value:
                self._known((*at, key), value[key], self.index.drawers, "drawer")
        if "lock_fails" in value:
            self._known((*at, "lock_fails"), value["lock_fails"], self.index.compartments, "drawer or lidded pocket")

    def _repair(self, at: FieldPath, value: Mapping[str, Any]) -> None:
        for key in ("jam", "sensor"):
            if key in value:
                self._known((*at, key), value[key], self.index.drawers, "drawer")
        if "lock" in value:
            self._known((*at, "lock"), value["lock"], self.index.compartments, "drawer or lidded pocket")

    def _hl7(self, at: FieldPath, text: str) -> None:
        """Patients and orders an HL7 message brings: later steps may name them."""
        segments = [line.split("|") for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n") if line]
        if not segments or segments[0][0] != "MSH":
            self._problem(at, "an HL7 message starts with its MSH segment")
            return
        for fields in segments:
            if fields[0] == "PID" and len(fields) > 3 and fields[3]:
                self.patients.add(fields[3].split("^")[0])
            elif fields[0] == "ORC" and len(fields) > 2 and fields[2] and fields[1] in ("NW", "XO", "RL"):
                self.orders.add(fields[2].split("^")[0])

    def _patient_step(self, at: FieldPath, value: Any) -> None:
        self._patient(at, value)

    def _compartment_of(self, at: FieldPath, value: Mapping[str, Any]) -> None:
        self._known((*at, "compartment"), value["compartment"], self.index.compartments, "drawer or lidded pocket")

    def _pocket_of(self, at: FieldPath, value: Mapping[str, Any]) -> None:
        if "pocket" in value:
            self._pocket((*at, "pocket"), value["pocket"])

    def _override_review(self, at: FieldPath, value: Mapping[str, Any]) -> None:
        if "user" in value:
            self._user((*at, "user"), value["user"])
        if "item" in value:
            self._known((*at, "item"), value["item"], self.index.items, "formulary item")

    def _count(self, at: FieldPath, value: Mapping[str, Any]) -> None:
        for n, pocket in enumerate(value.get("pockets", [])):
            self._pocket((*at, "pockets", n), pocket)

    def _recall(self, at: FieldPath, value: Mapping[str, Any]) -> None:
        if "item" in value:
            self._known((*at, "item"), value["item"], self.index.items, "formulary item")
        elif "ndc" not in value:
            self._problem(at, "name the recalled product by item or ndc")

    def _fill(self, at: FieldPath, value: Mapping[str, Any]) -> None:
        self._known((*at, "item"), value["item"], self.index.items, "formulary item")
        if "bottle" in value:
            self._package((*at, "bottle"), value["bottle"])

    def _drawer(self, at: FieldPath, value: Any) -> None:
        self._known(at, value, self.index.drawers, "drawer")

    _ACTIONS: Mapping[str, Callable[[ReferenceChecker, FieldPath, Any], None]] = {
        "login": _user_ref,
        "witness": _user_ref,
        "restock_witness": _user_ref,
        "pull": _item_choice,
        "select": _item_choice,
        "start_pull": _patient_step,
        "account_for": _compartment_of,
        "resolve_discrepancy": _pocket_of,
        "review_discrepancy": _pocket_of,
        "review_override": _override_review,
        "restock": _pocket_of,
        "pocket_count": _pocket_of,
        "start_count": _count,
        "recall": _recall,
        "review_quarantine": _pocket_of,
        "fill": _fill,
        "scan_removed": _package,
        "scan_package": _package,
        "present": _package,
        "open": _drawer,
        "close": _drawer,
        "lift_lid": _lid,
        "close_lid": _lid,
        "fault": _fault,
        "repair": _repair,
        "hl7": _hl7,
    }

    # --- expectations ---------------------------------------------------------------------------------------------

    def _expect(self, at: FieldPath, expect: Mapping[str, Any]) -> None:
        for pocket in expect.get("inventory", {}):
            self._pocket((*at, "inventory", pocket), pocket)
        for key in ("ledger", "ledger_since_start", "alarms"):
            for n, entry in enumerate(expect.get(key, [])):
                self._entry((*at, key, n), entry)
        for n, found in enumerate(expect.get("discrepancies", [])):
            where: FieldPath = (*at, "discrepancies", n)
            if "pocket" in found:
                self._pocket((*where, "pocket"), found["pocket"])
            if "item" in found:
                self._known((*where, "item"), found["item"], self.index.items, "formulary item")
            if "raised_by" in found:
                self._user((*where, "raised_by"), found["raised_by"])
        for compartment in expect.get("compartments", {}):
            where = (*at, "compartments", compartment)
            self._known(where, compartment, self.index.compartments, "drawer or lidded pocket")
        if expect.get("logged_in") is not None:
            self._user((*at, "logged_in"), expect["logged_in"])

    def _entry(self, at: FieldPath, entry: Mapping[str, Any]) -> None:
        for key in ("actor", "witness"):
            if entry.get(key) is not None:
                self._user((*at, key), entry[key])
        if entry.get("item") is not None:
            self._known((*at, "item"), entry["item"], self.index.items, "formulary item")
        if entry.get("pocket") is not None:
            self._pocket((*at, "pocket"), entry["pocket"])
        if entry.get("patient") is not None:
            self._patient((*at, "patient"), entry["patient"])

    # --- one id ---------------------------------------------------------------------------------------------------

    def _user(self, at: FieldPath, value: Any) -> bool:
        return self._known(at, value, self.index.users, "user")

    def _patient(self, at: FieldPath, value: Any) -> bool:
        return self._known(at, value, self.patients, "patient")

    def _pocket(self, at: FieldPath, value: Any) -> bool:
        return self._known(at, value, self.index.pockets, "pocket")

    def _known(self, at: FieldPath, value: Any, known: Iterable[str], what: str) -> bool:
        names = sorted(known)
        if value in names:
            return True
        close = difflib.get_close_matches(str(value), names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        listed = ", ".join(names[:12]) + (" ..." if len(names) > 12 else "")
        where = "this cabinet's" if what != "formulary item" else "the formulary's"
        self._problem(at, f"unknown {what} {value!r}{hint} ({where} {what}s: {listed or 'none'})")
        return False

    def _problem(self, at: FieldPath, message: str) -> None:
        self.problems.append(Problem(self.file, self.doc.line_of(at), at, message))
