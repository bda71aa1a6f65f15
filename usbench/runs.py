"""Runs: generate (or reuse) → features (cached) → metrics → ``metrics.json``, resumably.

A benchmark lives in one output folder::

    <out>/runs/<run_id>/        one generator run: images/, masks/, manifest.csv, run.json, metrics.json
    <out>/cache/features/       features by (image-set content hash, extractor fingerprint, size)
    <out>/leaderboard.csv       all runs of the benchmark (also .md and .html)
    <out>/report.html           sample grids and metric plots

``run_id`` is ``<generator>-<first 10 hex of a hash of the generator fingerprint and the
requests>``: a changed config or seed is a new run, the same one is found again. Every metric
result is stored under a key that hashes its inputs (metric config, content hashes of the sets,
seed, bootstrap count), and written as soon as it is computed, so a killed run resumes and
recomputes only what is missing, with identical numbers.

The layers below: :mod:`usbench.generators.plan` (requests, run id), :func:`generate_images`
(the one generate path, also behind ``usbench generate``), :mod:`usbench.evaluation` (the one
evaluate path, also behind ``usbench evaluate``), :mod:`usbench.results` (what is written).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from usbench.config import RunConfig
from usbench.datasets import load
from usbench.datasets.splits import Split, split
from usbench.errors import ConfigError, InputError, NotEnoughImagesError, OutputError
from usbench.evaluation import MetricSpec, check_sizes, default_provenance, evaluate_imageset, feature_store, select_metrics
from usbench.generators import GENERATORS
from usbench.generators.plan import GenerationPlan, plan_generation
from usbench.generators.sharding import generate_sharded, process_info
from usbench.imageset import MANIFEST, ImageSet, ensure_writable_dir
from usbench.results import METRICS_FILE, RUN_FILE, BenchmarkResult, RunInfo, RunResult
from usbench.common import fingerprint_of
from usbench.versions import versions

FLOOR_NAME = "real (floor)"  # the generator column of the real-vs-real row


# ---------------------------------------------------------------------------------------------
# the one generate path


def check_new_out(out: Path) -> None:
    """Refuse to write generated images over something the user has (a finished set, other files)."""
    from usbench.outputs import check_can_create

    out = Path(out)
    if not out.exists():
        check_can_create(out)  # a read-only or foreign folder fails here, before the reference is read
        return
    if not out.is_dir():
        raise OutputError(f"{out} is a file", "choose a folder name for --out")
    if (out / MANIFEST).exists():
        raise OutputError(f"{out} already holds an image set", "choose another --out or delete it first")
    others = [p.name for p in out.iterdir() if p.name not in ("images", "masks") and not p.name.startswith(".")]
    if others:
        raise OutputError(f"{out} is not empty (it holds {others[0]})", "choose a new or empty folder for --out")


def generate_images(plan: GenerationPlan, out: Path, batch_size: int, progress: bool = False) -> ImageSet | None:
    """Generate the planned requests into ``out`` (resuming an interrupted call), on one process or
    across an ``accelerate launch``. Returns None on the non-main processes."""
    plan.check()
    images = generate_sharded(plan.generator, plan.requests, Path(out), batch_size=batch_size, source=plan.name,
                              progress=progress)
    if images is not None and plan.conditioning is not None:  # which mask each image was asked for
        plan.conditioning.write(Path(out))
    return images


# ---------------------------------------------------------------------------------------------
# one benchmark


class Benchmark:
    """One benchmark: a reference set, its split, a feature store and the runs in ``out``."""

    def __init__(self, config: RunConfig, progress: bool = False, log: Callable[[str], None] = lambda s: None):
        self.config = config
        self.progress = progress
        self.log = log
        self._said: set[str] = set()
        self.out = Path(config.out).expanduser()  # created by prepare_out(), once the inputs are known good
        self.reference = load(config.reference, image_size=config.generation_size, seed=0, progress=progress)
        self.split: Split = split(self.reference, scheme=config.split, test_fraction=config.test_fraction, seed=config.seed)
        self.compare = self.reference if config.compare_to == "all" else self.split.test
        self.train = load(config.train) if config.train else self.split.train
        self.features = feature_store(config, self.out / "cache" / "features", progress=progress)

    def _log_once(self, message: str) -> None:
        """Skip reasons are the same for every generator (a missing weights file): say each once."""
        if message not in self._said:
            self._said.add(message)
            self.log(message)

    def prepare_out(self) -> None:
        ensure_writable_dir(self.out)

    def plan(self, name: str) -> GenerationPlan:
        cfg = self.config
        return plan_generation(name, cfg.generator.get(name, {}), self.reference, cfg.n, cfg.seed, cfg.generation_size,
                               conditioning=self.split.test, per_mask=cfg.per_mask,
                               allow_training_masks=cfg.allow_training_masks, log=self._log_once)

    def generate(self, name: str) -> RunResult | None:
        """The run of generator ``name``: found again in ``out/runs`` when its images are there, else made."""
        cfg = self.config
        plan = self.plan(name)
        run_dir = self.out / "runs" / plan.run_id
        if (run_dir / RUN_FILE).is_file() and (run_dir / MANIFEST).is_file():
            self.log(f"{name}: reusing {len(plan.requests)} images in {run_dir}")
            return RunResult.read(run_dir)
        from usbench.generators.measure import GenerationMeter, generation_settings

        with GenerationMeter() as meter:
            images = generate_images(plan, run_dir, batch_size=cfg.batch_size, progress=self.progress)
        if images is None:  # a non-main process of an `accelerate launch`: its shard is written, the main one merges
            return None
        requests = plan.requests
        info = RunInfo(
            run_id=plan.run_id, generator=name, generator_config=plan.config,
            generator_fingerprint=plan.generator.fingerprint(), mask_conditioned=plan.mask_conditioned,
            n=len(requests), seed=cfg.seed, request_seeds=[requests[0].seed, requests[-1].seed] if requests else [],
            image_size=cfg.generation_size, reference=str(cfg.reference), reference_hash=self.reference.content_hash(),
            split=cfg.split, versions=versions(), created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        cost = meter.record(len(requests))  # seconds, images/s, peak memory
        info.seconds_generate = cost.pop("seconds_generate")
        info.extra.update(cost, **generation_settings(plan.generator),
                          conditioning=plan.conditioning.summary() if plan.conditioning else None)
        info.write(run_dir)
        return RunResult(info, run_dir)

    def evaluate(self, run: RunResult, specs: list[MetricSpec]) -> RunResult:
        """Every metric of ``run`` overall and per label; reuses what its ``metrics.json`` holds."""
        run.evaluation = evaluate_imageset(
            run.images, self.compare, specs, self.features, self.config, train=self.train, heldout=self.split.test,
            store_path=run.dir / METRICS_FILE, provenance=self.provenance, progress=self.progress, log=self._log_once,
        )
        return run

    def floor(self) -> tuple[RunResult, ImageSet] | None:
        """The real-vs-real floor: ``n`` real images of the reference (label-stratified, seeded) that
        are not in the comparison set, as a run named :data:`FLOOR_NAME`, and the set it is
        compared with. With ``compare_to = "all"`` (no held-out images) the floor's ``n`` images (at
        most half of the reference) are compared with the remaining reference images instead. None when the reference is too
        small for a floor of at least 2 images."""
        cfg = self.config
        in_compare = {r.id for r in self.compare.records}
        pool = self.reference.filter(ids=[r.id for r in self.reference.records if r.id not in in_compare])
        against = self.compare
        if not len(pool):  # no held-out real images: a split half
            pool = self.reference
        n = min(cfg.n, len(pool) if pool is not self.reference else len(pool) // 2)
        if n < 2:
            return None
        images = pool.take(n, seed=cfg.seed)
        if pool is self.reference:
            taken = set(images.ids)
            against = self.reference.filter(ids=[r.id for r in self.reference.records if r.id not in taken])
        run_id = "real-floor-" + fingerprint_of(sorted(images.ids), against.content_hash(), cfg.seed)[:10]
        run_dir = self.out / "runs" / run_id
        if not (run_dir / RUN_FILE).is_file():
            run_dir.mkdir(parents=True, exist_ok=True)
            images.write_manifest(run_dir)  # the real files themselves, by relative path: nothing copied
            RunInfo(run_id=run_id, generator=FLOOR_NAME, n=n, seed=cfg.seed, image_size=cfg.generation_size,
                    reference=str(cfg.reference), reference_hash=self.reference.content_hash(), split=cfg.split,
                    versions=versions(), created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    extra={"floor": "held-out real images of the reference" if against is self.compare
                           else "real images of the reference, against the remaining ones"}).write(run_dir)
        return RunResult.read(run_dir), against

    def evaluate_floor(self, specs: list[MetricSpec]) -> RunResult | None:
        """Score the floor like a generator (metrics that need a training set are left out: the
        floor's images may be training images)."""
        found = self.floor()
        if found is None:
            self.log("no real (floor) row: the reference has too few images")
            return None
        run, against = found
        from usbench.metrics import METRICS

        specs = [s for s in specs if "train" not in getattr(METRICS.get(s.name), "needs", ())]
        run.evaluation = evaluate_imageset(
            run.images, against, specs, self.features, self.config, train=None, heldout=self.split.test,
            store_path=run.dir / METRICS_FILE, provenance=self.provenance, progress=self.progress, log=self._log_once,
        )
        return run

    def utility(self, run: RunResult) -> None:
        """The downstream classification experiment for ``run``, into ``<run>/utility.json`` (reused when there)."""
        from usbench.common import config_from_dict
        from usbench.tasks.utility import RESULT_FILE, UtilityConfig, run_utility, write_result

        if (run.dir / RESULT_FILE).is_file():
            return
        cfg = config_from_dict(UtilityConfig, dict(self.config.utility_config), "[utility]")
        try:
            write_result(run_utility(self.reference, run.images, cfg), run.dir)
        except (NotEnoughImagesError, InputError) as err:  # e.g. no benign/malignant images: say why, go on
            self.log(f"{run.generator}: skipped utility: {err}")

    def provenance(self) -> dict:
        return default_provenance(self.features, str(self.config.reference), self.reference.content_hash(),
                                  len(self.compare), self.config.generation_size)

    def result(self, runs: list[RunResult], rows: list[dict], main_process: bool = True) -> BenchmarkResult:
        cfg = self.config
        return BenchmarkResult(out=self.out, runs=runs, rows=rows, reference=str(cfg.reference),
                               reference_hash=self.reference.content_hash(), n_reference=len(self.compare), n=cfg.n,
                               seed=cfg.seed, image_size=cfg.generation_size, main_process=main_process,
                               reference_set=self.compare, train_set=self.train)


def generator_names(config: RunConfig) -> list[str]:
    """The generators of a run: those named, or every built-in that needs no downloaded weights."""
    if config.generators:
        for g in config.generators:
            GENERATORS.get(g)  # unknown names fail here, listing the known ones
        return list(config.generators)
    names = []
    for g in GENERATORS.names():
        try:
            if not getattr(GENERATORS.get(g), "needs_weights", True):
                names.append(g)
        except ImportError:  # a broken plugin must not break the built-in benchmark; doctor shows it
            continue
    if not names:
        raise ConfigError("no generator to run", "name one with --generator (see usbench doctor for what is available)")
    return names


def run_benchmark(config: RunConfig, progress: bool = False, log: Callable[[str], None] = lambda s: None,
                  studies: list[Path] | None = None) -> BenchmarkResult:
    """Generate, evaluate, and write the leaderboard and report of a benchmark."""
    from usbench import leaderboard, report

    names = generator_names(config)  # names and metrics are checked before any work
    specs = select_metrics(config)
    bench = Benchmark(config, progress=progress, log=log)
    check_sizes(specs, config.n, len(bench.compare))
    bench.prepare_out()
    runs: list[RunResult] = []
    main_process = process_info()[0] == 0  # under `accelerate launch` every process generates, the main one scores
    for name in names:
        run = bench.generate(name)
        if run is None or not main_process:
            continue
        t0 = time.perf_counter()
        bench.evaluate(run, specs)
        if config.utility:
            bench.utility(run)
        log(f"{name}: metrics in {time.perf_counter() - t0:.1f} s")
        runs.append(run)
    if not main_process:
        return bench.result(runs, [], main_process=False)  # the main process writes the leaderboard
    bench.evaluate_floor(specs)  # its row joins the leaderboard from out/runs; it is not a generator run
    rows = leaderboard.rows_from_runs(bench.out / "runs", reference_hash=bench.reference.content_hash(),
                                      reader_columns=leaderboard.reader_columns(studies or []))
    result = bench.result(runs, rows)
    leaderboard.write_all(rows, result.leaderboard_csv)
    report.write_report(result)
    return result


__all__ = ["FLOOR_NAME", "Benchmark", "check_new_out", "generate_images", "generator_names", "run_benchmark"]
