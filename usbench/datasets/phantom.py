"""The built-in reference set ``phantom-busi`` and BUSI-layout phantom folders.

``phantom-busi`` is shaped like BUSI (Al-Dhabyani et al. 2020): 133 normal, 437 benign and 210
malignant images with lesion masks, simulated by :mod:`usbench.phantom` with the default probe.
It is built deterministically on first use into usbench's cache and read from there afterwards;
the cache folder's name carries a hash of every parameter and the simulator version, so a change
to either builds a new set instead of reusing a stale one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

from usbench.errors import ConfigError, OutputError, UnknownNameError
from usbench.common import ProgressBar, fingerprint_of
from usbench.imageset import MANIFEST, ImageSet, ImageSetWriter, encode_png
from usbench.phantom.lesions import LABELS
from usbench.phantom.params import SIMULATOR_VERSION, SimParams, check_size
from usbench.phantom.simulate import simulate

NAME = "phantom-busi"
BUSI_COUNTS = {"normal": 133, "benign": 437, "malignant": 210}
_SALT = 0x5EF  # keeps reference seeds apart from the small integers generator requests use


def image_seed(seed: int, label: str, index: int) -> int:
    """The simulator seed of image ``index`` of class ``label`` in a set built with ``seed``."""
    seq = np.random.SeedSequence([int(seed), LABELS.index(label), int(index), _SALT])
    return int(seq.generate_state(1, np.uint32)[0])


def check_counts(counts: dict[str, int] | None) -> dict[str, int]:
    counts = dict(BUSI_COUNTS if counts is None else counts)
    unknown = sorted(set(counts) - set(LABELS))
    if unknown:
        raise ConfigError(f"phantom set: unknown class(es) {', '.join(unknown)}", f"classes are {', '.join(LABELS)}")
    for label, n in counts.items():
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ConfigError(f"phantom set: count of {label} must be an integer >= 0, got {n!r}", "fix counts")
    if sum(counts.values()) < 1:
        raise ConfigError("phantom set: counts add up to 0 images", "ask for at least one image")
    return {label: counts.get(label, 0) for label in LABELS}


def split_like_busi(n: int) -> dict[str, int]:
    """``n`` images split in BUSI's class proportions (largest remainder)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ConfigError(f"number of phantom images must be an integer >= 1, got {n!r}", "use e.g. --n 780")
    total = sum(BUSI_COUNTS.values())
    exact = {label: n * c / total for label, c in BUSI_COUNTS.items()}
    counts = {label: int(np.floor(v)) for label, v in exact.items()}
    for label in sorted(exact, key=lambda l: -(exact[l] - counts[l]))[: n - sum(counts.values())]:
        counts[label] += 1
    return counts


def reference_params() -> SimParams:
    return SimParams()


def cache_dir(size: int, seed: int, counts: dict[str, int]) -> Path:
    from usbench.weights import usbench_cache

    key = fingerprint_of(NAME, size, seed, counts, SIMULATOR_VERSION, reference_params())[:12]
    return usbench_cache() / "datasets" / f"{NAME}-{size}-{seed}-{key}"


def _plan(counts: dict[str, int], seed: int) -> list[tuple[str, int, int]]:
    """(label, index from 1, image seed) for every image, in a stable order."""
    return [(label, i, image_seed(seed, label, i)) for label in LABELS for i in range(1, counts[label] + 1)]


def _simulate_one(job: tuple[str, int, int, int, SimParams]) -> tuple[np.ndarray, np.ndarray]:
    label, _, image_seed_, size, params = job
    return simulate(label, image_seed_, size, params=params)


def _simulate_png(job: tuple[str, int, int, int, SimParams]) -> tuple[bytes, bytes]:
    # encoded in the worker: PNG compression in the parent process was the bottleneck of the build
    image, mask = _simulate_one(job)
    return encode_png(image), encode_png(mask)


def one_fft_thread() -> None:
    """Pool initializer: one FFT thread (and one BLAS thread) per simulating worker process."""
    from usbench.common import one_thread_per_worker
    from usbench.phantom import imaging

    imaging.FFT_WORKERS = 1
    one_thread_per_worker()


def default_workers(n_images: int) -> int:
    """Processes for simulating ``n_images``: the usable cores, one for small sets (start-up costs more)."""
    from usbench.common import usable_cores

    return 1 if n_images < 48 else max(1, usable_cores())


def simulate_plan(plan: list[tuple[str, int, int]], size: int, params: SimParams,
                  workers: int | None = None, png: bool = False) -> Iterator[tuple]:
    """(image, mask) of every (label, index, seed) of ``plan``, in order; across processes when it helps.

    With ``png`` the pair comes PNG-encoded (:func:`usbench.imageset.encode_png`), done in the workers.
    The images are the same whatever the number of workers (each depends only on its own seed)."""
    jobs = [(label, index, seed_, size, params) for label, index, seed_ in plan]
    yield from map_simulations(_simulate_png if png else _simulate_one, jobs, workers, chunksize=8)


def map_simulations(work, jobs: list, workers: int | None = None, chunksize: int = 8) -> Iterator:
    """``map(work, jobs)`` in order, across ``workers`` processes (default: :func:`default_workers`)
    with one FFT and one BLAS thread each; in this process when one worker is enough."""
    workers = default_workers(len(jobs)) if workers is None else max(1, int(workers))
    if workers == 1:
        yield from map(work, jobs)
        return
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, initializer=one_fft_thread) as pool:
        yield from pool.map(work, jobs, chunksize=chunksize)


def builtin_reference(size: int = 256, seed: int = 0, counts: dict[str, int] | None = None,
                      progress: bool = False, workers: int | None = None) -> ImageSet:
    """The ``phantom-busi`` reference set (built into the cache on first use, then read).

    ``workers``: simulating processes (default: the usable cores; 1 for small sets)."""
    check_size(size)
    counts = check_counts(counts)
    final = cache_dir(size, seed, counts)
    if (final / MANIFEST).is_file():
        return ImageSet.read(final, name=NAME)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    tmp.chmod(0o755)
    try:
        params = reference_params()
        plan = _plan(counts, seed)
        with ProgressBar(len(plan), f"building {NAME} ({size}px)", progress) as tick:
            writer = ImageSetWriter(tmp, source=NAME)
            for (label, index, image_seed_), (image, mask) in zip(plan, simulate_plan(plan, size, params, workers, png=True)):
                writer.add_png(f"{label}-{index:04d}", image, label=label, mask_png=None if label == "normal" else mask,
                               seed=image_seed_)
                tick()
            writer.close(order=[f"{label}-{index:04d}" for label, index, _ in plan])
        if final.exists() and not (final / MANIFEST).is_file():  # debris of something else: not a set
            shutil.rmtree(final, ignore_errors=True)
        try:
            os.replace(tmp, final)  # atomic: the set appears complete or not at all
        except OSError:
            if not (final / MANIFEST).is_file():  # not a concurrent build that won the race
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return ImageSet.read(final, name=NAME)


def _write(path: Path, data: bytes) -> None:
    from usbench.outputs import is_disk_error, write_error

    try:
        path.write_bytes(data)
    except OSError as exc:
        if is_disk_error(exc):
            raise write_error(exc, path) from None
        raise


def make_phantom_dataset(out: Path, n: int, seed: int, size: int = 256, layout: str = "busi",
                         progress: bool = False, workers: int | None = None) -> dict[str, int]:
    """Write ``n`` phantom images in BUSI's folder layout under ``out``; returns the class counts.

    Layout: ``<class>/<class> (i).png`` and ``<class>/<class> (i)_mask.png`` (all-zero masks for
    normal, as BUSI ships them). The folder is built beside ``out`` and renamed into place, so an
    interrupted run leaves nothing that looks complete. A non-empty ``out`` is refused.
    """
    if layout != "busi":
        raise UnknownNameError(f"unknown phantom folder layout {layout!r}", "the only layout is 'busi'")
    check_size(size)
    counts = split_like_busi(n)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutputError(f"{out} exists and is not empty", "choose a new --out folder or empty it first")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        tmp.chmod(0o755)  # mkdtemp makes it private; the result is an ordinary folder
    except OSError as exc:
        raise OutputError(f"cannot write to {out.parent} ({exc.strerror or type(exc).__name__})",
                          "choose another --out or fix its permissions") from None
    try:
        params = reference_params()
        plan = _plan(counts, seed)
        with ProgressBar(len(plan), f"simulating {len(plan)} phantom images", progress) as tick:
            for (label, index, image_seed_), (image, mask) in zip(plan, simulate_plan(plan, size, params, workers, png=True)):
                folder = tmp / label
                folder.mkdir(exist_ok=True)
                # plain writes: the folder is private until the rename below makes it appear whole,
                # so per-file temp files and fsyncs (6 % of the build's CPU) protect nothing more
                _write(folder / f"{label} ({index}).png", image)
                _write(folder / f"{label} ({index})_mask.png", mask)
                tick()
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return counts


__all__ = ["BUSI_COUNTS", "NAME", "builtin_reference", "image_seed", "make_phantom_dataset", "split_like_busi"]
