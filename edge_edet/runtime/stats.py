"""Per-stage timings and the end-of-run summary, so a stream reports its numbers honestly.

Every stage (capture, pre, infer, post, render) records how long each frame spent in it; the
summary gives p50/p99 per stage, end-to-end FPS (frames delivered to the sinks over wall time)
and engine-only FPS (frames over the time spent inside the engine), measured in the same run.
Samples are kept in a bounded window, so an all-day run does not grow without limit.
"""
from __future__ import annotations

import collections
import threading
import time
from typing import Dict, Optional

import numpy as np

STAGES = ("capture", "pre", "infer", "post", "render")
WINDOW = 20000  # samples kept per stage for percentiles


class StageTimes:
    """Durations (seconds) of one stage: running count and total, plus a bounded sample window."""

    def __init__(self, window: int = WINDOW):
        self.samples = collections.deque(maxlen=window)
        self.count = 0
        self.total = 0.0
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            self.samples.append(seconds)
            self.count += 1
            self.total += seconds

    def summary(self) -> dict:
        with self._lock:
            values = np.asarray(self.samples, dtype=np.float64)
            count, total = self.count, self.total
        if values.size == 0:
            return {"count": 0, "mean_ms": None, "p50_ms": None, "p99_ms": None}
        p50, p99 = np.percentile(values, [50, 99])
        return {"count": count, "mean_ms": round(total / count * 1e3, 3),
                "p50_ms": round(float(p50) * 1e3, 3), "p99_ms": round(float(p99) * 1e3, 3)}


class PipelineStats:
    """Collects stage times, frame counts and the wall-clock span of one run."""

    def __init__(self, stages=STAGES):
        self.stages: Dict[str, StageTimes] = {name: StageTimes() for name in stages}
        self.latency = StageTimes()  # capture to sink done, per frame
        self.frames = 0
        self.images_inferred = 0  # frames that went through the engine (batch padding excluded)
        self.started: Optional[float] = None
        self.finished: Optional[float] = None

    def start(self) -> None:
        self.started = time.perf_counter()

    def add(self, stage: str, seconds: float) -> None:
        self.stages[stage].add(seconds)

    def frame_done(self, captured_at: Optional[float] = None) -> None:
        now = time.perf_counter()
        self.frames += 1
        self.finished = now
        if captured_at is not None:
            self.latency.add(now - captured_at)

    def summary(self, dropped: int = 0, extra: Optional[dict] = None) -> dict:
        end = self.finished if self.finished is not None else time.perf_counter()
        elapsed = (end - self.started) if self.started is not None else 0.0
        infer = self.stages.get("infer")
        engine_fps = None
        if infer is not None and infer.total > 0:
            engine_fps = round((self.images_inferred or infer.count) / infer.total, 2)
        result = {
            "frames": self.frames,
            "dropped": int(dropped),
            "elapsed_s": round(elapsed, 3),
            "end_to_end_fps": round(self.frames / elapsed, 2) if elapsed > 0 and self.frames else None,
            "engine_fps": engine_fps,
            "stages": {name: times.summary() for name, times in self.stages.items()},
            "latency": self.latency.summary(),
        }
        if infer is not None and infer.count and self.images_inferred:
            result["mean_batch"] = round(self.images_inferred / infer.count, 3)  # frames per engine call
        if result["end_to_end_fps"] and engine_fps:
            result["end_to_end_vs_engine"] = round(result["end_to_end_fps"] / engine_fps, 3)
        if extra:
            result.update(extra)
        result["paced_by_source"] = paced_by_source(result)
        return result


PACED_SHARE = 0.9  # a paced run that delivered this share of the source's rate kept up with it


def paced_by_source(summary: dict) -> bool:
    """True when the source set the pace: it delivers at its own rate (camera, stream, a file read in
    real time), the engine could have gone faster, and the run kept up with the source; then the
    end-to-end share of engine-only FPS says nothing about the pipeline."""
    source = summary.get("source") or {}
    fps, e2e, engine = source.get("fps"), summary.get("end_to_end_fps"), summary.get("engine_fps")
    if not (source.get("paced") and fps and e2e and engine):
        return False
    return engine > fps and e2e >= PACED_SHARE * fps


def _ms(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def _share(summary: dict) -> str:
    if summary.get("paced_by_source"):
        return f", paced by the source ({summary['source']['fps']:g} FPS)"
    if summary.get("end_to_end_vs_engine"):
        return f" ({summary['end_to_end_vs_engine'] * 100:.0f}% of engine)"
    return ""


def format_summary(summary: dict) -> str:
    """The human-readable block printed when a stream ends."""
    lines = [
        f"frames {summary['frames']}, dropped {summary['dropped']}, {summary['elapsed_s']:.2f} s",
        f"end-to-end FPS {_ms(summary['end_to_end_fps'])}, engine-only FPS {_ms(summary['engine_fps'])}"
        + _share(summary),
        f"{'stage':<8} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}",
    ]
    rows = list(summary["stages"].items()) + [("latency", summary["latency"])]
    for name, row in rows:
        lines.append(f"{name:<8} {_ms(row['p50_ms']):>8} {_ms(row['p99_ms']):>8} {_ms(row['mean_ms']):>8}")
    sources = summary.get("sources") or []
    if len(sources) > 1:  # one line per source, and its counts under it
        lines.append(f"{len(sources)} sources, batches of up to {summary.get('batch', '-')}, "
                     f"mean {summary.get('mean_batch') or 0:.2f} frames per engine call")
        for row in sources:
            lines.append(format_source(row))
            lines.extend("  " + line for line in _count_lines(row.get("counts")))
    else:
        lines.extend(_count_lines(summary.get("counts")))
        decode = (summary.get("source") or {}).get("decode")
        if decode:
            lines.append(f"decode   {decode}")
    backend = summary.get("backend") or {}
    if backend.get("label"):
        lines.append(f"back-end {backend['label']}")
    remote = backend.get("remote")
    if remote:
        lines.append(format_remote(remote))
    return "\n".join(lines)


def format_source(row: dict) -> str:
    """One source's line of a many-source summary: its frames, FPS and longest wait for a frame."""
    text = (f"source {row['index']} {row['name']}: frames {row['frames']}, dropped {row['dropped']}, "
            f"FPS {_ms(row['end_to_end_fps'])}, longest gap {row['longest_gap_s']:.2f} s")
    decode = (row.get("source") or {}).get("decode")
    return text + (f", decode {decode}" if decode else "") + (f" ({row['ended']})" if row.get("ended") else "")


def _count_lines(counts: Optional[dict]) -> list:
    if not counts:
        return []
    lines = [f"tracks {counts['tracks']}"]
    for name, c in counts["lines"].items():
        per_class = ", ".join(f"{label} {v['in']}/{v['out']}" for label, v in c["by_class"].items())
        lines.append(f"line {name}: in {c['in']}, out {c['out']}" + (f" (in/out: {per_class})" if per_class else ""))
    for name, z in counts["zones"].items():
        dwell = f", mean dwell {z['mean_dwell_s']} s" if z["mean_dwell_s"] is not None else ""
        lines.append(f"zone {name}: {z['occupancy']} inside at the end, {z['visits']} visits{dwell}"
                     + (f", longest {z['max_dwell_s']} s" if z["max_dwell_s"] is not None else ""))
    return lines


def format_remote(remote: dict) -> str:
    """A remote back-end's round trip split into time in the server and on the network."""
    trip = remote["round_trip"]
    text = f"remote   round trip p50 {_ms(trip['p50_ms'])} ms, p99 {_ms(trip['p99_ms'])} ms"
    server = remote.get("server")
    if server:
        text += (f"; in the server {_ms(server['mean_request_ms'])} ms (queue {_ms(server['mean_queue_ms'])}, "
                 f"inference {_ms(server['mean_compute_ms'])}), network {_ms(remote.get('network_ms'))} ms "
                 f"per request; server mean batch {server.get('mean_batch', '-')}")
    return text
