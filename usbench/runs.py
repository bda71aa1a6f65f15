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
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from usbench.config import RunConfig
from usbench.datasets import load
from usbench.datasets.splits import Split, split
from usbench.errors import ConfigError, InputError, NotEnoughImagesError, UsbenchError
from usbench.generators import GENERATORS, GenerationRequest, build_generator
from usbench.generators.base import fingerprint_of
from usbench.generators.sharding import generate_sharded, process_info
from usbench.imageset import ImageSet, atomic_write_text, ensure_writable_dir
from usbench.metrics import METRICS, MetricContext
from usbench.metrics.features import FeatureStore
from usbench.versions import versions

LABEL_SEED_STRIDE = 1_000_003  # request seeds: seed * stride + position, distinct across runs' seeds


# ---------------------------------------------------------------------------------------------
# requests


def make_requests(reference: ImageSet, n: int, seed: int, size: int, conditioning: ImageSet | None = None) -> list[GenerationRequest]:
    """``n`` requests with labels in the reference's proportions.

    When ``conditioning`` is given (mask-conditioned generators), each request takes the label and
    lesion mask of a conditioning record, cycling through them per label.
    """
    counts = reference.counts()
    labels = [l for l in reference.labels] or [""]
    total = sum(counts.get(l, 0) for l in labels) or 1
    quotas = {l: int(math.floor(n * counts.get(l, 0) / total)) for l in labels}
    for l in sorted(labels, key=lambda l: -(n * counts.get(l, 0) / total - quotas[l]))[: n - sum(quotas.values())]:
        quotas[l] += 1
    requests: list[GenerationRequest] = []
    for label in labels:
        pool = [r for r in conditioning.records if r.label == label] if conditioning is not None else []
        if conditioning is not None and not pool and quotas[label]:
            raise NotEnoughImagesError(
                f"the conditioning split has no {label} images to take masks from", "use a larger reference or another split"
            )
        for k in range(quotas[label]):
            pos = len(requests)
            mask = None
            if pool:
                mask = conditioning.load_mask(pool[k % len(pool)], size)
                if label == "normal" or (mask is not None and not mask.any()):
                    mask = None
            requests.append(GenerationRequest(
                id=f"{label or 'image'}-{k:05d}", label=label, seed=seed * LABEL_SEED_STRIDE + pos, size=size,
                mask=mask, index=k, position=pos,
            ))
    return requests


def requests_fingerprint(requests: list[GenerationRequest]) -> str:
    h = hashlib.sha256()
    for r in requests:
        h.update(f"{r.id}|{r.label}|{r.seed}|{r.size}|{r.prompt}|".encode())
        if r.mask is not None:
            h.update(np.packbits(r.mask).tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# metric selection


@dataclass
class MetricSpec:
    name: str
    config: dict[str, Any]
    explicit: bool  # named by the user: failures are errors, not skips

    @property
    def label(self) -> str:
        ext = self.config.get("extractor")
        return f"{self.name}[{ext}]" if ext else self.name


def select_metrics(config: RunConfig) -> list[MetricSpec]:
    """The metrics of a run: those the user named, or the defaults (full list + offline list)."""
    if config.metrics:
        specs = []
        for entry in config.metrics:
            name, _, ext = str(entry).partition("@")  # "kid@radiomics" picks the extractor
            METRICS.get(name)  # unknown names fail here, listing the known ones
            cfg = dict(config.metric.get(name, {}))
            if ext:
                cfg["extractor"] = ext
            specs.append(MetricSpec(name, cfg, explicit=True))
        return specs
    import usbench.metrics as m

    seen: set[tuple[str, str]] = set()
    specs = []
    for name, cfg in [*m.DEFAULTS, *m.OFFLINE_DEFAULTS, *m.TASK_DEFAULTS]:
        cfg = {**cfg, **config.metric.get(name, {})}
        key = (name, str(cfg.get("extractor", "")))
        if key not in seen and name in METRICS:
            seen.add(key)
            specs.append(MetricSpec(name, cfg, explicit=False))
    return specs


def column_name(result_name: str, metric: Any) -> str:
    """Leaderboard column of a result: its name, suffixed with the extractor when not the default."""
    default = getattr(type(metric), "extractor", None)
    ext = getattr(metric, "extractor", None)
    return f"{result_name}_{ext}" if ext and default and ext != default else result_name


# ---------------------------------------------------------------------------------------------
# one run


@dataclass
class RunRecord:
    run_id: str
    generator: str
    dir: Path
    images: ImageSet
    info: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)


class Benchmark:
    """One benchmark: a reference set, its split, a feature store and the runs in ``out``."""

    def __init__(self, config: RunConfig, progress: bool = False, log: Callable[[str], None] = lambda s: None):
        self.config = config
        self.progress = progress
        self.log = log
        self._said: set[str] = set()
        self.out = Path(config.out).expanduser()  # created by prepare_out(), once the inputs are known good
        self.reference = load(config.reference, size=config.image_size, seed=0, progress=progress)
        self.split: Split = split(self.reference, scheme=config.split, test_fraction=config.test_fraction, seed=config.seed)
        self.compare = self.reference if config.compare_to == "all" else self.split.test
        self.train = load(config.train) if config.train else self.split.train
        self.features = FeatureStore(self.out / "cache" / "features", image_size=config.image_size,
                                     options=config.extractor, progress=progress)

    # -- generation --------------------------------------------------------------------------
    def _log_once(self, message: str) -> None:
        """Skip reasons are the same for every generator (a missing weights file): say each once."""
        if message not in self._said:
            self._said.add(message)
            self.log(message)

    def prepare_out(self) -> None:
        ensure_writable_dir(self.out)

    def generate(self, name: str) -> RunRecord | None:
        cfg = self.config
        gen = build_generator(name, cfg.generator.get(name, {}))
        plan = None
        if getattr(gen, "mask_conditioned", False) and self.reference.has_masks:  # held-out masks only: generators/conditioning.py
            from usbench.generators.conditioning import plan_requests

            plan = plan_requests(gen, self.reference, cfg.n, cfg.seed, cfg.image_size, fallback=self.split.test,
                                 per_mask=cfg.per_mask, allow_training_masks=cfg.allow_training_masks, log=self._log_once)
        requests = plan.requests if plan else make_requests(self.reference, cfg.n, cfg.seed, cfg.image_size)
        run_id = f"{name}-{fingerprint_of(gen.fingerprint(), requests_fingerprint(requests))[:10]}"
        run_dir = self.out / "runs" / run_id
        info_path = run_dir / "run.json"
        if info_path.is_file() and (run_dir / "manifest.csv").is_file():
            self.log(f"{name}: reusing {len(requests)} images in {run_dir}")
            return RunRecord(run_id, name, run_dir, ImageSet.read(run_dir), json.loads(info_path.read_text()))
        if hasattr(gen, "check_requests"):
            gen.check_requests(requests)
        from usbench.generators.measure import GenerationMeter, generation_settings

        with GenerationMeter() as meter:
            images = generate_sharded(gen, requests, run_dir, batch_size=cfg.batch_size, source=name, progress=self.progress)
        if images is None:  # a non-main process of an `accelerate launch`: its shard is written, the main one merges
            return None
        info = {
            "run_id": run_id, "generator": name, "generator_config": cfg.generator.get(name, {}),
            "generator_fingerprint": gen.fingerprint(), "mask_conditioned": plan is not None,
            "conditioning": plan.summary() if plan else None,
            "n": len(requests), "seed": cfg.seed, "request_seeds": [requests[0].seed, requests[-1].seed] if requests else [],
            "image_size": cfg.image_size, "reference": str(cfg.reference), "reference_hash": self.reference.content_hash(),
            "split": cfg.split, "versions": versions(), **meter.record(len(requests)), **generation_settings(gen),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        if plan:
            plan.write(run_dir)
        atomic_write_text(info_path, json.dumps(info, indent=2))
        return RunRecord(run_id, name, run_dir, images, info)

    # -- metrics -----------------------------------------------------------------------------
    def evaluate(self, run: RunRecord, specs: list[MetricSpec]) -> dict[str, Any]:
        """Compute every metric of ``run`` overall and per label; reuse what its ``metrics.json`` holds."""
        run.metrics = evaluate_imageset(
            run.images, self.compare, specs, self.features, train=self.train, heldout=self.split.test,
            seed=self.config.seed, n_bootstrap=self.config.n_bootstrap, image_size=self.config.image_size,
            store_path=run.dir / "metrics.json", provenance=self.provenance, progress=self.progress,
            log=self._log_once,
        )
        return run.metrics

    def utility(self, run: RunRecord) -> None:
        """The downstream classification experiment for ``run``, into ``<run>/utility.json`` (reused when there)."""
        from usbench.generators.base import config_from_dict
        from usbench.tasks.utility import RESULT_FILE, UtilityConfig, run_utility, write_result

        if (run.dir / RESULT_FILE).is_file():
            return
        cfg = config_from_dict(UtilityConfig, dict(self.config.utility_config), "[utility]")
        try:
            write_result(run_utility(self.reference, run.images, cfg), run.dir)
        except (NotEnoughImagesError, InputError) as err:  # e.g. no benign/malignant images: say why, go on
            self.log(f"{run.generator}: skipped utility: {err}")

    def provenance(self) -> dict[str, Any]:
        ext = {}
        for name in sorted({k[0] for k in self.features._rows} | set(self.features._extractors)):
            e = self.features.extractor(name)
            ext[name] = getattr(e, "weights_sha256", "") or ""
        return {
            "reference": str(self.config.reference), "reference_hash": self.reference.content_hash(),
            "n_reference": len(self.compare), "extractors_sha256": ext,
            "resize_protocol": f"PIL bicubic to {self.config.image_size}x{self.config.image_size}, then each extractor's own",
        }


def evaluate_imageset(generated: ImageSet, reference: ImageSet, specs: list[MetricSpec], features: FeatureStore,
                      train: ImageSet | None = None, heldout: ImageSet | None = None, seed: int = 0, n_bootstrap: int = 1000,
                      image_size: int = 256, store_path: Path | None = None, provenance: Callable[[], dict] | None = None,
                      progress: bool = False, log: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Every metric of ``specs`` on ``generated`` vs ``reference``, overall and per shared label.

    Returns ``{key: entry}`` where an entry holds ``metric, config, subset`` and either ``results``
    (MetricResult dicts with their leaderboard ``column``) or ``skipped`` (the reason). With
    ``store_path``, entries already there are reused and each new one is written as soon as it is
    computed (atomically), so an interrupted evaluation resumes where it stopped.
    """
    store = json.loads(store_path.read_text()) if store_path and store_path.is_file() else {"entries": {}}
    entries: dict[str, Any] = store["entries"]
    store.update(generated_hash=generated.content_hash(), n_bootstrap=n_bootstrap)
    subsets = ["all"] + [l for l in generated.labels if l in reference.labels]
    features.register(generated, reference, train, heldout)
    wanted: list[str] = []
    skipped_now: dict[str, list[str]] = {}  # reason -> metrics, so one missing file is said once
    for spec in specs:
        metric = METRICS.get(spec.name).from_config(dict(spec.config))
        for subset in subsets:
            key = fingerprint_of(
                spec.name, spec.config, subset, generated.content_hash(), reference.content_hash(),
                train.content_hash() if train is not None else "", seed, n_bootstrap, image_size,
                getattr(metric, "version", 1),
            )[:24]
            wanted.append(key)
            if key in entries:
                if "skipped" in entries[key] and subset == "all":
                    break  # could not run overall: neither can it per label
                continue
            label = None if subset == "all" else subset
            ctx = MetricContext(
                generated=generated.filter(label=label) if label else generated,
                reference=reference.filter(label=label) if label else reference,
                train=train.filter(label=label) if label and train is not None else train,
                features=features, seed=seed, n_bootstrap=n_bootstrap, image_size=image_size, progress=progress,
                options={"heldout": heldout.filter(label=label) if label and heldout is not None else heldout},
            )
            t0 = time.perf_counter()
            entry: dict[str, Any] = {"metric": spec.name, "config": spec.config, "subset": subset}
            try:
                out = metric.compute(ctx)
                results = out if isinstance(out, list) else [out]
                entry["results"] = [dict(r.to_dict(), column=column_name(r.name, metric)) for r in results]
            except UsbenchError as err:  # missing weights, too few images, not applicable to this set
                if spec.explicit and subset == "all":
                    raise  # the user asked for it: an error, not a skip

                entry["skipped"] = str(err)
                if subset == "all":
                    skipped_now.setdefault(str(err), []).append(spec.label)
            entry["seconds"] = round(time.perf_counter() - t0, 3)
            entries[key] = entry
            if store_path is not None:
                if provenance is not None:
                    store["provenance"] = provenance()
                atomic_write_text(store_path, json.dumps(store, indent=1))  # after each: a kill loses one metric at most
            if "skipped" in entry and subset == "all":
                break  # a metric that cannot run overall cannot run per label either
    for reason, names in skipped_now.items():
        log(f"skipped {', '.join(names)}: {reason}")
    return {k: entries[k] for k in wanted if k in entries}


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


def check_sizes(config: RunConfig, bench: Benchmark, specs: list[MetricSpec]) -> None:
    """Refuse, before any work, a --n or reference too small for the chosen metrics."""
    for spec in specs:
        metric_cls = METRICS.get(spec.name)
        need = int(getattr(metric_cls, "min_images", 2))
        if not spec.explicit:
            continue
        if config.n < need:
            raise NotEnoughImagesError(f"{spec.name} needs at least {need} generated images, --n is {config.n}", f"use --n {need} or more")
        if len(bench.compare) < need:
            raise NotEnoughImagesError(
                f"{spec.name} needs at least {need} reference images, the reference has {len(bench.compare)}", "use a larger reference"
            )
        if "equal_n" in getattr(metric_cls, "needs", ()) and config.n > len(bench.compare):
            raise ConfigError(
                f"--n {config.n} is larger than the reference ({len(bench.compare)} images) but {spec.name} compares sets of equal size",
                f"use --n {len(bench.compare)} or less",
            )


def run_benchmark(config: RunConfig, progress: bool = False, log: Callable[[str], None] = lambda s: None,
                  studies: list[Path] | None = None) -> "Benchmark":
    """Generate, evaluate, and write the leaderboard and report of a benchmark. Returns it, with ``runs``."""
    from usbench import leaderboard, report

    names = generator_names(config)  # names and metrics are checked before any work
    specs = select_metrics(config)
    bench = Benchmark(config, progress=progress, log=log)
    check_sizes(config, bench, specs)
    bench.prepare_out()
    bench.runs = []
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
        bench.runs.append(run)
    bench.main_process = main_process
    if not main_process:
        bench.rows = []  # the main process writes the leaderboard
        return bench
    from usbench.pipeline import reader_columns

    bench.rows = leaderboard.rows_from_runs(bench.out / "runs", reference_hash=bench.reference.content_hash(),
                                            reader_columns=reader_columns(studies or []))
    leaderboard.write_all(bench.rows, bench.out / "leaderboard.csv")
    report.write_report(bench, bench.rows, bench.out)
    return bench
