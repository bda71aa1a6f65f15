"""Time `usbench run` with no arguments: cold (empty caches) and warm (second run, everything cached).

Goal (issue 2): cold at most 5 minutes on 2 cores; warm at most 10% of cold.

    python bench/run_builtin.py            # prints a Markdown table row for bench/RESULTS.md
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, USBENCH_CACHE=str(Path(tmp) / "cache"), USBENCH_OFFLINE="1")
        cmd = [sys.executable, "-m", "usbench", "run", "--out", str(Path(tmp) / "out"), "-q"]
        cold = timed(cmd, env)
        warm = timed(cmd, env)
    print("| run | seconds |\n|---|---|")
    print(f"| cold (empty caches) | {cold:.1f} |")
    print(f"| warm (second run) | {warm:.1f} ({100 * warm / cold:.1f}% of cold) |")
    print(f"\ncores: {os.cpu_count()}, goal: cold <= 300 s, warm <= 10% of cold")


if __name__ == "__main__":
    main()
