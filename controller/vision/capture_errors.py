"""Why a camera frame cannot be counted: the refusals that ask for a new capture.

Each refusal carries its catalogue code (``vision.image_blurred``, ``vision.image_overexposed``,
``vision.image_underexposed``, ``vision.tray_not_found``) and says which measurement failed and by how much.
"""

from __future__ import annotations

from controller.errors import VerificationError


class CaptureRefusedError(VerificationError):
    """The frame fails a quality rule; a new capture (better focus, light or framing) may pass."""


class TrayNotFoundError(CaptureRefusedError):
    def __init__(self, detail: str) -> None:
        super().__init__("vision.tray_not_found", f"{detail}; centre the counting tray and capture again")
