"""Latency statistics from per-iteration timings: the figures every benchmark report quotes."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def latency_stats(seconds: Sequence[float], batch: int = 1) -> dict:
    """Median, p90, p99 (and mean, min, max) in milliseconds, plus throughput in images per second.

    Throughput is images over the summed iteration time, so a few slow iterations count as they
    would in a real run, while the median shows the typical latency.
    """
    values = np.asarray(seconds, dtype=np.float64)
    if values.size == 0:
        raise ValueError("no timings to summarise")
    median, p90, p99 = np.percentile(values, [50, 90, 99])
    return {
        "iterations": int(values.size),
        "median_ms": round(float(median) * 1e3, 3),
        "p90_ms": round(float(p90) * 1e3, 3),
        "p99_ms": round(float(p99) * 1e3, 3),
        "mean_ms": round(float(values.mean()) * 1e3, 3),
        "min_ms": round(float(values.min()) * 1e3, 3),
        "max_ms": round(float(values.max()) * 1e3, 3),
        "throughput_ips": round(batch * values.size / float(values.sum()), 2),
    }


def format_stats(title: str, stats: dict) -> str:
    return (f"{title:<22} median {stats['median_ms']:8.2f} ms   p90 {stats['p90_ms']:8.2f} ms   "
            f"p99 {stats['p99_ms']:8.2f} ms   {stats['throughput_ips']:8.2f} img/s")
