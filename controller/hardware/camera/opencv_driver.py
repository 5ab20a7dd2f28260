"""The camera driver on OpenCV's ``VideoCapture``: a capture device, a recording, or an RTSP / HTTP MJPEG stream.

``await OpenCvCamera.connect(url)`` parses the URL (``sources``), opens it on a capture thread of its own
(``capture_thread``) and waits, at most ``timeout``, until it is open. ``capture`` asks that thread for a frame
and waits for it under ``asyncio.timeout``:

- no new frame in time (a stalled stream) is ``comm.timeout``; a frame is never handed out twice, and each one
  handed out carries the next ``sequence`` number;
- a live stream that ends or fails is ``comm.disconnected``; the next capture reopens it (a camera that rebooted
  comes back), and says ``comm.disconnected`` again if it cannot;
- a recording that runs out is ``camera.end_of_stream``, every time after;
- an all-black picture (lens covered, no light, a dead sensor) is ``camera.blank_frame``, a device fault.

Nothing is retried here: the caller decides whether to capture again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TypeVar

import numpy as np

from controller.errors import (
    CATALOGUE,
    Category,
    CommunicationError,
    ConfigurationError,
    ControllerError,
    DeviceFaultError,
)
from controller.hardware.camera.capture_thread import CaptureFailure, CaptureThread, Image
from controller.hardware.camera.identity import probe_identity
from controller.hardware.camera.interface import CameraIdentity, Frame
from controller.hardware.camera.sources import CameraSource, parse_camera_url

# A scene the vision code can use always has something brighter than this; 8 of 255 is sensor noise in the dark.
DEFAULT_BLANK_LEVEL = 8

CLOSE_WAIT = 1.0  # seconds close() waits for capture threads to release their source

_T = TypeVar("_T")


class OpenCvCamera:
    def __init__(
        self,
        source: CameraSource,
        *,
        timeout: float,
        read_timeout: float,
        blank_level: int | None,
    ) -> None:
        self.source = source
        self.url = source.url
        self._timeout = timeout
        self._read_timeout = read_timeout
        self._blank_level = blank_level
        self._lock = asyncio.Lock()
        self._wakeup = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._thread: CaptureThread | None = None
        self._retired: list[CaptureThread] = []  # failed sessions, joined at close
        self._sequence = 0
        self._identity: CameraIdentity | None = None
        self._closed = False

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        timeout: float = 5.0,
        read_timeout: float = 5.0,
        blank_level: int | None = DEFAULT_BLANK_LEVEL,
    ) -> OpenCvCamera:
        """Open the source; ``read_timeout`` is how long a stalled stream may block before it counts as ended."""
        camera = cls(parse_camera_url(url), timeout=timeout, read_timeout=read_timeout, blank_level=blank_level)
        loop = asyncio.get_running_loop()
        try:
            await camera._open_session(loop.time() + timeout)
        except ControllerError:
            await camera.close()
            raise
        return camera

    @property
    def backend(self) -> str:
        """The OpenCV backend that opened the source (``FFMPEG``, ``V4L2``, ``CV_IMAGES``), for reports."""
        return self._thread.backend if self._thread is not None else ""

    async def identify(self) -> CameraIdentity:
        if self._identity is None:
            self._identity = await probe_identity(self.source, timeout=self._timeout)
        return self._identity

    async def capture(self, *, timeout: float = 2.0) -> Frame:
        async with self._lock:
            if self._closed:
                raise CommunicationError("comm.disconnected", f"camera {self.url} is closed", url=self.url)
            deadline = self._loop.time() + timeout
            thread = await self._live_session(deadline)
            request = thread.request()
            image = await self._wait_for(
                lambda: thread.take(request), thread, deadline, late=f"no new frame within {timeout} s"
            )
            self._refuse_blank(image)
            self._sequence += 1
            return _as_frame(image, self._sequence)

    async def close(self) -> None:
        self._closed = True
        threads = [*self._retired, *([self._thread] if self._thread is not None else [])]
        self._thread, self._retired = None, []
        for thread in threads:
            thread.stop()
        # A flowing stream lets its thread go within a frame. One blocked in a stalled stream cannot be woken (OpenCV
        # has no way to interrupt a read), so it is not waited for: it releases the source itself when FFmpeg's
        # read timeout fires, and as a daemon it never keeps the process alive.
        deadline = self._loop.time() + CLOSE_WAIT
        for thread in threads:
            await asyncio.to_thread(thread.join, max(0.0, deadline - self._loop.time()))

    # --- sessions -------------------------------------------------------------------------------------------------

    async def _live_session(self, deadline: float) -> CaptureThread:
        """The open session; a live stream that failed is reopened (its failure was raised by the last capture)."""
        thread = self._thread
        if thread is not None and (thread.failure is None or not self.source.live):
            return thread
        return await self._open_session(deadline)

    async def _open_session(self, deadline: float) -> CaptureThread:
        if self._thread is not None:
            self._thread.stop()
            self._retired.append(self._thread)
        self._retired = [old for old in self._retired if not old.join(0)]  # keep only those still winding down
        thread = CaptureThread(
            self.source,
            # FFmpeg gives up a little after the caller does, so a slow open is reported as the timeout it is.
            open_timeout=max(0.0, deadline - self._loop.time()) + 0.5,
            read_timeout=self._read_timeout,
            notify=self._notify,
        )
        self._thread = thread
        thread.start()
        await self._wait_for(lambda: True if thread.opened else None, thread, deadline, late="not open in time")
        return thread

    def _notify(self) -> None:
        """Called from the capture thread: wake the capture waiting on the event loop."""
        with contextlib.suppress(RuntimeError):  # the loop is already closed: nobody is waiting
            self._loop.call_soon_threadsafe(self._wakeup.set)

    async def _wait_for(
        self, ready: Callable[[], _T | None], thread: CaptureThread, deadline: float, *, late: str
    ) -> _T:
        """Wait on the event loop until ``ready()`` has an answer, the session fails, or the deadline passes."""
        while True:
            self._wakeup.clear()  # cleared before looking, so a notification after the look is not lost
            result = ready()
            if result is not None:
                return result
            if (failure := thread.failure) is not None:
                raise _error_for(failure, self.url)
            remaining = deadline - self._loop.time()
            try:
                if remaining <= 0:
                    raise TimeoutError
                async with asyncio.timeout(remaining):
                    await self._wakeup.wait()
            except TimeoutError:
                raise CommunicationError("comm.timeout", f"camera {self.url}: {late}", url=self.url) from None

    def _refuse_blank(self, image: Image) -> None:
        if self._blank_level is not None and int(image.max()) <= self._blank_level:
            raise DeviceFaultError(
                "camera.blank_frame",
                f"camera {self.url}: the picture is black (brightest pixel {int(image.max())} <= "
                f"{self._blank_level}): lens covered, no light or a sensor fault",
                url=self.url,
            )


def _error_for(failure: CaptureFailure, url: str) -> ControllerError:
    category = CATALOGUE[failure.code].category
    if category is Category.CONFIGURATION:
        return ConfigurationError(failure.code, failure.detail, url=url)
    return CommunicationError(failure.code, failure.detail, url=url)


def _as_frame(image: Image, sequence: int) -> Frame:
    """OpenCV hands out BGR (or grey, or BGRA from some devices); a ``Frame`` is grey or BGR, 8 bits."""
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    channels = 1 if image.ndim == 2 else int(image.shape[2])
    height, width = int(image.shape[0]), int(image.shape[1])
    return Frame(width, height, channels, np.ascontiguousarray(image).tobytes(), sequence)
