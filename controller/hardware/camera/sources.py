"""Where a camera's frames come from, read from its endpoint URL (the ``ADC_CAMERA`` setting).

- a capture device: ``0`` (an index) or ``/dev/video0`` (V4L2);
- a recording: a video file, a still image, or an image sequence pattern (``frames/img_%04d.png``), as a plain
  path or ``file:///abs/path``;
- a network stream: ``rtsp://``, ``rtsps://``, ``http://`` or ``https://`` (MJPEG over HTTP), opened by FFmpeg.

This module only parses and checks what can be checked without opening anything; opening is the capture thread's.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from controller.errors import ConfigurationError

NETWORK_SCHEMES = frozenset({"rtsp", "rtsps", "http", "https"})


class SourceKind(StrEnum):
    DEVICE = "device"
    FILE = "file"
    NETWORK = "network"


@dataclass(frozen=True, slots=True)
class CameraSource:
    kind: SourceKind
    target: int | str  # what cv2.VideoCapture opens: a device index, a path, or the URL
    url: str  # as configured, with any password masked: this is what messages and reports show

    @property
    def live(self) -> bool:
        """A live source shows the present: frames that are not taken are dropped, never queued. A recording is
        read in order, one frame per capture, and ends."""
        return self.kind is not SourceKind.FILE


def parse_camera_url(url: str) -> CameraSource:
    text = url.strip()
    if not text:
        raise ConfigurationError("comm.bad_endpoint", "the camera URL is empty")
    if text.isdigit():
        return CameraSource(SourceKind.DEVICE, int(text), url)
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme in NETWORK_SCHEMES:
        if not parts.hostname:
            raise ConfigurationError("comm.bad_endpoint", f"no host in camera URL {_masked(text)!r}")
        return CameraSource(SourceKind.NETWORK, text, _masked(text))
    if scheme == "file":
        path = unquote(parts.path)
    elif scheme == "":
        path = text
    else:
        raise ConfigurationError(
            "comm.bad_endpoint",
            f"camera URL {url!r}: expected a device index, /dev/videoN, a file path, file://, rtsp:// or http(s)://",
        )
    if path.startswith("/dev/video"):
        return CameraSource(SourceKind.DEVICE, path, url)
    _check_recording(Path(path), url)
    return CameraSource(SourceKind.FILE, path, url)


def _masked(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user.partition(':')[0]}:***@{host}"))


def _check_recording(path: Path, url: str) -> None:
    # An image sequence names no single file; its folder must exist, and OpenCV finds the first index itself.
    if "%" in path.name:
        if not path.parent.is_dir():
            raise ConfigurationError("comm.bad_endpoint", f"camera image sequence {url!r}: no folder {path.parent}")
        return
    if not path.is_file():
        raise ConfigurationError("comm.bad_endpoint", f"camera recording {url!r}: no such file")
