"""Time the built-in benchmark (`usbench run` with no arguments): cold (empty caches) and warm.

Each repetition runs `usbench run -q` twice in a fresh temporary folder with an empty usbench
cache: cold (builds the phantom reference, generates, extracts, scores, reports), then warm
(everything reused). Per run it reports the wall time of each phase (reference, generation per
generator, features per extractor, each metric, leaderboard, report; a phase's time excludes the
phases nested in it, e.g. a metric's time excludes the features it asked for), the peak resident
set of the usbench process and of its largest worker process, and user and system CPU (the
process and its workers). With ``--repeat N`` the table shows the median of the N runs (and
the range). The machine's CPU model, core count and load average are printed beside it.

    python bench/run_builtin.py                 # one cold + warm run, writes bench/RESULTS.md
    python bench/run_builtin.py --repeat 3      # the lead's measurement: median of three
    python bench/run_builtin.py --no-write      # print only

Goals (issue 17, 2-core machine, empty cache): cold <= 120 s wall, system CPU <= 10 % of user
CPU, peak RSS <= 2 GB, warm <= 2 s including the report.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import re
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## The built-in benchmark"
START, END = "<!-- run_builtin.py: start -->", "<!-- run_builtin.py: end -->"


# ----------------------------------------------------------------------------------------------
# child: one `usbench run` with phase timers around the library's stages


def _install_timers(times: dict[str, float]) -> None:
    """Wrap the stages of a run so each records its wall time, exclusive of nested stages."""
    stack: list[float] = []

    def wrap(owner, attr: str, phase) -> None:
        fn = getattr(owner, attr, None)
        if fn is None:  # a stage renamed by a refactor: its time lands in "other"
            print(f"run_builtin: no {getattr(owner, '__name__', owner)}.{attr} to time", file=sys.stderr)
            return

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            name = phase(*args, **kwargs)
            t0 = time.perf_counter()
            stack.append(0.0)
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - t0
                nested = stack.pop()
                times[name] = times.get(name, 0.0) + elapsed - nested
                if stack:
                    stack[-1] += elapsed

        setattr(owner, attr, timed)

    import usbench.datasets.phantom as phantom_ds
    import usbench.leaderboard as leaderboard
    import usbench.report as report
    import usbench.runs as runs
    from usbench.metrics import METRICS
    from usbench.metrics.features import FeatureStore

    wrap(phantom_ds, "builtin_reference", lambda *a, **k: "reference (phantom-busi)")
    wrap(runs.Benchmark, "generate", lambda self, name, *a, **k: f"generation {name}")
    wrap(FeatureStore, "_load_or_compute", lambda self, imageset, name, *a, **k: f"features {name}")
    for name in METRICS.names():
        try:
            cls = METRICS.get(name)
        except Exception:  # a broken plugin is not ours to time
            continue
        wrap(cls, "compute", lambda self, *a, _n=name, **k: f"metric {_n}")
    wrap(leaderboard, "write_all", lambda *a, **k: "leaderboard")
    wrap(report, "write_report", lambda *a, **k: "report")


def child(out: str, result: str, extra: list[str]) -> int:
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    _install_timers(times)
    from usbench.cli import main

    code = main(["run", "--out", out, "-q", *extra])
    if code:
        return int(code)
    total = time.perf_counter() - t0
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    Path(result).write_text(json.dumps({
        "phases": times, "in_process_wall": total,
        "rss_main_mb": me.ru_maxrss / 1024, "rss_worker_mb": kids.ru_maxrss / 1024,
    }))
    return 0


# ----------------------------------------------------------------------------------------------
# parent: fresh folders, cold then warm, CPU from the kernel's accounting of the child


def run_once(cmd_out: Path, cache: Path, result: Path, extra: list[str]) -> dict:
    env = dict(os.environ, USBENCH_CACHE=str(cache), USBENCH_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--child", str(cmd_out), str(result), *extra], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    info = json.loads(result.read_text())
    info.update(wall=wall, user=after.ru_utime - before.ru_utime, sys=after.ru_stime - before.ru_stime,
                load=(load0, os.getloadavg()[0]))
    info["rss_mb"] = max(info["rss_main_mb"], info["rss_worker_mb"])
    return info


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model}, {os.cpu_count()} cores ({usable} usable), {platform.system()} {platform.release()}, Python {platform.python_version()}"


def _med(values: list[float]) -> str:
    m = statistics.median(values)
    return f"{m:.1f}" if len(values) == 1 else f"{m:.1f} ({min(values):.1f}–{max(values):.1f})"


def table(colds: list[dict], warms: list[dict]) -> str:
    phases = sorted({p for r in colds + warms for p in r["phases"]}, key=_phase_order)
    rows = ["| | cold | warm |", "|---|---:|---:|"]
    for p in phases:
        rows.append(f"| {p} | {_med([r['phases'].get(p, 0.0) for r in colds])} | {_med([r['phases'].get(p, 0.0) for r in warms])} |")
    other = lambda r: r["wall"] - sum(r["phases"].values())  # noqa: E731 (start-up, imports, split, writing)
    rows.append(f"| other (start-up, imports, split, bookkeeping) | {_med([other(r) for r in colds])} | {_med([other(r) for r in warms])} |")
    for key, label in (("wall", "**wall, s**"), ("user", "user CPU, s"), ("sys", "system CPU, s")):
        rows.append(f"| {label} | {_med([r[key] for r in colds])} | {_med([r[key] for r in warms])} |")
    rows.append(f"| system / user CPU | {_med([100 * r['sys'] / max(r['user'], 1e-9) for r in colds])} % | "
                f"{_med([100 * r['sys'] / max(r['user'], 1e-9) for r in warms])} % |")
    rows.append(f"| peak RSS, MB (main process; largest worker) | {_med([r['rss_main_mb'] for r in colds])}; "
                f"{_med([r['rss_worker_mb'] for r in colds])} | {_med([r['rss_main_mb'] for r in warms])}; "
                f"{_med([r['rss_worker_mb'] for r in warms])} |")
    rows.append(f"| load average (1 min) at start | {_med([r['load'][0] for r in colds])} | {_med([r['load'][0] for r in warms])} |")
    return "\n".join(rows)


def _phase_order(p: str) -> tuple[int, str]:
    for k, prefix in enumerate(("reference", "generation", "features", "metric", "leaderboard", "report")):
        if p.startswith(prefix):
            return k, p
    return 9, p


def write_section(text: str) -> None:
    """Replace the measured block (between START and END) of this script's section of
    bench/RESULTS.md; the prose around it and the other sections are left as they are."""
    old = RESULTS.read_text() if RESULTS.is_file() else "# Benchmark results\n"
    block = f"{START}\n{text.rstrip()}\n{END}"
    if START in old and END in old:
        new = old[:old.index(START)] + block + old[old.index(END) + len(END):]
    else:
        new = old.rstrip() + f"\n\n{SECTION} (`usbench run` with no arguments)\n\n{block}\n"
    RESULTS.write_text(new)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=1, help="cold + warm runs, each in fresh folders (median reported)")
    ap.add_argument("--no-write", action="store_true", help=f"print only; do not update {RESULTS.name}")
    ap.add_argument("--run-args", default="", metavar="ARGS",
                    help="extra arguments for usbench run, to check this script quickly (e.g. \"--reference DIR --n 12 "
                         "-g phantom\"); the result is then not the built-in benchmark and is only printed")
    ap.add_argument("--keep", type=Path, metavar="DIR",
                    help="copy the last repetition's output folder (leaderboard, report) to DIR (must not exist)")
    ap.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args.child[0], args.child[1], args.child[2:])
    if args.keep and args.keep.exists():
        print(f"run_builtin: --keep {args.keep} exists; choose a new folder", file=sys.stderr)
        return 2
    if args.repeat < 1:
        print("run_builtin: --repeat must be at least 1", file=sys.stderr)
        return 2
    colds, warms = [], []
    for k in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="usbench-bench-") as tmp:
            tmp = Path(tmp)
            for kind, runs in (("cold", colds), ("warm", warms)):
                r = run_once(tmp / "out", tmp / "cache", tmp / f"{kind}.json", shlex.split(args.run_args))
                runs.append(r)
                print(f"run {k + 1}/{args.repeat} {kind}: {r['wall']:.1f} s wall, user {r['user']:.1f} s, "
                      f"sys {r['sys']:.1f} s, peak RSS {r['rss_mb']:.0f} MB, load {r['load'][0]:.1f}", file=sys.stderr)
            if args.keep and k == args.repeat - 1:
                import shutil

                shutil.copytree(tmp / "out", args.keep)
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    summary = f"median of {args.repeat} runs, range in brackets" if args.repeat > 1 else "one run"
    text = (f"Command: `python bench/run_builtin.py --repeat {args.repeat}` ({when}; {summary}). Machine: {machine()}.\n"
            f"Each repetition: a fresh folder and an empty usbench cache, `usbench run -q` cold, then again warm.\n\n"
            + table(colds, warms) + "\n")
    print(text)
    if args.run_args:
        print(f"(usbench run {args.run_args}: not the built-in benchmark, {RESULTS.name} left as it is)", file=sys.stderr)
    elif not args.no_write:
        write_section(text)
        print(f"written to {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
