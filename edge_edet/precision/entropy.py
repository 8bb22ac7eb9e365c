"""Entropy calibration as TensorRT's EntropyCalibration2 does it: a histogram of |x| and the clip
threshold whose int8 version of the distribution diverges least (KL) from the clipped original.

Ours because onnxruntime's entropy calibrator cannot be used for TensorRT: it searches a two-sided
histogram of real values with 255 quantised bins and merges `size // 255` bins per level, dumping the
remainder (up to 254 bins) into the last level and truncating the expanded levels to integers.  At its
smallest candidate (a quarter of the range) the "quantised" distribution equals the reference, so the
divergence is ~0 there and it often picks it: 77 of the person detector's 172 convolution inputs, most
of the heads' among them, were clipped to about max/4 (AP 16.3 -> 0.7; docs/precision.md).

The algorithm (NVIDIA, "8-bit Inference with TensorRT", GTC 2017):
  for i in 128 .. bins:  P = bins[0:i] with the mass beyond bin i added to P[i-1];
                         Q = bins[0:i] merged into 128 levels, each level's mass spread evenly over
                             its non-empty bins (empty bins stay empty);
                         divergence[i] = KL(P || Q)
  threshold = i * bin width for the smallest divergence.
128 levels: symmetric int8 has 127 positive steps and zero.  Exact zeros are counted apart and left
out of the search (int8 represents them exactly; a ReLU's spike at 0 would otherwise dominate the
divergence and pull every post-ReLU threshold down), the same concern pytorch-quantization's
calibrator handles by flattening its first bin.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

NUM_BINS = 2048  # TensorRT's histogram size
NUM_LEVELS = 128  # int8: 127 positive steps + zero
START_BIN = 128  # the smallest candidate keeps NUM_LEVELS bins (one bin per level)


class AbsHistogram:
    """Streaming histogram of |x| with NUM_BINS equal bins over [0, top).

    `top` starts at the first batch's max |x|; a later batch that exceeds it doubles `top` as often as
    needed, merging neighbouring bins pairwise, so counts stay exact without a second pass over the data.
    """

    def __init__(self, num_bins: int = NUM_BINS):
        if num_bins < NUM_LEVELS or num_bins % 2:
            raise ValueError(f"num_bins must be even and at least {NUM_LEVELS}, not {num_bins}")
        self.counts = np.zeros(num_bins, dtype=np.int64)
        self.top = 0.0
        self.amax = 0.0
        self.zeros = 0

    def add(self, values) -> None:
        data = np.abs(np.asarray(values, dtype=np.float32).ravel())
        data = data[np.isfinite(data)]
        nonzero = data[data > 0]
        self.zeros += int(data.size - nonzero.size)
        if nonzero.size == 0:
            return
        peak = float(nonzero.max())
        self.amax = max(self.amax, peak)
        if self.top == 0.0:
            self.top = peak
        while peak > self.top:
            self._double()
        bins = len(self.counts)
        index = np.minimum((nonzero * np.float32(bins / self.top)).astype(np.int64), bins - 1)
        self.counts += np.bincount(index, minlength=bins)

    def _double(self) -> None:
        merged = self.counts.reshape(-1, 2).sum(axis=1)
        self.counts = np.concatenate([merged, np.zeros_like(merged)])
        self.top *= 2.0

    @property
    def bin_width(self) -> float:
        return self.top / len(self.counts)

    def threshold(self) -> float:
        """The KL-optimal clip threshold (amax) of everything added so far; 0 for an all-zero tensor."""
        if self.top == 0.0:
            return 0.0
        return min(kl_threshold_bin(self.counts)[0] * self.bin_width, self.amax)


def kl_threshold_bin(counts, num_levels: int = NUM_LEVELS, start_bin: int = START_BIN) -> Tuple[int, np.ndarray]:
    """(i, divergences): keep bins [0, i) for the least KL(P || Q); divergences[k] is candidate start_bin + k.

    Every candidate at once from running sums (`divergence` is the same number for one candidate, written
    out).  A histogram whose non-empty bins all lie below start_bin is returned whole (i = last non-empty
    bin + 1): no candidate would clip it.
    """
    counts = np.asarray(counts, dtype=np.float64)
    occupied = np.flatnonzero(counts)
    if occupied.size == 0:
        return 0, np.zeros(0)
    last = int(occupied[-1]) + 1
    if last <= start_bin:
        return last, np.zeros(0)
    total = counts.sum()
    zero = np.zeros(1)
    mass_to = np.concatenate([zero, np.cumsum(counts)])  # mass_to[j] = counts[:j].sum()
    filled_to = np.concatenate([zero, np.cumsum(counts > 0)])
    clogc = np.where(counts > 0, counts * np.log(np.where(counts > 0, counts, 1.0)), 0.0)
    clogc_to = np.concatenate([zero, np.cumsum(clogc)])
    candidates = np.arange(start_bin, len(counts) + 1)
    bounds = (np.arange(num_levels + 1)[None, :] * candidates[:, None] + num_levels - 1) // num_levels
    low, high = bounds[:, :-1], bounds[:, 1:]  # level l holds bins [low, high)
    mass = mass_to[high] - mass_to[low]
    filled = filled_to[high] - filled_to[low]
    kept = mass_to[candidates]  # Q's total
    used = mass > 0
    level_q = np.log(np.divide(mass, filled, out=np.ones_like(mass), where=used))  # log of Q's per-bin count
    # sum over bins of c*log(c/T / (q/kept)), as if no mass were beyond the candidate
    terms = np.where(used, (clogc_to[high] - clogc_to[low]) - mass * (np.log(total) + level_q - np.log(kept)[:, None]), 0.0)
    divergences = terms.sum(axis=1) / total
    # the last kept bin also holds the mass beyond the candidate (P only)
    edge = counts[candidates - 1]
    beyond = total - kept
    q_edge = level_q[:, -1] - np.log(kept)
    ordinary = np.where(edge > 0, edge / total * (np.log(np.where(edge > 0, edge, 1.0) / total) - q_edge), 0.0)
    clipped = edge + beyond
    actual = np.where(clipped > 0, clipped / total * (np.log(np.where(clipped > 0, clipped, 1.0) / total) - q_edge), 0.0)
    divergences = divergences - ordinary + actual
    divergences[(edge == 0) & (beyond > 0)] = np.inf  # P has mass in a bin that Q leaves empty
    best = int(np.argmin(divergences))
    return int(candidates[best]), divergences


def divergence(counts, i: int, num_levels: int = NUM_LEVELS) -> float:
    """KL(P || Q) of one candidate i, step by step (the definition `kl_threshold_bin` computes in bulk)."""
    counts = np.asarray(counts, dtype=np.float64)
    kept = counts[:i]
    reference = kept.copy()
    reference[-1] += counts[i:].sum()
    level = np.arange(i) * num_levels // i  # bin j belongs to level floor(j * levels / i)
    candidate = np.zeros(i)
    for index in range(num_levels):
        members = (level == index) & (kept > 0)
        if members.any():
            candidate[members] = kept[level == index].sum() / members.sum()
    return kl_divergence(reference, candidate)


def kl_divergence(p, q) -> float:
    """KL(p || q) of two unnormalised histograms; infinite where p has mass and q has none."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if p.sum() <= 0 or q.sum() <= 0:
        return float("inf")
    p = p / p.sum()
    q = q / q.sum()
    mass = p > 0
    if np.any(q[mass] <= 0):
        return float("inf")
    return float(np.sum(p[mass] * np.log(p[mass] / q[mass])))
