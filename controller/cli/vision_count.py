"""``adc vision count IMAGE [--json] [--overlay OUT.png]``: count the pills on a counting tray in a photograph.

``--json`` prints ``{"count": N, "confidence": 0..1, "uncertain": bool, "centers": [[x, y], ...]}`` (centres in
image pixels); without it, one line says the count, its confidence and, when uncertain, why. ``--overlay`` writes
the photograph with every counted pill numbered and every unresolved clump boxed. An uncertain count is still a
count (exit 0); the pills should be spread and counted again before the number is used.

A missing or unreadable file, or a photograph the quality gate refuses (blurred, over- or under-exposed, no tray),
prints ``adc: error: [code] detail`` on stderr and exits 1; never a traceback.

The image libraries are imported inside the command, so the rest of ``adc`` does not pay for loading OpenCV.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from controller.errors import ControllerError

if TYPE_CHECKING:
    from controller.vision.pills import PillCount


def count(
    image: Annotated[Path, typer.Argument(help="Photograph of the counting tray.", show_default=False)],
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    overlay: Annotated[
        Path | None, typer.Option("--overlay", help="Write the photograph with numbered marks to this PNG.")
    ] = None,
) -> None:
    """Count the pills on the counting tray in IMAGE."""
    from controller.vision.images import load_image
    from controller.vision.pills import count_pills

    try:
        result = count_pills(load_image(image))
        if overlay is not None:
            _write_png(overlay, result)
    except ControllerError as error:
        typer.echo(f"adc: error: {error}", err=True)
        raise typer.Exit(1) from None
    if json_output:
        sys.stdout.write(json.dumps(as_json(result)) + "\n")
    else:
        typer.echo(summary(image, result))


def as_json(result: PillCount) -> dict[str, Any]:
    return {
        "count": result.count,
        "confidence": result.confidence,
        "uncertain": result.uncertain,
        "centers": [[round(x, 1), round(y, 1)] for x, y in result.centers],
    }


def summary(image: Path, result: PillCount) -> str:
    pills = f"{result.count} pill{'s' if result.count != 1 else ''}"
    if not result.uncertain:
        return f"{image}: {pills} (confidence {result.confidence:.2f})"
    return f"{image}: {pills}, UNCERTAIN (confidence {result.confidence:.2f}): {'; '.join(result.reasons)}"


def _write_png(path: Path, result: PillCount) -> None:
    import cv2

    ok, encoded = cv2.imencode(".png", result.overlay)
    try:
        if not ok:
            raise OSError("PNG encoding failed")
        path.write_bytes(encoded.tobytes())
    except OSError as error:
        raise ControllerError(
            "vision.overlay_not_written", f"cannot write the overlay to {str(path)!r}: {error}", path=str(path)
        ) from error
