"""Who a camera says it is, asked outside the video itself (OpenCV hands over pixels, not metadata).

- An HTTP camera names itself in the ``Server`` header of its stream URL (asked with ``HEAD``; a camera that
  refuses ``HEAD`` still sends its headers with the refusal). As for the scanner and the label printer, a model
  containing ``SIMULATOR`` is a simulator: the scene simulator answers ``ADC-CAMERA-SIMULATOR/<version>``.
- A V4L2 device names itself in sysfs; an RTSP camera is not asked (no RTSP client here), and reports as real.
- A recording is never a live observation, so it reports as a simulator: a record made from replayed frames must
  never pass for one made by a real camera.
"""

from __future__ import annotations

import asyncio
import base64
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from controller.errors import CommunicationError
from controller.hardware.camera.interface import CameraIdentity
from controller.hardware.camera.sources import CameraSource, SourceKind

SIMULATOR_MARKER = "SIMULATOR"


async def probe_identity(source: CameraSource, *, timeout: float) -> CameraIdentity:
    if source.kind is SourceKind.FILE:
        return CameraIdentity(model=f"recording {Path(str(source.target)).name}", is_simulator=True)
    if source.kind is SourceKind.DEVICE:
        return CameraIdentity(model=_v4l2_name(source.target), is_simulator=False)
    url = str(source.target)
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        return CameraIdentity(model=f"RTSP camera {urlsplit(url).hostname}", is_simulator=False)
    try:
        async with asyncio.timeout(timeout + 1.0):  # urllib's own timeout bounds the thread; this bounds the wait
            server = await asyncio.to_thread(_http_server_header, url, timeout)
    except TimeoutError as exc:
        raise CommunicationError("comm.timeout", f"camera {source.url}: no headers within {timeout} s") from exc
    model = server or f"HTTP camera {urlsplit(url).hostname} (no Server header)"
    return CameraIdentity(model=model, is_simulator=SIMULATOR_MARKER in model)


def _http_server_header(url: str, timeout: float) -> str | None:
    parts = urlsplit(url)
    bare = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))  # urllib takes no user:pass@host
    request = urllib.request.Request(bare, method="HEAD")
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        request.add_header("Authorization", "Basic " + base64.b64encode(credentials).decode("ascii"))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            named: str | None = response.headers.get("Server")
            return named
    except urllib.error.HTTPError as exc:  # refused HEAD (405) or wants other credentials: headers still came
        server: str | None = exc.headers.get("Server")
        return server
    except urllib.error.URLError as exc:
        code = "comm.timeout" if isinstance(exc.reason, TimeoutError) else "comm.disconnected"
        raise CommunicationError(code, f"camera {bare}: {exc.reason}", url=bare) from exc
    except TimeoutError as exc:
        raise CommunicationError("comm.timeout", f"camera {bare}: no headers within {timeout} s", url=bare) from exc
    except OSError as exc:
        raise CommunicationError("comm.disconnected", f"camera {bare}: {exc}", url=bare) from exc


def _v4l2_name(target: int | str) -> str:
    node = f"video{target}" if isinstance(target, int) else Path(target).name
    try:
        name = Path("/sys/class/video4linux", node, "name").read_text("utf-8").strip()
    except OSError:
        name = ""
    return name or f"V4L2 {node}"
