"""How many CPU threads a benchmark uses, and whether the machine has them to give.

`--compare-eager` times two libraries that each pick their own thread count (ONNX Runtime and
torch); left alone they may differ, and on a machine already busy with other work both
oversubscribe the cores, so the slower side's tail (p90) blows up and the speed-up says more about
the load than about the model (6.35x with eager p90 5.7 s, 2.46x with --threads 1, on one busy
machine).  So both sides get one count, said out loud, and a busy machine gets a warning.
"""
from __future__ import annotations

import os
from typing import Optional, Tuple

from ..contract.machine import usable_cpus


def others_load() -> Optional[float]:
    """The 1-minute load average (runnable processes), None where the system has none."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return None


def eager_default_threads() -> int:
    """The count a PyTorch user gets by default (torch's own intra-op choice)."""
    import torch

    return int(torch.get_num_threads())


def oversubscription_warning(threads: int, cpus: Optional[int] = None, load: Optional[float] = None) -> Optional[str]:
    """The sentence to warn with when `threads` per side plus the machine's other work exceed its CPUs."""
    cpus = usable_cpus() if cpus is None else cpus
    load = others_load() if load is None else load
    if threads > cpus:
        return (f"{threads} threads on {cpus} usable CPUs: the threads compete with each other and the timings "
                f"scatter; use --threads {cpus} or fewer")
    if load is not None and load + threads > cpus + 0.5:
        return (f"the machine is busy (load average {load:.1f} on {cpus} CPUs): {threads} thread(s) per side "
                f"compete with other work, so latencies scatter and the slower side's tail grows; rerun on an "
                f"idle machine, or with --threads 1 for steadier numbers")
    return None


def bench_threads(requested: Optional[int], compare_eager: bool) -> Tuple[Optional[int], str]:
    """(threads for every timed side, how it was chosen).  With --compare-eager and no --threads:
    torch's default count, given to ONNX Runtime too, so both sides run on the same threads."""
    if requested:
        return int(requested), "--threads"
    if compare_eager:
        return eager_default_threads(), "torch's default here, given to both sides"
    return None, "the back-end's default"
