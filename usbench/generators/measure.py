"""What a generation run cost: images per second and peak memory, for the run record.

Peak memory is CUDA's ``max_memory_allocated`` on a GPU (reset when the measurement starts), and
on a CPU the peak resident set size of the process sampled every 10 ms during the measurement
(psutil), so it includes the loaded model.
"""

from __future__ import annotations

import threading
import time
from typing import Any


class GenerationMeter:
    """``with GenerationMeter() as m: ...``; then ``m.record(n_images)``."""

    def __init__(self, interval: float = 0.01):
        self.interval = interval
        self.peak_rss = 0
        self.cuda = False
        self._stop = threading.Event()

    def __enter__(self) -> "GenerationMeter":
        try:
            import torch

            self.cuda = torch.cuda.is_available()
            if self.cuda:
                torch.cuda.reset_peak_memory_stats()
        except ImportError:
            pass
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        self.t0 = time.perf_counter()
        return self

    def _sample(self) -> None:
        import psutil

        proc = psutil.Process()
        while True:
            self.peak_rss = max(self.peak_rss, proc.memory_info().rss)
            if self._stop.wait(self.interval):
                return

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.t0
        self._stop.set()
        self._thread.join()

    def record(self, n_images: int) -> dict[str, Any]:
        if self.cuda:
            import torch

            peak, kind = torch.cuda.max_memory_allocated(), "cuda max allocated"
        else:
            peak, kind = self.peak_rss, "cpu peak rss"
        return {"seconds_generate": round(self.seconds, 3),
                "images_per_second": round(n_images / self.seconds, 4) if self.seconds > 0 and n_images else None,
                "peak_memory_mb": round(peak / 2**20, 1), "peak_memory_kind": kind}


def generation_settings(generator: Any) -> dict[str, Any]:
    """Sampler, steps, guidance, dtype, batch size (the run record's and leaderboard's columns); {} for
    generators without those knobs."""
    settings = getattr(generator, "settings", None)
    return settings() if callable(settings) else {}


__all__ = ["GenerationMeter", "generation_settings"]
