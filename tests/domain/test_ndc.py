"""NDC segmentation and the UPC-A / GTIN-14 arithmetic, checked against others' published values.

The public data in ``../shared/external`` (GS1 and openFDA vectors) is read through the ``shared_external``
fixture, so those tests skip when it is absent; the row ids are read once at collection so that a failure
names its row.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from controller.domain.ndc import (
    Ndc,
    NdcFormat,
    gs1_check_digit,
    gtin14_from_ndc,
    ndc10_from_barcode,
    ndc10_from_gtin,
    ndc10_from_upca,
    upca_from_ndc,
)
from controller.errors import InvalidIdentifierError
from tests.conftest import SHARED_EXTERNAL

# Written out here rather than taken from NdcFormat, so the tests do not lean on the code under test.
SEGMENT_LENGTHS = {
    NdcFormat.F4_4_2: (4, 4, 2),
    NdcFormat.F5_3_2: (5, 3, 2),
    NdcFormat.F5_4_1: (5, 4, 1),
    NdcFormat.F5_4_2: (5, 4, 2),
    NdcFormat.F6_4_2: (6, 4, 2),
}
TEN_DIGIT = (NdcFormat.F4_4_2, NdcFormat.F5_3_2, NdcFormat.F5_4_1)

VECTORS_TSV = "gs1/ndc_upc_gtin_vectors.tsv"
GS1_TSV = "gs1/gs1_vectors.tsv"
OPENFDA_NDJSON = "ndc/openfda_harmonized.small.ndjson"


def refused(code: str, call: Callable[..., object], *args: Any) -> InvalidIdentifierError:
    """Assert that ``call(*args)`` raises InvalidIdentifierError with catalogue code ``code``; return it."""
    with pytest.raises(InvalidIdentifierError) as caught:
        call(*args)
    assert caught.value.code == code, f"{caught.value} (wanted {code})"
    return caught.value


# -- strategies ----------------------------------------------------------------------------------------------


def digit_strings(size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=size, max_size=size)


@st.composite
def ndcs(draw: st.DrawFn, formats: tuple[NdcFormat, ...] = tuple(NdcFormat)) -> Ndc:
    labeler, product, package = SEGMENT_LENGTHS[draw(st.sampled_from(formats))]
    return Ndc(draw(digit_strings(labeler)), draw(digit_strings(product)), draw(digit_strings(package)))


ten_digit_ndcs = ndcs(TEN_DIGIT)


@st.composite
def ndc_barcodes(draw: st.DrawFn) -> str:
    """A valid NDC barcode in each form a scanner hands over: UPC-A, its 13-digit EAN form, or a GTIN-14."""
    ndc = draw(ten_digit_ndcs)
    form = draw(st.sampled_from(("upca", "ean13", "gtin14")))
    if form == "gtin14":
        return gtin14_from_ndc(ndc, draw(st.integers(0, 8)))
    upca = upca_from_ndc(ndc)
    return upca if form == "upca" else "0" + upca


# -- the formats and the value type --------------------------------------------------------------------------


def test_format_names_are_the_printed_layouts() -> None:
    assert [f.value for f in NdcFormat] == ["4-4-2", "5-3-2", "5-4-1", "5-4-2", "6-4-2"]
    for fmt, lengths in SEGMENT_LENGTHS.items():
        assert fmt.segment_lengths == lengths
        assert fmt.digit_count == sum(lengths)
        assert fmt.is_ten_digit == (fmt in TEN_DIGIT)


@pytest.mark.parametrize(
    ("segments", "code"),
    [
        (("0069", "4200", "3"), "identifier.bad_segmentation"),  # 4-4-1 is no format
        (("", "4200", "30"), "identifier.bad_segmentation"),
        (("0069", "42000", "30"), "identifier.bad_segmentation"),
        (("0069", "42O0", "30"), "identifier.not_digits"),  # letter O
        (("0069", "4200", "3 "), "identifier.not_digits"),
        (("٠٠٦٩", "٤٢٠٠", "٣٠"), "identifier.not_digits"),  # Arabic-Indic digits pass str.isdigit()
    ],
)
def test_constructor_refuses_segments_that_fit_no_format(segments: tuple[str, str, str], code: str) -> None:
    error = refused(code, Ndc, *segments)
    assert error.context["value"] == "-".join(segments)


def test_ndc_is_a_frozen_hashable_value() -> None:
    ndc = Ndc.parse("0069-4200-30")
    assert ndc == Ndc("0069", "4200", "30")
    assert len({ndc, Ndc("0069", "4200", "30"), Ndc.parse("00069-4200-30")}) == 2
    with pytest.raises(AttributeError):
        ndc.labeler = "0070"  # type: ignore[misc]


# -- worked examples -----------------------------------------------------------------------------------------


def test_domain_example_0069_4200_30() -> None:
    """DOMAIN.md: NDC 0069-4200-30 → UPC 300694200305 → GTIN 00300694200305."""
    ndc = Ndc.parse("0069-4200-30")
    assert (ndc.labeler, ndc.product, ndc.package) == ("0069", "4200", "30")
    assert ndc.format is NdcFormat.F4_4_2
    assert ndc.is_ten_digit
    assert ndc.digits == ndc.ndc10 == "0069420030"
    assert ndc.ndc11 == "00069420030"
    assert str(ndc) == "0069-4200-30"
    assert upca_from_ndc(ndc) == "300694200305"
    assert gtin14_from_ndc(ndc) == "00300694200305"
    for scanned in ("300694200305", "0300694200305", "00300694200305"):
        assert ndc10_from_barcode(scanned) == "0069420030"
    assert ndc10_from_upca("300694200305") == ndc10_from_upca("0300694200305") == "0069420030"
    assert ndc10_from_gtin("00300694200305") == ndc10_from_gtin("300694200305") == "0069420030"


@pytest.mark.parametrize(
    ("printed", "fmt", "ndc11", "scanned"),
    [
        ("0069-4200-30", NdcFormat.F4_4_2, "00069420030", "0300694200305"),
        ("64679-743-02", NdcFormat.F5_3_2, "64679074302", "0364679743027"),
        ("51672-4117-4", NdcFormat.F5_4_1, "51672411704", "0351672411749"),
    ],
)
def test_one_example_per_ten_digit_format(printed: str, fmt: NdcFormat, ndc11: str, scanned: str) -> None:
    ndc = Ndc.parse(printed)
    assert ndc.format is fmt
    assert ndc.ndc11 == ndc11
    assert "0" + upca_from_ndc(ndc) == scanned  # zxing-cpp returns UPC-A as 13 digits
    assert ndc10_from_barcode(scanned) == ndc.ndc10
    assert ndc in Ndc.candidates_from_ndc10(ndc10_from_barcode(scanned))
    assert ndc in Ndc.candidates_from_ndc11(ndc11)


def test_packaging_indicator_changes_the_check_digit() -> None:
    ndc = Ndc.parse("0069-4200-30")
    gtins = [gtin14_from_ndc(ndc, indicator) for indicator in range(9)]
    assert gtins[0] == "00300694200305"
    assert gtins[1] == "10300694200302"
    assert [g[:13] for g in gtins] == [f"{i}030069420030" for i in range(9)]
    assert all(ndc10_from_gtin(g) == "0069420030" for g in gtins)


# -- parse ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "segments", "fmt"),
    [
        ("0069-4200-30", ("0069", "4200", "30"), NdcFormat.F4_4_2),
        ("10631-106-08", ("10631", "106", "08"), NdcFormat.F5_3_2),
        ("51672-4117-4", ("51672", "4117", "4"), NdcFormat.F5_4_1),
        ("00591-0369-01", ("00591", "0369", "01"), NdcFormat.F5_4_2),
        ("00591036901", ("00591", "0369", "01"), NdcFormat.F5_4_2),  # bare 11 digits are the billing form
        ("123456-1234-12", ("123456", "1234", "12"), NdcFormat.F6_4_2),
        ("123456123412", ("123456", "1234", "12"), NdcFormat.F6_4_2),
        ("  0069-4200-30\r\n", ("0069", "4200", "30"), NdcFormat.F4_4_2),
        ("\t00591036901 ", ("00591", "0369", "01"), NdcFormat.F5_4_2),
    ],
)
def test_parse_accepts_the_printed_and_billing_forms(text: str, segments: tuple[str, str, str], fmt: NdcFormat) -> None:
    ndc = Ndc.parse(text)
    assert (ndc.labeler, ndc.product, ndc.package) == segments
    assert ndc.format is fmt


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "identifier.bad_length"),
        ("   ", "identifier.bad_length"),
        ("--", "identifier.bad_length"),
        ("0069-4200-3", "identifier.bad_length"),  # 9 digits
        ("0069420", "identifier.bad_length"),
        ("1234567890123", "identifier.bad_length"),
        ("123-4567-890", "identifier.bad_segmentation"),  # 10 digits, 3-4-3
        ("0069-4200-300", "identifier.bad_segmentation"),  # 11 digits must be 5-4-2
        ("0069-4200-3000", "identifier.bad_segmentation"),  # 12 digits must be 6-4-2
        ("0069-420030", "identifier.bad_segmentation"),
        ("0069-4200-3-0", "identifier.bad_segmentation"),
        ("0069--4200-30", "identifier.bad_segmentation"),
        ("-0069-4200-30", "identifier.bad_segmentation"),
        ("0069-4200-30-", "identifier.bad_segmentation"),
        ("0069420030", "identifier.ambiguous_ndc"),
        ("0069-42OO-30", "identifier.not_digits"),  # letter O
        ("NDC 0069-4200-30", "identifier.not_digits"),
        ("0069 4200 30", "identifier.not_digits"),
        ("0069.4200.30", "identifier.not_digits"),
        ("0069–4200–30", "identifier.not_digits"),  # en dash, as pasted from a word processor
        ("٠٠٦٩-٤٢٠٠-٣٠", "identifier.not_digits"),  # Arabic-Indic digits
        ("００６９-４２００-３０", "identifier.not_digits"),  # full-width digits
        ("0069-4200-3²", "identifier.not_digits"),  # superscript two: str.isdigit() is True
        ("0069-4200-30\x00", "identifier.not_digits"),
    ],
)
def test_parse_refuses_with_the_exact_code(text: str, code: str) -> None:
    error = refused(code, Ndc.parse, text)
    assert error.context["value"] == text
    assert repr(text) in error.detail  # says what was given ...
    if code == "identifier.ambiguous_ndc":
        assert "candidates_from_ndc10" in error.detail  # ... and what to do instead
    else:
        assert "expected" in error.detail or "are written" in error.detail  # ... or what is expected


def test_parse_detail_names_the_offending_character() -> None:
    assert "U+0663" in refused("identifier.not_digits", Ndc.parse, "0069-4200-3٣").detail
    assert "U+2013" in refused("identifier.not_digits", Ndc.parse, "0069–4200–30").detail


def test_parse_detail_lists_the_layouts_for_the_digit_count() -> None:
    detail = refused("identifier.bad_segmentation", Ndc.parse, "123-4567-890").detail
    assert "4-4-2, 5-3-2 or 5-4-1" in detail
    assert "3-4-3" in detail


def test_long_garbage_is_quoted_short() -> None:
    text = "x" * 5000
    error = refused("identifier.not_digits", Ndc.parse, text)
    assert len(error.detail) < 300
    assert error.context["value"] == text


# -- 10 and 11 digits ----------------------------------------------------------------------------------------


def test_candidates_from_ndc10_are_the_three_readings_in_order() -> None:
    assert Ndc.candidates_from_ndc10("0069420030") == (
        Ndc("0069", "4200", "30"),
        Ndc("00694", "200", "30"),
        Ndc("00694", "2003", "0"),
    )


@pytest.mark.parametrize(
    ("ndc11", "candidates"),
    [
        ("00591036901", ("0591-0369-01", "00591-369-01", "00591-0369-1")),  # every segment starts with 0
        ("00069420030", ("0069-4200-30",)),
        ("10631010608", ("10631-106-08", "10631-0106-8")),
        ("51672411704", ("51672-4117-4",)),
        ("12345678912", ()),  # no segment was padded: not the billing form of any 10-digit NDC
    ],
)
def test_candidates_from_ndc11(ndc11: str, candidates: tuple[str, ...]) -> None:
    assert tuple(str(c) for c in Ndc.candidates_from_ndc11(ndc11)) == candidates


@pytest.mark.parametrize(
    ("call", "arg", "code"),
    [
        (Ndc.candidates_from_ndc10, "006942003", "identifier.bad_length"),
        (Ndc.candidates_from_ndc10, "00694200300", "identifier.bad_length"),
        (Ndc.candidates_from_ndc10, "0069-4200-30", "identifier.not_digits"),  # bare digits only
        (Ndc.candidates_from_ndc10, "006942003O", "identifier.not_digits"),
        (Ndc.candidates_from_ndc11, "0069420030", "identifier.bad_length"),
        (Ndc.candidates_from_ndc11, "00069-4200-30", "identifier.not_digits"),
        (Ndc.candidates_from_ndc11, "٠٠٠٦٩٤٢٠٠٣٠", "identifier.not_digits"),
    ],
)
def test_candidates_refuse_anything_but_bare_digits(call: Callable[[str], object], arg: str, code: str) -> None:
    refused(code, call, arg)


def test_eleven_digit_ndc_has_no_ten_digit_form_without_the_directory() -> None:
    ndc = Ndc.parse("00591-0369-01")
    assert not ndc.is_ten_digit
    assert ndc.ndc11 == ndc.digits == "00591036901"
    error = refused("identifier.ambiguous_ndc", lambda: ndc.ndc10)
    assert "candidates_from_ndc11" in error.detail
    assert refused("identifier.no_barcode_form", upca_from_ndc, ndc).context["value"] == "00591-0369-01"
    refused("identifier.no_barcode_form", gtin14_from_ndc, ndc)


def test_twelve_digit_ndc_has_no_ten_or_eleven_digit_form_and_no_barcode() -> None:
    ndc = Ndc.parse("123456-1234-12")
    assert ndc.digits == "123456123412"
    assert not ndc.is_ten_digit
    assert "6-4-2" in refused("identifier.bad_length", lambda: ndc.ndc11).detail
    refused("identifier.bad_length", lambda: ndc.ndc10)
    refused("identifier.no_barcode_form", upca_from_ndc, ndc)
    refused("identifier.no_barcode_form", gtin14_from_ndc, ndc, 1)


@pytest.mark.parametrize("indicator", [9, -1, 10, True])
def test_gtin_indicator_must_be_0_to_8(indicator: int) -> None:
    error = refused("identifier.no_barcode_form", gtin14_from_ndc, Ndc.parse("0069-4200-30"), indicator)
    assert error.context["indicator"] == indicator


def test_same_product_package() -> None:
    ndc = Ndc.parse("0069-4200-30")
    assert ndc.same_product_package(Ndc.parse("00069-4200-30"))
    assert Ndc.parse("00069420030").same_product_package(ndc)
    assert Ndc.parse("10631-106-08").same_product_package(Ndc.parse("10631-0106-08"))
    assert not ndc.same_product_package(Ndc.parse("0069-4200-31"))
    assert not ndc.same_product_package(Ndc.parse("00694-200-30"))  # same 10 digits, another NDC
    twelve = Ndc.parse("123456-1234-12")
    assert twelve.same_product_package(Ndc.parse("123456123412"))
    assert not twelve.same_product_package(ndc)
    assert not ndc.same_product_package(twelve)  # no crosswalk here: not known to be the same


# -- barcodes ------------------------------------------------------------------------------------------------


def test_gs1_check_digit_known_values() -> None:
    assert gs1_check_digit("30069420030") == "5"
    assert gs1_check_digit("0030069420030") == "5"  # leading zeros do not change it
    assert gs1_check_digit("400638133393") == "1"  # EAN-13 4006381333931
    assert gs1_check_digit("9638507") == "4"  # GTIN-8 96385074
    assert gs1_check_digit("0") == "0"


@pytest.mark.parametrize(
    ("arg", "code"),
    [("", "identifier.bad_length"), ("1" * 18, "identifier.bad_length"), ("12a", "identifier.not_digits")],
)
def test_gs1_check_digit_refuses_bad_bodies(arg: str, code: str) -> None:
    refused(code, gs1_check_digit, arg)


def _with_indicator_9() -> str:
    body = "9030069420030"
    return body + gs1_check_digit(body)


def _ean13_hiding_an_upca() -> str:
    """A valid EAN-13 (GS1 US prefix 130) whose last 12 digits read like an NDC UPC-A: it is no UPC-A."""
    body = "130069420030"
    return body + gs1_check_digit(body)


@pytest.mark.parametrize(
    ("call", "code_in", "code"),
    [
        (ndc10_from_barcode, "300436122", "identifier.bad_length"),  # truncated UPC in an FDA recall text
        (ndc10_from_barcode, "", "identifier.bad_length"),
        (ndc10_from_barcode, "30069420030", "identifier.bad_length"),
        (ndc10_from_barcode, "003006942003050", "identifier.bad_length"),
        (ndc10_from_barcode, "30069420030A", "identifier.not_digits"),
        (ndc10_from_barcode, "3006-9420-0305", "identifier.not_digits"),
        (ndc10_from_barcode, " 300694200305", "identifier.not_digits"),  # whitespace is the scanner layer's
        (ndc10_from_barcode, "٣٠٠٦٩٤٢٠٠٣٠٥", "identifier.not_digits"),  # 300694200305 in Arabic-Indic digits
        (ndc10_from_barcode, "]E00300694200305", "identifier.not_digits"),  # AIM prefix: issue 5, not here
        (ndc10_from_barcode, "300694200306", "identifier.bad_check_digit"),
        (ndc10_from_barcode, "0300694200306", "identifier.bad_check_digit"),
        (ndc10_from_barcode, "00300694200306", "identifier.bad_check_digit"),
        (ndc10_from_barcode, "04006381333931", "identifier.not_an_ndc"),  # retail GTIN, no "03"
        (ndc10_from_barcode, "4006381333931", "identifier.not_an_ndc"),  # the same as EAN-13
        (ndc10_from_barcode, "042100005264", "identifier.not_an_ndc"),  # UPC-A, number system 0
        (ndc10_from_gtin, "4006381333931", "identifier.not_an_ndc"),
        (ndc10_from_gtin, "96385074", "identifier.bad_length"),  # GTIN-8 cannot hold 10 NDC digits
        (ndc10_from_gtin, _with_indicator_9(), "identifier.not_an_ndc"),  # variable measure
        (ndc10_from_gtin, "00300694200306", "identifier.bad_check_digit"),
        (ndc10_from_upca, "5901234123457", "identifier.not_an_ndc"),  # EAN-13 that is no UPC-A
        (ndc10_from_upca, _ean13_hiding_an_upca(), "identifier.not_an_ndc"),
        (ndc10_from_barcode, _ean13_hiding_an_upca(), "identifier.not_an_ndc"),
        (ndc10_from_gtin, _ean13_hiding_an_upca(), "identifier.not_an_ndc"),
        (ndc10_from_upca, "00300694200305", "identifier.bad_length"),  # a GTIN-14 is not a UPC-A
        (ndc10_from_upca, "300694200306", "identifier.bad_check_digit"),
    ],
)
def test_barcode_refusals(call: Callable[[str], str], code_in: str, code: str) -> None:
    error = refused(code, call, code_in)
    assert error.context["value"] == code_in


def test_bad_check_digit_detail_gives_both_digits() -> None:
    detail = refused("identifier.bad_check_digit", ndc10_from_barcode, "300694200306").detail
    assert "300694200306" in detail
    assert "check digit 6" in detail
    assert "give 5" in detail


# -- properties ----------------------------------------------------------------------------------------------


@given(ndcs())
def test_str_then_parse_round_trips(ndc: Ndc) -> None:
    assert Ndc.parse(str(ndc)) == ndc
    assert Ndc.from_digits(ndc.digits, ndc.format) == ndc
    assert str(ndc).replace("-", "") == ndc.digits
    if not ndc.is_ten_digit:
        assert Ndc.parse(ndc.digits) == ndc  # 11 and 12 bare digits have one reading


@given(ten_digit_ndcs)
def test_upca_round_trips(ndc: Ndc) -> None:
    upca = upca_from_ndc(ndc)
    assert len(upca) == 12
    assert upca[0] == "3"
    assert upca[1:11] == ndc.ndc10
    assert ndc10_from_upca(upca) == ndc10_from_upca("0" + upca) == ndc.digits
    assert ndc10_from_barcode(upca) == ndc10_from_barcode("0" + upca) == ndc.digits


@given(ten_digit_ndcs, st.integers(0, 8))
def test_gtin14_round_trips(ndc: Ndc, indicator: int) -> None:
    gtin = gtin14_from_ndc(ndc, indicator)
    assert len(gtin) == 14
    assert gtin[:3] == f"{indicator}03"
    assert ndc10_from_gtin(gtin) == ndc10_from_barcode(gtin) == ndc.digits
    if indicator == 0:
        assert gtin == "00" + upca_from_ndc(ndc)


@given(ten_digit_ndcs)
def test_ndc11_leads_back_to_the_original_among_its_candidates(ndc: Ndc) -> None:
    ndc11 = ndc.ndc11
    assert len(ndc11) == 11
    candidates = Ndc.candidates_from_ndc11(ndc11)
    assert ndc in candidates
    assert all(c.is_ten_digit and c.ndc11 == ndc11 for c in candidates)
    assert ndc.same_product_package(Ndc.parse(ndc11))
    assert Ndc.parse(ndc11).same_product_package(ndc)


@given(digit_strings(10))
def test_candidates_from_ndc10_read_the_same_digits(digits: str) -> None:
    candidates = Ndc.candidates_from_ndc10(digits)
    assert [c.format for c in candidates] == list(TEN_DIGIT)
    assert all(c.ndc10 == digits for c in candidates)


@given(ndc_barcodes(), st.data())
@example("300694200305", None)
def test_every_single_digit_error_is_caught(code: str, data: st.DataObject | None) -> None:
    """Mod-10 with weights 3,1 catches every single-digit substitution (3 is coprime with 10)."""
    positions = range(len(code)) if data is None else [data.draw(st.integers(0, len(code) - 1))]
    for position in positions:
        for digit in "0123456789":
            if digit == code[position]:
                continue
            corrupted = code[:position] + digit + code[position + 1 :]
            refused("identifier.bad_check_digit", ndc10_from_barcode, corrupted)


@given(ndc_barcodes(), st.data())
def test_adjacent_swaps_are_caught_unless_the_digits_differ_by_5(code: str, data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(code) - 2))
    a, b = code[position], code[position + 1]
    swapped = code[:position] + b + a + code[position + 2 :]
    if abs(int(a) - int(b)) in (0, 5):
        assert gs1_check_digit(swapped[:-1]) == swapped[-1]  # the known blind spot of mod-10
    else:
        refused("identifier.bad_check_digit", ndc10_from_barcode, swapped)


@given(digit_strings(11), st.sampled_from("012456789"))
def test_valid_upca_outside_number_system_3_is_not_an_ndc(body: str, number_system: str) -> None:
    upca = number_system + body[1:]
    upca += gs1_check_digit(upca)
    refused("identifier.not_an_ndc", ndc10_from_upca, upca)
    refused("identifier.not_an_ndc", ndc10_from_barcode, upca)


@given(st.integers(0, 9), digit_strings(12).filter(lambda s: s[:2] != "03"))
def test_valid_gtin14_without_03_is_not_an_ndc(indicator: int, rest: str) -> None:
    body = f"{indicator}{rest}"
    refused("identifier.not_an_ndc", ndc10_from_gtin, body + gs1_check_digit(body))


NDC_ALPHABET = st.sampled_from([*"0123456789", "-", " ", "٣", "x", "\n"])


@given(st.one_of(st.text(), st.text(NDC_ALPHABET, max_size=16)))
def test_parse_never_fails_any_other_way(text: str) -> None:
    try:
        ndc = Ndc.parse(text)
    except InvalidIdentifierError as error:
        assert error.code.startswith("identifier.")
        return
    cleaned = text.strip()
    if "-" in cleaned:
        assert str(ndc) == cleaned
    else:
        assert ndc.digits == cleaned


@given(st.one_of(st.text(), st.text(st.sampled_from([*"0123456789", "٣", "-"]), max_size=15), ndc_barcodes()))
def test_barcode_reading_never_fails_any_other_way(code: str) -> None:
    try:
        ndc10 = ndc10_from_barcode(code)
    except InvalidIdentifierError as error:
        assert error.code.startswith("identifier.")
        return
    assert code.isascii() and code.isdigit()
    assert gs1_check_digit(code[:-1]) == code[-1]  # nothing comes back from a code that failed its check
    assert code.zfill(14)[1:13] == "03" + ndc10


# -- public data: ../shared/external/gs1/ndc_upc_gtin_vectors.tsv --------------------------------------------


def read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:  # the file has CRLF line ends
        return list(csv.DictReader(handle, delimiter="\t"))


def row_params(relative: str, keep: Callable[[dict[str, str]], bool], label: str) -> list[Any]:
    """Parameters (row index) and ids for the rows of a shared TSV, read once at collection time."""
    path = SHARED_EXTERNAL / relative
    if not path.is_file():
        return []
    return [
        pytest.param(index, id=f"line{index + 2}-{row[label]}") for index, row in enumerate(read_tsv(path)) if keep(row)
    ]


@pytest.fixture(scope="module")
def ndc_vectors(shared_external: Path) -> list[dict[str, str]]:
    rows = read_tsv(shared_external / VECTORS_TSV)
    assert rows[0].keys() >= {"ndc_as_printed", "ndc10_digits", "ndc11_542", "barcode_value_in_source"}
    return rows


@pytest.fixture(scope="module")
def gs1_vectors(shared_external: Path) -> list[dict[str, str]]:
    return read_tsv(shared_external / GS1_TSV)


def test_vector_files_have_the_rows_sources_md_promises(
    ndc_vectors: list[dict[str, str]], gs1_vectors: list[dict[str, str]]
) -> None:
    assert len(ndc_vectors) == 34
    assert len(gs1_vectors) == 32


@pytest.mark.parametrize("index", row_params(VECTORS_TSV, lambda row: bool(row["ndc_as_printed"]), "ndc_as_printed"))
def test_vector_printed_ndc(ndc_vectors: list[dict[str, str]], index: int) -> None:
    row = ndc_vectors[index]
    ndc = Ndc.parse(row["ndc_as_printed"])
    assert str(ndc) == row["ndc_as_printed"]
    assert ndc.format == row["ndc_format"]
    assert ndc.ndc11 == row["ndc11_542"].replace("-", "")
    assert str(Ndc.parse(ndc.ndc11)) == row["ndc11_542"]
    if row["ndc10_digits"]:
        assert ndc.ndc10 == row["ndc10_digits"]
        assert upca_from_ndc(ndc) == row["derived_upca_12"]
        assert gtin14_from_ndc(ndc) == row["derived_gtin14"]
        assert ndc10_from_upca(row["derived_upca_12"]) == row["ndc10_digits"]
        assert ndc10_from_gtin(row["derived_gtin14"]) == row["ndc10_digits"]
        assert ndc in Ndc.candidates_from_ndc11(ndc.ndc11)
    else:  # printed in the 11-digit form: no 10 digits and no barcode without the directory
        assert ndc.format is NdcFormat.F5_4_2
        assert not row["derived_upca_12"]
        refused("identifier.ambiguous_ndc", lambda: ndc.ndc10)
        refused("identifier.no_barcode_form", upca_from_ndc, ndc)
    if row["ndc_matches_barcode"] == "yes":
        assert ndc10_from_barcode(row["barcode_value_in_source"]) == ndc.ndc10


@pytest.mark.parametrize(
    "index",
    row_params(VECTORS_TSV, lambda row: bool(row["barcode_value_in_source"]), "barcode_value_in_source"),
)
def test_vector_barcode(ndc_vectors: list[dict[str, str]], index: int) -> None:
    row = ndc_vectors[index]
    code = row["barcode_value_in_source"]
    if row["barcode_check_digit_valid"] != "yes":
        assert row["barcode_check_digit_valid"].startswith("no:")
        if "Expected 8, 12, 13, or 14 digits" in row["barcode_check_digit_valid"]:
            refused("identifier.bad_length", ndc10_from_barcode, code)
        else:
            refused("identifier.bad_check_digit", ndc10_from_barcode, code)
        return
    assert gs1_check_digit(code[:-1]) == code[-1]
    assert code.zfill(14) == row["barcode_as_gtin14"]
    if row["barcode_embeds_ndc10"]:
        assert ndc10_from_barcode(code) == row["barcode_embeds_ndc10"]
        assert ndc10_from_gtin(row["barcode_as_gtin14"]) == row["barcode_embeds_ndc10"]
        assert len(Ndc.candidates_from_ndc10(row["barcode_embeds_ndc10"])) == 3
    else:
        refused("identifier.not_an_ndc", ndc10_from_barcode, code)
        refused("identifier.not_an_ndc", ndc10_from_gtin, row["barcode_as_gtin14"])


# -- public data: ../shared/external/gs1/gs1_vectors.tsv (UPC and GTIN rows only) ----------------------------


@pytest.mark.parametrize("index", row_params(GS1_TSV, lambda row: row["kind"] == "upc", "input"))
def test_gs1_upc_vector(gs1_vectors: list[dict[str, str]], index: int) -> None:
    row = gs1_vectors[index]
    code, expected = row["input"], row["expected"]
    if expected.startswith("UPC-E"):
        refused("identifier.bad_length", ndc10_from_upca, code)  # 6 or 8 digits never hold an NDC
    elif expected.startswith("UPC-A valid"):
        match = re.search(r"check digit (\d)", expected)
        assert match is not None
        assert gs1_check_digit(code[:-1]) == code[-1] == match[1]
        assert code[0] != "3"
        refused("identifier.not_an_ndc", ndc10_from_upca, code)
    else:
        match = re.search(r"expected (\d), got (\d)", expected)
        assert match is not None
        wanted, got = match.groups()
        assert gs1_check_digit(code[:-1]) == wanted
        detail = refused("identifier.bad_check_digit", ndc10_from_upca, code).detail
        assert f"check digit {got}" in detail and f"give {wanted}" in detail


@pytest.mark.parametrize("index", row_params(GS1_TSV, lambda row: row["kind"] == "gtin_to_gtin14", "input"))
def test_gs1_gtin_padding_vector(gs1_vectors: list[dict[str, str]], index: int) -> None:
    row = gs1_vectors[index]
    code, gtin14 = row["input"], row["expected"]
    assert code.zfill(14) == gtin14
    assert gs1_check_digit(code[:-1]) == code[-1]
    assert gs1_check_digit(gtin14[:-1]) == gtin14[-1]
    if len(code) == 8:
        refused("identifier.bad_length", ndc10_from_gtin, code)
    else:
        assert gtin14[1:3] != "03"  # none of biip's examples is an NDC
        refused("identifier.not_an_ndc", ndc10_from_gtin, code)


# -- public data: ../shared/external/ndc/openfda_harmonized.small.ndjson -------------------------------------


@pytest.fixture(scope="module")
def openfda_products(shared_external: Path) -> list[dict[str, Any]]:
    with (shared_external / OPENFDA_NDJSON).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def test_every_openfda_package_ndc_parses(openfda_products: list[dict[str, Any]]) -> None:
    formats: Counter[str] = Counter()
    for product in openfda_products:
        for printed in as_list(product["package_ndc"]):
            ndc = Ndc.parse(printed)
            assert str(ndc) == printed
            assert ndc.is_ten_digit, printed
            assert ndc in Ndc.candidates_from_ndc11(ndc.ndc11)
            assert ndc10_from_barcode(upca_from_ndc(ndc)) == ndc.ndc10
            formats[ndc.format] += 1
    assert formats == {"5-3-2": 1206, "5-4-1": 329, "4-4-2": 235}  # the counts SOURCES.md gives
    assert len(openfda_products) == 500


def test_openfda_label_upcs(openfda_products: list[dict[str, Any]]) -> None:
    """SOURCES.md: 14 of 19 label UPCs with number system 3 embed one of the product's package NDCs.

    Counted per product record (one line of the file): 19 records carry an NDC barcode, 13 distinct
    barcodes among them. All 32 label UPCs are 13 digits (zxing-style EAN form); the other 13 are retail
    UPCs (number systems 0, 5, 6, 8) and are refused as not an NDC.
    """
    ndc_barcodes = embedding = retail = 0
    for product in openfda_products:
        package_ndc10s = {Ndc.parse(p).ndc10 for p in as_list(product["package_ndc"])}
        for upc in as_list(product["upc"]):
            try:
                ndc10 = ndc10_from_barcode(upc)
            except InvalidIdentifierError as error:
                assert error.code == "identifier.not_an_ndc", error  # every check digit holds
                assert upc.zfill(14)[1:3] != "03"
                retail += 1
                continue
            assert upc.zfill(14)[1:3] == "03"
            assert ndc10_from_gtin(upc) == ndc10
            ndc_barcodes += 1
            embedding += ndc10 in package_ndc10s
    assert (embedding, ndc_barcodes, retail) == (14, 19, 13)


def test_openfda_relabeler_keeps_the_original_makers_barcode(openfda_products: list[dict[str, Any]]) -> None:
    """A relabeled product lists its own package NDC, but its label barcode is the original packager's."""
    relabeled = [p for p in openfda_products if p["is_original_packager"] is False and p["upc"]]
    assert len(relabeled) == 1
    for product in relabeled:
        ndc10 = ndc10_from_barcode(product["upc"])
        assert ndc10 not in {Ndc.parse(p).ndc10 for p in as_list(product["package_ndc"])}
        originals = [o.replace("-", "") for o in product["original_packager_product_ndc"]]
        assert any(ndc10.startswith(o) for o in originals), (ndc10, originals)
