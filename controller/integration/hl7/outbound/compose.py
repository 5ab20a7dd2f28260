"""Composing the outbound messages of one dose entry: pure text, no I/O.

Each ``dose.removed``, ``dose.returned`` and ``dose.wasted`` entry becomes (HL7 v2.5.1, standard separators,
segments ended by CR)::

    MSH|^~\\&|OPEN-ADC|<cabinet>|||<entry time>||RDS^O13^RDS_O13|L<seq>-RDS|P|2.5.1||||||UNICODE UTF-8
    PID|1||<patient id>^^^^MR||<family>^<given>||<birth date>
    PV1|1|U|<care area>^<room>^<bed>||||||||||||||||<visit number>      (when the patient has an active encounter)
    ORC|RE|<placer order number>|<filler order number>||||||<entry time>|<user>
    RXD|1|<NDC>^<item>^NDC|<entry time>|<units>|<unit>|^<dosage form>|<order id>||<note>|<user>|…|<lot>|<expiry>

    MSH|…|DFT^P03^DFT_P03|L<seq>-DFT|P|2.5.1
    EVN|P03|<entry time>
    PID|…  PV1|…
    FT1|1|<cabinet>-<seq>||<entry time>|<entry time>|CG or CD|<item id>^<item>^99ADC||<item>|<units>|||<cabinet>
       |||<care area>^<room>^<bed>||||<user>||||<filler or order number>|<user>|||||<NDC-11>^<item>^NDC

- removal: RXD-4 = units taken; DFT with FT1-6 ``CG`` (charge).
- return: RXD-4 = minus the units returned, RXD-9 says where they went; DFT with FT1-6 ``CD`` (credit).
- waste: RXD-4 = 0 (no unit left the cabinet: the waste is part of a dose already removed and charged), RXD-9
  says what was wasted, why and who witnessed; no DFT (the charge does not change).
- MSH-10 is ``L<ledger seq>-RDS`` / ``-DFT``: fixed when queued, unique per cabinet (MSH-4), at most 20 characters.
- MSH-11 is ``T`` (training) for an entry made against simulated hardware, ``P`` otherwise: a simulated dose must
  never be billed as a real one.
- RXD-2 carries the package NDC as printed (hyphenated); FT1-29 the 11-digit 5-4-2 billing form. An item with no
  NDC is sent under its formulary code (coding system ``99ADC``, local).
- PV1-2 (patient class) is ``U``: the cabinet does not know it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from controller.domain.ndc import Ndc
from controller.domain.transactions import EventType
from controller.errors import InvalidIdentifierError
from controller.integration.hl7.ack import escape, timestamp
from controller.integration.hl7.outbound.facts import DoseFacts, PatientFacts, decimal_text

VERSION = "2.5.1"
DISPENSE = "RDS^O13"
CHARGE = "DFT^P03"
LOCAL_CODES = "99ADC"
# FT1-6 transaction type (HL7 table 0017) per entry; a waste changes no charge.
TRANSACTION_TYPE = {EventType.DOSE_REMOVED: "CG", EventType.DOSE_RETURNED: "CD"}


@dataclass(frozen=True, slots=True)
class Composed:
    message_type: str
    control_id: str
    payload: str


def control_id(seq: int, kind: str) -> str:
    return f"L{seq}-{kind}"


def compose(facts: DoseFacts, *, application: str = "OPEN-ADC") -> list[Composed]:
    """The messages one entry queues, in the order they must be delivered."""
    messages = [Composed(DISPENSE, control_id(facts.seq, "RDS"), dispense(facts, application=application))]
    if facts.event in TRANSACTION_TYPE:
        messages.append(Composed(CHARGE, control_id(facts.seq, "DFT"), charge(facts, application=application)))
    return messages


def dispense(facts: DoseFacts, *, application: str = "OPEN-ADC") -> str:
    when = timestamp(facts.at)
    units = {EventType.DOSE_REMOVED: facts.units, EventType.DOSE_RETURNED: -facts.units}.get(facts.event, 0)
    segments = [
        _msh(facts, application, "RDS^O13^RDS_O13", "RDS"),
        *_patient(facts.patient),
        _segment(
            "ORC",
            "RE",
            escape(facts.placer_number or facts.order_id),
            escape(facts.filler_number),
            *([""] * 5),
            when,
            escape(facts.actor_id),
        ),  # ORC-9 transaction time, ORC-10 entered by
        _segment(
            "RXD",
            "1",
            _give_code(facts),
            when,
            str(units),
            escape(facts.item.unit),
            f"^{escape(facts.item.dosage_form)}" if facts.item.dosage_form else "",
            escape(facts.order_id),
            "",
            escape(note(facts)),
            escape(facts.actor_id),
            *([""] * 7),  # RXD-11 to RXD-17
            escape(facts.lot_number),
            _date(facts.lot_expiry),
        ),
    ]
    return "\r".join(segments) + "\r"


def charge(facts: DoseFacts, *, application: str = "OPEN-ADC") -> str:
    when = timestamp(facts.at)
    name = escape(facts.item.name or facts.item.id)
    segments = [
        _msh(facts, application, "DFT^P03^DFT_P03", "DFT"),
        _segment("EVN", "P03", when),
        *_patient(facts.patient),
        _segment(
            "FT1",
            "1",
            escape(f"{facts.cabinet_id}-{facts.seq}"),
            "",
            when,
            when,
            TRANSACTION_TYPE[facts.event],
            f"{escape(facts.item.id)}^{name}^{LOCAL_CODES}",
            name,
            "",
            str(facts.units),
            "",
            "",
            escape(facts.cabinet_id),
            "",
            "",
            _location(facts.patient),
            "",
            "",
            "",
            escape(facts.actor_id),
            "",
            "",
            escape(facts.filler_number or facts.order_id),
            escape(facts.actor_id),
            "",
            "",
            "",
            "",
            f"{billing_ndc(facts.item.ndc)}^{name}^NDC" if facts.item.ndc else "",
        ),
    ]
    return "\r".join(segments) + "\r"


def note(facts: DoseFacts) -> str:
    """RXD-9: what happened at the cabinet, for a person reading the dispense record."""
    where = f"{facts.cabinet_id} pocket {facts.pocket_id}" if facts.pocket_id else facts.cabinet_id
    if facts.event is EventType.DOSE_RETURNED:
        text = f"returned {facts.units} {facts.item.unit} to {facts.reason_code or 'the cabinet'} at {where}"
    elif facts.event is EventType.WASTE_RECORDED:
        amount = decimal_text(facts.waste_amount)
        text = f"wasted {amount} {facts.waste_unit}".rstrip() + f" at {facts.cabinet_id}"
        if facts.reason_code:
            text += f", reason {facts.reason_code}"
        if facts.details.get("partial"):
            text += ", partial dose"
    else:
        text = f"removed from {where}"
        if facts.details.get("override"):
            text += f", override ({facts.reason_code or 'critical override'})"
    if facts.witness_id:
        text += f", witness {facts.witness_id}"
    if facts.note:
        text += f"; {facts.note}"
    return text


def billing_ndc(ndc: str) -> str:
    """The 11-digit 5-4-2 form billing systems expect; the NDC as held when it has none (a 12-digit NDC)."""
    try:
        return Ndc.parse(ndc).ndc11
    except InvalidIdentifierError:
        return escape(ndc)


def _give_code(facts: DoseFacts) -> str:
    name = escape(facts.item.name)
    if facts.item.ndc:
        return f"{escape(facts.item.ndc)}^{name}^NDC"
    return f"{escape(facts.item.id)}^{name}^{LOCAL_CODES}"


def _msh(facts: DoseFacts, application: str, message_type: str, kind: str) -> str:
    fields = [
        escape(application),
        escape(facts.cabinet_id),
        "",
        "",
        timestamp(facts.at),
        "",
        message_type,
        escape(control_id(facts.seq, kind)),
        "T" if facts.is_simulator else "P",
        VERSION,
        *([""] * 5),
        "UNICODE UTF-8",  # MSH-18: names may hold any character; the bytes on the wire are UTF-8
    ]
    return "MSH|^~\\&|" + "|".join(fields)


def _patient(patient: PatientFacts | None) -> list[str]:
    if patient is None:
        return []
    pid = _segment(
        "PID",
        "1",
        "",
        f"{escape(patient.id)}^^^^MR",
        "",
        f"{escape(patient.family_name)}^{escape(patient.given_name)}".rstrip("^"),
        "",
        _date(patient.birth_date),
    )
    if not patient.care_area:
        return [pid]
    return [pid, _segment("PV1", "1", "U", _location(patient), *([""] * 15), escape(patient.visit_number))]


def _location(patient: PatientFacts | None) -> str:
    if patient is None or not patient.care_area:
        return ""
    return "^".join(escape(part) for part in (patient.care_area, patient.room, patient.bed)).rstrip("^")


def _date(value: date | None) -> str:
    return value.strftime("%Y%m%d") if value is not None else ""


def _segment(name: str, *fields: str) -> str:
    return "|".join((name, *fields)).rstrip("|")
