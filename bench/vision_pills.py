"""Pill-counting benchmark: our tray counter against a plain contour-area counter on generated tray frames.

Frames: ``simulators.scene.trays.tray_set``: 1280x960 BGR photographs of a counting tray with 1 to 200 pills (five
count buckets, equal shares), a fifth to seven tenths of them touching in clusters, every shape, colour, tray
and lighting the simulator has; plus a set with pills lying partly on top of another one (piles), which a count
should call uncertain rather than get wrong. Both counters see the same frames; frame generation is not timed.

Reported per count bucket: exact-count rate (the right count, reported as confident; target >= 99.9 %), confident
wrong counts (target 0), uncertain rate (with how many of those had the right count anyway), the baseline's exact
rate, and time per frame p50/p99 for both, on one core (``cv2.setNumThreads(1)``). Times are CPU time: other work
on the machine inflates wall-clock time, whose overall p50/p99 the caption gives. "pale/light" repeats the frames
of the buckets with white or cream pills (or capsule halves) on a light grey or beige tray, the hard case; "piles"
is the extra set with three pills per tray lying partly on another one.

The baseline is the plain counter the issue compares against: Otsu threshold on the colour distance from the
tray's median colour, inside the region where the simulator's tray lies, external contours, and each contour
counted as its area divided by the median contour area, rounded.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import quantiles
from typing import TypeVar

import cv2
import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.table import Table

from controller.errors import ControllerError
from controller.vision.pills import count_pills
from simulators.scene.trays import COUNT_BUCKETS, TrayOptions, TrayScene, render_tray, tray_set

SEED = 2027
PILE_FRAMES = 30

Image = npt.NDArray[np.uint8]
T = TypeVar("T")


@dataclass
class Tally:
    frames: int = 0
    exact: int = 0  # right count, reported as confident
    uncertain: int = 0
    uncertain_right: int = 0  # uncertain, but the count happened to be right
    confident_wrong: int = 0
    refused: int = 0  # the quality gate asked for a new capture
    baseline_exact: int = 0
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    baseline_wall: list[float] = field(default_factory=list)
    baseline_cpu: list[float] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        for name in ("frames", "exact", "uncertain", "uncertain_right", "confident_wrong", "refused"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.baseline_exact += other.baseline_exact
        for name in ("wall", "cpu", "baseline_wall", "baseline_cpu"):
            getattr(self, name).extend(getattr(other, name))


def baseline_count(frame: Image) -> int:
    """The plain contour-area counter (see the module docstring)."""
    height, width = frame.shape[:2]
    region = frame[int(0.11 * height) : int(0.89 * height), int(0.09 * width) : int(0.91 * width)]
    lab = cv2.cvtColor(cv2.GaussianBlur(region, (5, 5), 0), cv2.COLOR_BGR2Lab).astype(np.float32)
    tray = np.median(lab.reshape(-1, 3), axis=0)
    distance = np.sqrt(((lab - tray) ** 2).sum(axis=2))
    scaled = np.clip(distance * (255.0 / max(float(distance.max()), 1.0)), 0, 255).astype(np.uint8)
    _, mask = cv2.threshold(scaled, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    areas = np.array([cv2.contourArea(c) for c in contours], np.float64)
    areas = areas[areas >= 30.0]
    if areas.size == 0:
        return 0
    single = float(np.median(areas))
    return int(sum(max(1, round(a / single)) for a in areas))


def _timed(function: Callable[[Image], T], frame: Image) -> tuple[T, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(frame)
    return result, time.perf_counter() - wall, time.process_time() - cpu


PALE_ON_LIGHT = ({"white", "cream"}, {"light_grey", "beige"})  # the hard case, also reported on its own


def _is_pale_on_light(scene: TrayScene) -> bool:
    pale, light = PALE_ON_LIGHT
    return scene.tray_colour in light and (scene.pill_colour in pale or scene.second_colour in pale)


def judge(scene: TrayScene) -> Tally:
    """One frame counted by both counters, as a tally of one."""
    tally = Tally(frames=1)
    try:
        result, wall, cpu = _timed(count_pills, scene.image)
    except ControllerError:
        tally.refused += 1
    else:
        tally.wall.append(wall)
        tally.cpu.append(cpu)
        right = result.count == scene.count
        if result.uncertain:
            tally.uncertain += 1
            tally.uncertain_right += right
        elif right:
            tally.exact += 1
        else:
            tally.confident_wrong += 1
    counted, wall, cpu = _timed(baseline_count, scene.image)
    tally.baseline_exact += counted == scene.count
    tally.baseline_wall.append(wall)
    tally.baseline_cpu.append(cpu)
    return tally


@dataclass
class Measurement:
    buckets: dict[str, Tally]
    pale_on_light: Tally  # frames of the buckets with white or cream pills (or capsule halves) on a light tray
    piles: Tally


def measure(frames: int = 300, console: Console | None = None) -> Measurement:
    cv2.setNumThreads(1)  # the target is per frame on one core
    count_pills(render_tray(TrayOptions(count=20, seed=1)).image)  # warm-up: imports, OpenCV's first calls
    buckets: dict[str, Tally] = defaultdict(Tally)
    pale = Tally()
    for index, options in enumerate(tray_set(frames, SEED)):
        scene = render_tray(options)
        outcome = judge(scene)
        buckets[_bucket(options.count)].add(outcome)
        if _is_pale_on_light(scene):
            pale.add(outcome)
        if console is not None and (index + 1) % 50 == 0:
            console.print(f"  pills: {index + 1}/{frames} frames", style="dim")
    piles = Tally()
    for options in tray_set(PILE_FRAMES, SEED + 1, piles=3):
        piles.add(judge(render_tray(options)))
    return Measurement(dict(sorted(buckets.items(), key=lambda item: _bucket_order(item[0]))), pale, piles)


def _bucket(count: int) -> str:
    low, high = next(b for b in COUNT_BUCKETS if b[0] <= count <= b[1])
    return f"{low}-{high}"


def _bucket_order(name: str) -> int:
    return int(name.split("-", maxsplit=1)[0])


def _ms(samples: list[float], p: int) -> str:
    if not samples:
        return "-"
    value = quantiles(samples, n=100)[p - 1] if len(samples) > 1 else samples[0]
    return f"{value * 1000:.0f}"


def _rate(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "-"


def table(m: Measurement) -> Table:
    total = Tally()
    for tally in m.buckets.values():
        total.add(tally)
    out = Table(
        title=f"Pill counting: {total.frames} generated 1280x960 trays with touching clusters",
        caption=(
            f"ms = CPU time per frame on one core (wall clock, shared machine: p50 {_ms(total.wall, 50)}, "
            f"p99 {_ms(total.wall, 99)}). exact = right count reported as confident. "
            f"Ours / baseline p50 time: {_ratio(total.cpu, total.baseline_cpu)}."
        ),
    )
    for column in ("pills", "frames", "exact", "wrong", "uncertain (right)", "baseline", "ms p50/p99", "base ms"):
        out.add_column(column, justify="left" if column == "pills" else "right")
    for name, t in [*m.buckets.items(), ("all", total), ("  pale/light", m.pale_on_light), ("piles", m.piles)]:
        counted = t.frames - t.refused
        out.add_row(
            name,
            str(t.frames) + (f" ({t.refused} refused)" if t.refused else ""),
            _rate(t.exact, counted),
            str(t.confident_wrong),
            f"{_rate(t.uncertain, counted)} ({t.uncertain_right})",
            _rate(t.baseline_exact, t.frames),
            f"{_ms(t.cpu, 50)}/{_ms(t.cpu, 99)}",
            f"{_ms(t.baseline_cpu, 50)}/{_ms(t.baseline_cpu, 99)}",
        )
    out.add_row("target", "", ">= 99.9 %", "0", "", "", "<= 60", "")
    return out


def _ratio(ours: list[float], baseline: list[float]) -> str:
    if len(ours) < 2 or len(baseline) < 2:
        return "-"
    return f"{quantiles(ours, n=100)[49] / quantiles(baseline, n=100)[49]:.1f}x"


def run(console: Console, frames: int = 300) -> Table:
    return table(measure(frames, console=console))
