"""GS1 element strings and NDC barcodes: the vectors in ../shared/external/gs1/ (others' tests: biip, zxing-cpp,
openFDA), separators a scanner dropped, day 00, and the NDC inside a UPC-A or a GTIN-14."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest

from controller.domain.ndc import Ndc, gtin14_from_ndc, upca_from_ndc
from controller.domain.package_label import LabelStatus, parse_element_string, read_label
from controller.errors import InvalidIdentifierError

GS = "\x1d"


def rows(shared_external: Path, name: str) -> list[dict[str, str]]:
    with (shared_external / "gs1" / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def hri(text: str) -> str:
    """The strict reading (the vectors' own): a field without a separator after it runs to the end."""
    return "".join(f"({e.ai.ai}){e.value}" for e in parse_element_string(text, separators_kept=True))


def test_element_string_vectors(shared_external: Path) -> None:
    checked = 0
    for row in rows(shared_external, "gs1_vectors.tsv"):
        if row["kind"] != "gs1_message" or "|" in row["input"]:  # '|' rows need a custom separator: not ours
            continue
        text = row["input"].replace("<GS>", GS)
        if row["expected"].startswith("NOT"):
            with pytest.raises(InvalidIdentifierError) as refused:
                hri(text)
            assert refused.value.code == "identifier.bad_gs1"
        else:
            assert hri(text) == row["expected"], row["input"]
        checked += 1
    assert checked >= 9


def test_strict_vector_is_ambiguous_when_a_scanner_may_have_dropped_the_separator(shared_external: Path) -> None:
    """biip's vector ``...10032915210526`` is lot ``032915210526`` by the standard, but from a scanner that may drop
    GS it may just as well be lot ``0329`` and best-before ``(15)210526``: refused, naming both."""
    text = next(r["input"] for r in rows(shared_external, "gs1_vectors.tsv") if r["input"].endswith("10032915210526"))
    with pytest.raises(InvalidIdentifierError) as refused:
        parse_element_string(text)
    assert refused.value.code == "identifier.ambiguous_gs1"
    assert "reads as (01)07032069804988(10)032915210526 or as (01)07032069804988(10)0329(15)210526" in (
        refused.value.detail
    )


def test_expiry_vectors_day_00_is_the_last_day_of_the_month(shared_external: Path) -> None:
    for row in rows(shared_external, "gs1_vectors.tsv"):
        if row["kind"] != "gs1_date":
            continue
        text = "01" + gtin14_from_ndc(Ndc.parse("0069-4200-30")) + row["input"]
        label = read_label(text, "]d2")
        if row["expected"] == "ERROR":
            assert label.status is LabelStatus.UNREADABLE and label.problem is not None
            assert label.problem.code == "identifier.bad_gs1"
        else:
            element = dict(label.elements)
            assert row["input"][2:] == element[row["input"][:2]]
            if row["input"].startswith("17"):
                assert label.expiry == date.fromisoformat(row["expected"])


def test_symbology_prefixed_vectors(shared_external: Path) -> None:
    by_input = {r["input"]: r for r in rows(shared_external, "gs1_vectors.tsv") if r["kind"] == "symbology_prefixed"}
    upc = read_label("0123601057072", "]E0")  # UPC-A, number system 1: a valid code that is not an NDC
    assert "]E00123601057072" in by_input and upc.status is LabelStatus.NOT_AN_NDC and upc.gtin == "00123601057072"
    gs1_128 = read_label("010590123412345715210526", "]C1")
    assert "]C1010590123412345715210526" in by_input
    assert (gs1_128.gtin, gs1_128.status) == ("05901234123457", LabelStatus.NOT_AN_NDC)
    databar = read_label("0100123456789012", "]e0")
    assert databar.gtin == "00123456789012"
    link = read_label("https://example.com/01/614141123452/10/ABC123?15=250330", "]Q3")
    assert (link.gtin, link.lot) == ("00614141123452", "ABC123")


def test_upc_vectors(shared_external: Path) -> None:
    for row in rows(shared_external, "gs1_vectors.tsv"):
        if row["kind"] != "upc" or len(row["input"]) != 12:
            continue
        label = read_label(row["input"], "]E0")
        if row["expected"].startswith("ERROR"):
            assert (
                label.status is LabelStatus.UNREADABLE and label.gtin is None
            )  # a failed check digit is not passed on
        else:
            assert label.status is LabelStatus.NOT_AN_NDC  # number system 0


def test_ndc_barcode_vectors(shared_external: Path) -> None:
    """Every real barcode value with a valid check digit yields exactly the NDC10 it embeds (or none); the UPC-A and
    GTIN-14 derived from each printed NDC read back to it."""
    checked = 0
    for row in rows(shared_external, "ndc_upc_gtin_vectors.tsv"):
        if row["derived_upca_12"]:
            assert read_label(row["derived_upca_12"], "]E0").ndc10 == row["ndc10_digits"]
            gs1 = read_label(f"01{row['derived_gtin14']}17271200", "]d2")
            assert (gs1.ndc10, gs1.expiry) == (row["ndc10_digits"], date(2027, 12, 31))
        barcode = row["barcode_value_in_source"]
        if barcode.isdigit() and len(barcode) in (12, 13, 14):
            label = read_label(barcode, "]E0")
            if row["barcode_check_digit_valid"] == "yes":
                assert label.ndc10 == (row["barcode_embeds_ndc10"] or None), barcode
            else:
                assert label.status is LabelStatus.UNREADABLE and label.ndc10 is None
            checked += 1
    assert checked >= 10


# -- separators a scanner dropped ---------------------------------------------------------------------------------

GTIN = gtin14_from_ndc(Ndc.parse("0409-1316-32"))


@pytest.mark.parametrize(
    ("text", "lot", "serial", "expiry"),
    [
        (f"01{GTIN}17271231" + f"10LOTA{GS}21SER9", "LOTA", "SER9", date(2027, 12, 31)),
        (f"01{GTIN}1727120010LOTA", "LOTA", None, date(2027, 12, 31)),  # variable field last: nothing swallowed
        (f"01{GTIN}172712001" + "0LOT7B", "LOT7B", None, date(2027, 12, 31)),
        # #794's order: the 20-character serial ends where AI 17 must begin; no other reading exists.
        (f"01{GTIN}21S1ND6MPPFCGG6B869XES1731063010BNav4Cam2", "BNav4Cam2", "S1ND6MPPFCGG6B869XES", date(2031, 6, 30)),
        (f"01{GTIN}10LOTXYZ" + f"{GS}17280200", "LOTXYZ", None, date(2028, 2, 29)),  # leap-year day 00
    ],
)
def test_unambiguous_element_strings(text: str, lot: str, serial: str | None, expiry: date) -> None:
    label = read_label(text, "]d2")
    assert label.problem is None
    assert (label.ndc10, label.lot, label.serial, label.expiry) == ("0409131632", lot, serial, expiry)


@pytest.mark.parametrize(
    "text",
    [
        f"01{GTIN}1727123110ABC21XYZ",  # lot ABC21XYZ, or lot ABC and serial XYZ
        f"01{GTIN}21SER10ABC17271231",  # serial SER10ABC17271231, or serial SER + lot ABC + expiry
    ],
)
def test_dropped_separator_with_two_readings_is_refused(text: str) -> None:
    label = read_label(text, "]d2")
    assert label.status is LabelStatus.UNREADABLE and label.ndc10 is None
    assert label.problem is not None and label.problem.code == "identifier.ambiguous_gs1"
    assert " or as " in label.problem.detail  # both readings are named


def test_a_source_that_keeps_separators_is_taken_at_its_word() -> None:
    """The camera decoder never drops a GS: without one, the lot runs to the end."""
    label = read_label(f"01{GTIN}1727123110ABC21XYZ", "]d2", separators_kept=True)
    assert (label.lot, label.serial) == ("ABC21XYZ", None)


@pytest.mark.parametrize("tail", ["T230571", "ABC4101234567890128"])  # (30) count; (410) ship-to GLN
def test_a_last_field_whose_tail_is_another_element_string_is_refused(tail: str) -> None:
    with pytest.raises(InvalidIdentifierError) as refused:
        parse_element_string(f"01{GTIN}10{tail}")
    assert refused.value.code == "identifier.ambiguous_gs1"


@pytest.mark.parametrize(
    ("text", "symbology", "status", "code"),
    [
        (upca_from_ndc(Ndc.parse("0409-1316-32")), "]E0", LabelStatus.NDC, None),
        ("0" + upca_from_ndc(Ndc.parse("0409-1316-32")), "]E0", LabelStatus.NDC, None),
        (
            upca_from_ndc(Ndc.parse("0409-1316-32"))[:-1] + "0",
            "]E0",
            LabelStatus.UNREADABLE,
            "identifier.bad_check_digit",
        ),
        (f"01{GTIN[:-1]}0" + "17271231", "]d2", LabelStatus.UNREADABLE, "identifier.bad_check_digit"),
        ("4006381333931", "]E0", LabelStatus.NOT_AN_NDC, "identifier.not_an_ndc"),
        ("0109504000059101", "]d2", LabelStatus.NOT_AN_NDC, "identifier.not_an_ndc"),  # no 03 after the indicator
        ("1727123110ABC", "]C1", LabelStatus.NOT_AN_NDC, "identifier.not_an_ndc"),  # no AI 01
        ("garbage", "]d2", LabelStatus.UNREADABLE, "identifier.bad_gs1"),
        ("HelloWorld", "]d1", LabelStatus.NOT_AN_NDC, "identifier.not_an_ndc"),
        (f"01{gtin14_from_ndc(Ndc.parse('0409-1316-32'), 1)}", "]d2", LabelStatus.NDC, None),  # a case: indicator 1
    ],
)
def test_ndc_from_barcodes(text: str, symbology: str, status: LabelStatus, code: str | None) -> None:
    label = read_label(text, symbology)
    assert label.status is status
    assert (label.problem.code if label.problem else None) == code
    assert (label.ndc10 == "0409131632") is (status is LabelStatus.NDC)
    if status is LabelStatus.UNREADABLE:
        assert label.gtin is None  # nothing with a failed check digit is handed on
