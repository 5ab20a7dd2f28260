"""``adc vision``: barcodes in image files, and a package photograph verified against a formulary item.

- ``adc vision decode IMAGE... [--json]``: every barcode in each image with its format, AIM symbology identifier,
  raw text (GS kept), GS1 fields (GTIN, NDC10, expiry, lot, serial) and corners. One image gives one JSON object,
  several give a list. Exit 1 when an image is missing or unreadable, or holds no barcode.
- ``adc vision verify IMAGE --ndc NDC [--json] [--today YYYY-MM-DD]``: the package's verdict against the formulary
  item with that NDC (primary or alternate): match, wrong_drug, wrong_strength_or_package, expired, short_dated,
  quarantined, not_an_ndc or unreadable. Exit 0 for match and short_dated (a warning), 1 for every other verdict.
  The CLI has no database: the formulary comes from a file (the bundled demo formulary by default) and recalled
  lots from ``--recalled-lot``.

Errors print one line, ``adc: error: [code] detail``, on stderr; never a traceback.

The image libraries are imported inside the commands, so the rest of ``adc`` does not pay for loading OpenCV.
"""

from __future__ import annotations

import json
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from controller.cli.vision_count import count
from controller.domain.medication import Medication
from controller.domain.ndc import Ndc
from controller.domain.package_label import GS, PackageLabel, read_label
from controller.errors import ControllerError, VerificationError

if TYPE_CHECKING:
    from controller.vision.symbols import DecodedSymbol

vision_app = typer.Typer(help="Barcodes and counts from camera images.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _fail_line(error: ControllerError) -> None:
    typer.echo(f"adc: error: {error}", err=True)


def _write_json(document: object) -> None:
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def _label(symbol: DecodedSymbol) -> PackageLabel:
    # The camera decoder keeps every group separator: a GS1 string without one is unambiguous.
    return read_label(symbol.text, symbol.symbology_id, is_gs1=symbol.is_gs1, separators_kept=True)


def _symbol_json(symbol: DecodedSymbol) -> dict[str, Any]:
    document = symbol.as_json()
    document["gs1"] = _label(symbol).gs1_view()
    return {key: document[key] for key in ("format", "symbology_id", "text", "gs1", "position")}


def _decode_file(path: Path) -> tuple[DecodedSymbol, ...]:
    from controller.vision.decode import decode
    from controller.vision.images import load_image

    return decode(load_image(path)).symbols


@vision_app.command("decode")
def decode_images(
    images: Annotated[list[Path], typer.Argument(help="Image files (PNG, JPEG, WebP, ...).", show_default=False)],
    as_json: JsonFlag = False,
) -> None:
    """Decode every barcode (DataMatrix, UPC-A/EAN-13, Code 128/GS1-128, DataBar, QR) in each image."""
    documents: list[dict[str, Any]] = []
    failed = False
    for path in images:
        try:
            symbols = _decode_file(path)
        except ControllerError as error:
            _fail_line(error)
            failed = True
            documents.append({"image": str(path), "symbols": [], "error": {"code": error.code, "detail": error.detail}})
            continue
        if not symbols:
            _fail_line(VerificationError("vision.no_symbol", f"no barcode found in {str(path)!r}", path=str(path)))
            failed = True
        documents.append({"image": str(path), "symbols": [_symbol_json(s) for s in symbols]})
    if as_json:
        if len(images) > 1:
            _write_json(documents)
        elif "error" not in documents[0]:
            _write_json(documents[0])
    else:
        for document in documents:
            if "error" not in document:
                _print_decoded(document)
    if failed:
        raise typer.Exit(1)


def _print_decoded(document: dict[str, Any]) -> None:
    symbols = document["symbols"]
    typer.echo(f"{document['image']}: {len(symbols)} barcode{'s' if len(symbols) != 1 else ''}")
    for symbol in symbols:
        text = symbol["text"].replace(GS, "<GS>")
        typer.echo(f"  {symbol['format']} {symbol['symbology_id']}  {text}")
        gs1 = symbol["gs1"]
        if gs1:
            fields = ", ".join(f"{name} {value}" for name, value in gs1.items() if value is not None)
            typer.echo(f"    {fields}")


# -- verify -------------------------------------------------------------------------------------------------------


def _formulary(path: Path | None) -> list[Medication]:
    from controller.store.formulary_file import load_formulary

    return [entry.medication for entry in load_formulary(path)]


def find_by_ndc(medications: list[Medication], text: str) -> Medication | None:
    """The item carrying the NDC as given: hyphenated (any segmentation, or the 11-digit billing form), 10 bare
    digits (as a barcode carries them) or 11 bare digits (billing)."""
    digits = text.strip()
    if digits.isascii() and digits.isdigit() and len(digits) == 10:
        return next((m for m in medications if m.carries_ndc10(digits)), None)
    wanted = Ndc.parse(text)
    return next((m for m in medications if any(n.same_product_package(wanted) for n in m.all_ndcs)), None)


def _parse_day(text: str | None) -> date:
    if text is None:
        return date.today()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date in the form YYYY-MM-DD", param_hint="--today") from None


@vision_app.command("verify")
def verify_image(
    image: Annotated[Path, typer.Argument(help="Photograph of the package.", show_default=False)],
    *,
    ndc: Annotated[
        str, typer.Option("--ndc", help="NDC of the pocket's item (e.g. 0409-1316-32).", show_default=False)
    ],
    as_json: JsonFlag = False,
    today: Annotated[str | None, typer.Option("--today", help="Judge expiry as of this day (YYYY-MM-DD).")] = None,
    formulary: Annotated[Path | None, typer.Option(help="Formulary file (TOML); default: the demo formulary.")] = None,
    recalled_lot: Annotated[
        list[str] | None, typer.Option("--recalled-lot", help="A lot under recall or hold (repeatable).")
    ] = None,
    short_dated_days: Annotated[int, typer.Option(help="Warn when a lot expires within this many days.")] = 30,
) -> None:
    """Verify the package in IMAGE against the formulary item with NDC."""
    from controller.domain.package_verification import verify_labels

    day = _parse_day(today)
    try:
        medications = _formulary(formulary)
        expected = find_by_ndc(medications, ndc)
        if expected is None:
            where = str(formulary) if formulary else "the demo formulary"
            raise VerificationError(
                "inventory.unknown_item",
                f"NDC {ndc} is not on {where} (primary or alternate); pass --formulary FILE to use another",
                ndc=ndc,
            )
        symbols = _decode_file(image)
    except ControllerError as error:
        _fail_line(error)
        raise typer.Exit(1) from None
    by_ndc10 = {n.ndc10: m for m in medications for n in m.all_ndcs if n.is_ten_digit}
    recalled = set(recalled_lot or ())
    verification = verify_labels(
        [_label(symbol) for symbol in symbols],
        expected,
        find_item=by_ndc10.get,
        is_quarantined=lambda _item, lot: lot in recalled,
        today=day,
        short_dated_warning=timedelta(days=short_dated_days),
    )
    document: dict[str, Any] = {"image": str(image), "today": day.isoformat(), **verification.view()}
    document["symbols"] = [_symbol_json(s) for s in symbols]
    if as_json:
        _write_json(document)
    else:
        _print_verification(document)
    if verification.verdict.value not in ("match", "short_dated"):
        raise typer.Exit(1)


def _print_verification(document: dict[str, Any]) -> None:
    verdict = document["verdict"].upper().replace("_", " ")
    typer.echo(f"{document['image']}: {verdict}")
    code = f"[{document['code']}] " if document["code"] else ""
    typer.echo(f"  {code}{document['reason']}")
    expected = document["expected"]
    typer.echo(f"  pocket item: {expected['name']} ({expected['item_id']}, NDC {expected['ndc']})")
    scanned = document["scanned"]
    if scanned:
        typer.echo(f"  package:     {scanned['name']} ({scanned['item_id']}, NDC {scanned['ndc']})")
    details = ", ".join(
        f"{name} {document[name]}" for name in ("ndc10", "gtin", "lot", "expiry", "serial") if document[name]
    )
    if details:
        typer.echo(f"  barcode:     {details}")


# Further ``adc vision`` commands (the pill ``count``) register on ``vision_app`` below.
vision_app.command("count")(count)
