"""The one evaluate path: which metrics run, and every metric on a generated set against a
reference, overall and per label, resumably. ``usbench evaluate`` and ``usbench run`` both end here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from usbench.common import SUBSET_ALL, ProgressBar, fingerprint_of
from usbench.config import DEFAULTS, RunConfig
from usbench.errors import InputError, NotEnoughImagesError, UsbenchError
from usbench.imageset import ImageSet, image_shape, size_label, size_token
from usbench.metrics import METRICS, MetricContext
from usbench.metrics.features import FeatureStore
from usbench.results import EvaluationResult, MetricEntry, SkippedMetric, column_name, read_evaluation


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


def check_sizes(specs: list[MetricSpec], n_generated: int, n_reference: int) -> None:
    """Refuse, before any work, a --n or reference too small for the metrics the user named."""
    for spec in specs:
        if not spec.explicit:
            continue
        need = int(getattr(METRICS.get(spec.name), "min_images", 2))
        if n_generated < need:
            raise NotEnoughImagesError(f"{spec.name} needs at least {need} generated images, --n is {n_generated}",
                                       f"use --n {need} or more")
        if n_reference < need:
            raise NotEnoughImagesError(
                f"{spec.name} needs at least {need} reference images, the reference has {n_reference}", "use a larger reference"
            )


def evaluation_size(image_size: int | None, sets: "dict[str, ImageSet | None]") -> "int | tuple[int, int]":
    """The size images are compared at: ``image_size`` (N: every image resized to N×N, PIL bicubic)
    when given; else the size every image of ``sets`` shares (native: nothing is resized by usbench;
    N for N×N, (h, w) otherwise). Sets of mixed sizes with no ``image_size`` are refused in one line
    naming two images of different sizes. Reads image headers only. ``sets`` maps a role
    ("generated", "reference", "train") to its set."""
    if image_size is not None:
        return image_size
    first: tuple[tuple[int, int], Path, str] | None = None
    for role, imageset in sets.items():
        for rec in (imageset.records if imageset is not None else []):
            shape = image_shape(rec.file)
            if first is None:
                first = (shape, rec.file, role)
            elif shape != first[0]:
                (h0, w0), file0, role0 = first
                raise InputError(
                    f"the images differ in size ({role0} {file0} is {w0}x{h0}, {role} {rec.file} is "
                    f"{shape[1]}x{shape[0]}), so there is no native size to compare them at",
                    "pass --image-size N, or image_size=N in Python, to resize every image to NxN with PIL bicubic")
    if first is None:
        return int(DEFAULTS["generation_size"])  # no images: nothing is read at any size
    h, w = first[0]
    return h if h == w else (h, w)


def resize_protocol(size: "int | tuple[int, int]", native: bool) -> str:
    """The ``resize_protocol`` of provenance and the leaderboard."""
    if native:
        return f"native {size_label(size)} (no resize), then each extractor's own"
    return f"PIL bicubic to {size_label(size)}, then each extractor's own"


def feature_store(config: RunConfig, cache_dir: Path | None, progress: bool = False,
                  image_size: "int | tuple[int, int] | None" = None) -> FeatureStore:
    """The feature cache of an evaluation, with the extractor options the config gives; images
    are read at ``image_size`` (default: the config's generation size, what a run compares at)."""
    size = image_size if image_size is not None else config.generation_size
    return FeatureStore(cache_dir, image_size=size, options=config.extractor_options(), progress=progress)


def _entries_of(spec: MetricSpec, metric: Any, subset: str, out: Any, key: str, seconds: float) -> list[MetricEntry]:
    results = out if isinstance(out, list) else [out]
    default_ext = getattr(type(metric), "extractor", None)
    ext = getattr(metric, "extractor", None)
    return [MetricEntry(
        metric=spec.name, name=r.name, column=column_name(r.name, ext, default_ext), subset=subset, value=float(r.value),
        ci_low=float(r.ci_low), ci_high=float(r.ci_high), ci_level=r.ci_level, n_generated=r.n_generated,
        n_reference=r.n_reference, higher_is_better=r.higher_is_better, extractor=ext, details=r.details,
        config=spec.config, key=key, seconds=seconds,
    ) for r in results]


def evaluate_imageset(generated: ImageSet, reference: ImageSet, specs: list[MetricSpec], features: FeatureStore,
                      config: RunConfig, train: ImageSet | None = None, heldout: ImageSet | None = None,
                      store_path: Path | None = None, provenance: Callable[[], dict] | None = None,
                      progress: bool = False, log: Callable[[str], None] = lambda s: None,
                      image_size: "int | tuple[int, int] | None" = None) -> EvaluationResult:
    """Every metric of ``specs`` on ``generated`` vs ``reference``, overall and per shared label.

    ``config`` gives the seed, bootstrap count and the typed context options (segmenter, AlexNet
    weights); images are compared at ``image_size`` (N or (h, w), see :func:`evaluation_size`;
    default: the config's generation size, what a run compares at). With ``store_path`` (a run's ``metrics.json``), entries already
    there are reused and the store is rewritten (atomically) after each new one, so an interrupted
    evaluation resumes where it stopped. Returns the entries of ``specs`` only.
    """
    seed, n_bootstrap = config.seed, config.n_bootstrap
    image_size = image_size if image_size is not None else config.generation_size
    size_key = size_token(image_size)  # N for N×N pixels (the keys of usbench ≤ 0.2), "WxH" otherwise
    store = read_evaluation(store_path) if store_path and store_path.is_file() else EvaluationResult()
    done: dict[str, list[MetricEntry | SkippedMetric]] = {}
    for item in [*store.entries, *store.skipped]:
        done.setdefault(item.key, []).append(item)
    store.generated, store.generated_hash, store.n_bootstrap = _name_of(generated), generated.content_hash(), n_bootstrap
    store.n_generated, store.seed, store.image_size = len(generated), seed, size_key
    context_options = {k: v for k, v in (("segmenter", config.segmenter), ("alexnet_weights", config.alexnet_weights)) if v}
    subsets = [SUBSET_ALL] + [l for l in generated.labels if l in reference.labels]
    features.register(generated, reference, train, heldout)
    wanted: list[str] = []
    skipped_now: dict[str, list[str]] = {}  # reason -> metrics, so one missing file is said once
    with ProgressBar(len(specs) * len(subsets), f"metrics of {generated.name}", progress) as bar:  # the longest phase
        for spec in specs:
            metric = METRICS.get(spec.name).from_config(dict(spec.config))
            # the run-wide segmenter/AlexNet file change the numbers of the metrics that load weights only
            options = context_options if "weights" in getattr(metric, "needs", ()) else {}
            for subset in subsets:
                key = fingerprint_of(
                    spec.name, spec.config, subset, generated.content_hash(), reference.content_hash(),
                    train.content_hash() if train is not None else "", seed, n_bootstrap, size_key,
                    getattr(metric, "version", 1), *([options] if options else []),
                )[:24]
                wanted.append(key)
                bar.update(completed=len(wanted) - 1, description=f"metrics of {generated.name}: {spec.label} ({subset})")
                if key in done:
                    if isinstance(done[key][0], SkippedMetric) and subset == SUBSET_ALL:
                        break  # could not run overall: neither can it per label
                    continue
                label = None if subset == SUBSET_ALL else subset
                restrict = (lambda s: s.filter(label=label) if label and s is not None else s)  # noqa: E731
                ctx = MetricContext(
                    generated=restrict(generated), reference=restrict(reference), train=restrict(train),
                    heldout=restrict(heldout), features=features, seed=seed, n_bootstrap=n_bootstrap,
                    image_size=image_size, progress=progress, segmenter=config.segmenter or None,
                    alexnet_weights=config.alexnet_weights or None,
                )
                t0 = time.perf_counter()
                try:
                    out = metric.compute(ctx)
                    done[key] = _entries_of(spec, metric, subset, out, key, round(time.perf_counter() - t0, 3))
                    store.entries.extend(done[key])
                except UsbenchError as err:  # missing weights, too few images, not applicable to this set
                    if spec.explicit and subset == SUBSET_ALL:
                        raise  # the user asked for it: an error, not a skip
                    done[key] = [SkippedMetric(spec.name, subset, str(err), spec.config, key, round(time.perf_counter() - t0, 3))]
                    store.skipped.extend(done[key])
                    if subset == SUBSET_ALL:
                        skipped_now.setdefault(str(err), []).append(spec.label)
                if store_path is not None:
                    if provenance is not None:
                        _set_provenance(store, provenance())
                    store.to_json(store_path, cache_keys=True)  # after each: a kill loses one metric at most
                if isinstance(done[key][0], SkippedMetric) and subset == SUBSET_ALL:
                    break  # a metric that cannot run overall cannot run per label either
    for reason, names in skipped_now.items():
        log(f"skipped {', '.join(names)}: {reason}")
    picked = [x for k in wanted for x in done.get(k, [])]
    result = EvaluationResult(
        entries=[x for x in picked if isinstance(x, MetricEntry)], skipped=[x for x in picked if isinstance(x, SkippedMetric)],
        generated=_name_of(generated), reference=_name_of(reference), n_generated=len(generated), n_reference=len(reference),
        generated_hash=generated.content_hash(), reference_hash=reference.content_hash(), seed=seed,
        n_bootstrap=n_bootstrap, image_size=size_key,
    )
    _set_provenance(result, provenance() if provenance is not None else {})
    return result


def _name_of(imageset: ImageSet) -> str:
    return imageset.name or (str(imageset.root) if getattr(imageset, "root", None) else "")


def _set_provenance(result: EvaluationResult, prov: dict[str, Any]) -> None:
    prov = dict(prov)
    result.reference = str(prov.pop("reference", result.reference))
    result.reference_hash = prov.pop("reference_hash", result.reference_hash)
    result.n_reference = prov.pop("n_reference", result.n_reference)
    result.provenance = prov


def default_provenance(features: FeatureStore, reference: str, reference_hash: str, n_reference: int,
                       image_size: "int | tuple[int, int]", native: bool = False) -> dict[str, Any]:
    """Where the numbers came from: the reference, the weights of the extractors that ran (their
    features were computed or loaded; an extractor that failed for want of weights is not listed),
    the resize protocol (``native``: the images' own size, nothing resized by usbench)."""
    ext = {}
    for name in sorted({k[0] for k in features._rows}):
        e = features.extractor(name)
        # the sha256 of the weights file used (the extractor's provenance), not the hash a user asked to enforce
        try:
            info = e.provenance() if hasattr(e, "provenance") else {}
        except UsbenchError:  # its weights are missing: the metrics that needed it were skipped
            info = {}
        ext[name] = info.get("weights_sha256") or "no weights"
    return {
        "reference": str(reference), "reference_hash": reference_hash, "n_reference": n_reference,
        "extractors_sha256": ext, "resize_protocol": resize_protocol(image_size, native),
    }


__all__ = ["MetricSpec", "check_sizes", "default_provenance", "evaluate_imageset", "evaluation_size", "feature_store",
           "resize_protocol", "select_metrics"]
