"""One OpenCV capture session on its own thread: it opens the source, reads frames, and releases the source.

OpenCV's ``VideoCapture`` blocks (opening a network stream, waiting for the next frame), so every call on it runs
on this thread and never on the event loop; FFmpeg's own open and read timeouts bound each blocking call, so the
thread always comes back to look at its stop flag.

A live source (device, network) is grabbed continuously so the stream's buffer never holds an old picture; a frame
is decoded only when a capture asks for one, and only a frame that finished arriving after the request, so a
capture never gets a frame that was waiting in a buffer (waiting for the frame after that one would add a whole
frame period to every capture for little: the frame in flight left the camera at most one period earlier). A
recording is read one frame per request, in order.

Failures are kept as a catalogue code and a detail; the driver raises them on the event loop. This module knows
nothing about asyncio: it calls ``notify`` (thread-safe) whenever something changed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from controller.hardware.camera.sources import CameraSource, SourceKind

Image = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class CaptureFailure:
    code: str
    detail: str


class CaptureThread:
    def __init__(
        self,
        source: CameraSource,
        *,
        open_timeout: float,
        read_timeout: float,
        notify: Callable[[], None],
    ) -> None:
        self.source = source
        self._open_timeout_ms = max(1, round(open_timeout * 1000))
        self._read_timeout_ms = max(1, round(read_timeout * 1000))
        self._notify = notify
        self._changed = threading.Condition()
        self._stopping = False
        self._opened = False
        self._failure: CaptureFailure | None = None
        self._wanted = 0  # the newest request id
        self._served = 0  # the newest request id a frame was published for
        self._frame: tuple[int, Image] | None = None  # (request id, image) not yet taken
        self.backend = ""
        self.frames_read = 0
        self._thread = threading.Thread(target=self._run, name=f"camera {source.url}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    # --- asked from the event loop ------------------------------------------------------------------------------

    @property
    def opened(self) -> bool:
        with self._changed:
            return self._opened

    @property
    def failure(self) -> CaptureFailure | None:
        with self._changed:
            return self._failure

    def request(self) -> int:
        """Ask for the next frame; the answer is taken with ``take`` under the returned id."""
        with self._changed:
            self._wanted += 1
            self._changed.notify_all()
            return self._wanted

    def take(self, request: int) -> Image | None:
        """The frame published for ``request``, once. A live frame published for an older request (its capture
        timed out) is dropped as stale; a recording's frame is never dropped, so no frame of a file is skipped."""
        with self._changed:
            if self._frame is None:
                return None
            published_for, image = self._frame
            if published_for != request and self.source.live:
                return None
            self._frame = None
            self._changed.notify_all()  # a recording waits for its frame to be taken before reading the next
            return image

    def stop(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify_all()

    def join(self, timeout: float) -> bool:
        """Wait for the thread to release the source; False if it is still blocked in OpenCV after ``timeout``."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # --- the thread ---------------------------------------------------------------------------------------------

    def _run(self) -> None:
        capture: cv2.VideoCapture | None = None
        try:
            capture = self._open()
            if capture is None:
                return
            if self.source.live:
                self._read_live(capture)
            else:
                self._read_recording(capture)
        except cv2.error as exc:  # OpenCV raising instead of returning False: the source is unusable all the same
            self._fail("comm.protocol", f"camera {self.source.url}: OpenCV failed: {exc}")
        finally:
            if capture is not None:
                capture.release()

    def _open(self) -> cv2.VideoCapture | None:
        timeouts = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            self._open_timeout_ms,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            self._read_timeout_ms,
        ]
        target = self.source.target
        if isinstance(target, int):
            capture = cv2.VideoCapture(target, cv2.CAP_ANY, timeouts)
        elif self.source.kind is SourceKind.DEVICE:
            capture = cv2.VideoCapture(target, cv2.CAP_V4L2, timeouts)
        elif self.source.kind is SourceKind.NETWORK:
            capture = cv2.VideoCapture(target, cv2.CAP_FFMPEG, timeouts)
        else:  # a recording: FFmpeg for video files and stills, OpenCV's own reader for some image sequences
            capture = cv2.VideoCapture(target, cv2.CAP_ANY)
        if not capture.isOpened():
            capture.release()
            # A file that exists (checked when the URL was parsed) but does not open is not a video: configuration.
            code = "comm.bad_endpoint" if self.source.kind is SourceKind.FILE else "comm.disconnected"
            self._fail(code, f"camera {self.source.url}: cannot open the source")
            return None
        with self._changed:
            self.backend = capture.getBackendName()
            self._opened = True
        self._notify()
        return capture

    def _read_live(self, capture: cv2.VideoCapture) -> None:
        while True:
            if not capture.grab():
                self._fail("comm.disconnected", f"camera {self.source.url}: stream ended or stalled")
                return
            self.frames_read += 1
            with self._changed:
                if self._stopping:
                    return
                pending = self._wanted  # every request made before this frame finished arriving
            if pending > self._served:
                ok, image = capture.retrieve()
                if not ok:
                    self._fail("comm.disconnected", f"camera {self.source.url}: frame could not be decoded")
                    return
                self._publish(pending, np.asarray(image, dtype=np.uint8))

    def _read_recording(self, capture: cv2.VideoCapture) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._stopping or (self._wanted > self._served and self._frame is None))
                if self._stopping:
                    return
                pending = self._wanted
            ok, image = capture.read()
            if not ok:
                detail = f"camera {self.source.url}: no more frames after {self.frames_read}"
                self._fail("camera.end_of_stream", detail)
                return
            self.frames_read += 1
            self._publish(pending, np.asarray(image, dtype=np.uint8))

    def _publish(self, request: int, image: Image) -> None:
        with self._changed:
            self._served = request
            self._frame = (request, image)
        self._notify()

    def _fail(self, code: str, detail: str) -> None:
        with self._changed:
            if self._failure is None:
                self._failure = CaptureFailure(code, detail)
        self._notify()
