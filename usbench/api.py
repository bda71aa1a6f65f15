"""The public Python API: what the ``usbench`` command does, as functions that return typed results.

>>> import usbench                                                        # doctest: +SKIP
>>> res = usbench.evaluate("samples/", "Dataset_BUSI_with_GT", metrics=["fid"], image_size=256,  # BUSI's sizes vary
...                        inception_weights="weights-inception-2015-12-05-6726825d.pth")  # doctest: +SKIP
>>> res.value("fid"), res.interval("fid", subset="benign")               # doctest: +SKIP

Inputs (``generated``, ``reference``, ``train``, ``masks_from``) are a folder path, an
:class:`~usbench.imageset.ImageSet`, or a built-in dataset name (``phantom-busi``). Options left
at None take the value of :data:`usbench.config.DEFAULTS` (or of a ``config`` TOML file). See
docs/api.md for a notebook session end to end.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from usbench.config import DEFAULTS, RunConfig, from_flags

if TYPE_CHECKING:  # pragma: no cover
    from usbench.imageset import ImageSet
    from usbench.results import BenchmarkResult, EvaluationResult

_quiet: Callable[[str], None] = lambda s: None  # noqa: E731


def load_dataset(path_or_name: "str | Path | ImageSet", image_size: int | None = None, seed: int = 0,
                 progress: bool = False) -> "ImageSet":
    """An ImageSet from a dataset folder (BUSI, BUS-BRA, UDIAT, an ImageSet folder, a folder of
    images: the layout is detected) or a built-in name (``phantom-busi``, built at ``image_size``,
    default ``DEFAULTS["generation_size"]`` = 256). An ImageSet is returned as it is; a folder's
    images are never resized here."""
    from usbench.datasets import load
    from usbench.imageset import ImageSet

    if isinstance(path_or_name, ImageSet):
        return path_or_name
    return load(path_or_name, image_size=image_size or DEFAULTS["generation_size"], seed=seed, progress=progress)


def list_generators() -> list[str]:
    """Registered generator names (built-ins and plugins)."""
    from usbench.generators import GENERATORS

    return GENERATORS.names()


def list_metrics() -> list[str]:
    """Registered metric names (built-ins and plugins)."""
    from usbench.metrics import METRICS

    return METRICS.names()


def list_datasets() -> list[str]:
    """Dataset layouts and built-in sets that :func:`load_dataset` reads."""
    from usbench.datasets import DATASETS

    return DATASETS.names()


def _describe(source: Any) -> str:
    from usbench.imageset import ImageSet

    return source.name if isinstance(source, ImageSet) else str(source)


def evaluate(generated: "str | Path | ImageSet", reference: "str | Path | ImageSet", *, metrics: Sequence[str] | None = None,
             train: "str | Path | ImageSet | None" = None, inception_weights: str | Path | None = None,
             image_size: int | None = None, n_bootstrap: int | None = None, seed: int | None = None,
             cache: str | Path | None = None, segmenter: str | Path | None = None,
             alexnet_weights: str | Path | None = None, config: "str | Path | RunConfig | None" = None,
             allow_training_masks: bool = False, progress: bool = False,
             log: Callable[[str], None] = _quiet) -> "EvaluationResult":
    """Score ``generated`` against ``reference`` (no generation): every metric in ``metrics``
    (``"kid@radiomics"`` picks the extractor; default: all that can run, the others skipped with
    the reason), overall and per label, with bootstrap intervals. ``train`` is the generator's
    training set (memorization). Features are cached in ``cache`` (default ``~/.cache/usbench/features``).

    Image size: with no ``image_size`` the images are compared at their own size when every image of
    the sets shares one (square or not; nothing is resized by usbench, each extractor then does its
    own resize, e.g. Inception's 299 px as torch-fidelity does), and sets of mixed sizes are refused
    (:class:`~usbench.errors.InputError`); ``image_size=N`` resizes every image to N×N (PIL bicubic).
    The choice is ``result.provenance["resize_protocol"]``."""
    from usbench import validate
    from usbench.evaluation import default_provenance, evaluate_imageset, evaluation_size, feature_store, select_metrics
    from usbench.weights import usbench_cache

    cfg = from_flags(config, metrics=list(metrics) if metrics else None, inception_weights=inception_weights,
                     image_size=image_size, n_bootstrap=n_bootstrap, seed=seed, segmenter=segmenter,
                     alexnet_weights=alexnet_weights)
    validate.check_evaluate_config(cfg)  # numbers, names, paths, weights: before any image is read
    specs = select_metrics(cfg)
    if isinstance(generated, (str, Path)) and Path(generated).is_dir():  # conditioned on its training masks?
        from usbench.generators.conditioning import check_generated

        check_generated(Path(generated), allow_training_masks)
    gen = load_dataset(generated, cfg.image_size, progress=progress)
    ref = load_dataset(reference, cfg.image_size, progress=progress)
    train_set = load_dataset(train, cfg.image_size) if train is not None else None
    validate.check_evaluate_inputs(gen, ref, train_set)  # corrupt, tiny, non-binary masks: before any feature
    size = evaluation_size(cfg.image_size, {"generated": gen, "reference": ref, "train": train_set})  # mixed: refused
    native = cfg.image_size is None
    validate.check_writable(cache, "--cache")
    store = feature_store(cfg, Path(cache) if cache else usbench_cache() / "features", progress=progress, image_size=size)
    result = evaluate_imageset(gen, ref, specs, store, cfg, train=train_set, progress=progress, log=log, image_size=size,
                               provenance=lambda: default_provenance(store, _describe(reference), ref.content_hash(),
                                                                     len(ref), size, native=native))
    result.generated = _describe(generated)
    return result


def generate(generator: str, n: int | None, out: str | Path, *, config: "str | Path | RunConfig | dict | None" = None,
             seed: int | None = None, masks_from: "str | Path | ImageSet | None" = None, split: str | None = None,
             image_size: int | None = None, per_mask: int | None = None, allow_training_masks: bool | None = None,
             progress: bool = False, log: Callable[[str], None] = _quiet) -> "ImageSet | None":
    """``n`` images of ``generator`` into the new ImageSet folder ``out`` (resumed when interrupted).

    Labels follow ``masks_from``'s proportions (default ``phantom-busi``); a mask-conditioned
    generator takes its lesion masks from that set's test ``split`` (``seeded`` or ``paper``), the
    same requests ``usbench run`` makes; a ControlNet with a usbench model card only the masks its
    training left out (``allow_training_masks`` to permit others), ``per_mask`` per mask when given
    (:mod:`usbench.generators.conditioning`). ``config`` is a TOML file, a RunConfig, or the generator's
    own options as a dict. Under ``accelerate launch`` the work is sharded; the non-main processes
    return None."""
    from usbench import validate
    from usbench.datasets.splits import split as split_set
    from usbench.generators import GENERATORS
    from usbench.generators.plan import plan_generation
    from usbench.runs import check_new_out, generate_images

    check_new_out(Path(out))
    validate.check_n(n)
    gen_config = config if isinstance(config, dict) else None
    cfg = from_flags(None if gen_config is not None else config, seed=seed, split=split, image_size=image_size,
                     per_mask=per_mask, allow_training_masks=allow_training_masks)
    validate.check_config_numbers(cfg)
    mask_conditioned = getattr(GENERATORS.get(generator), "mask_conditioned", False)  # unknown names fail here
    reference = load_dataset(masks_from or DEFAULTS["labels_from"], cfg.generation_size, progress=progress)
    n = DEFAULTS["n_generate"] if n is None else n
    conditioning = None
    if mask_conditioned and reference.has_masks:  # the test split, as `usbench run` conditions on
        conditioning = split_set(reference, scheme=cfg.split, test_fraction=cfg.test_fraction, seed=cfg.seed,
                                 check_leaks=False).test
    plan = plan_generation(generator, gen_config if gen_config is not None else cfg.generator.get(generator, {}),
                           reference, n, cfg.seed, cfg.generation_size, conditioning=conditioning, per_mask=cfg.per_mask,
                           allow_training_masks=cfg.allow_training_masks, log=log)
    return generate_images(plan, Path(out), batch_size=cfg.batch_size, progress=progress)


def run(config: "str | Path | RunConfig | None" = None, *, generators: Sequence[str] | None = None,
        reference: str | Path | None = None, metrics: Sequence[str] | None = None, n: int | None = None,
        seed: int | None = None, out: str | Path | None = None, image_size: int | None = None,
        n_bootstrap: int | None = None, split: str | None = None, inception_weights: str | Path | None = None,
        segmenter: str | Path | None = None, alexnet_weights: str | Path | None = None, utility: bool | None = None,
        per_mask: int | None = None, allow_training_masks: bool | None = None,
        studies: Iterable[str | Path] = (), force: bool = False, progress: bool = False,
        log: Callable[[str], None] = _quiet) -> "BenchmarkResult":
    """What ``usbench run`` does: for each generator, generate (or reuse) ``n`` images, compute the
    metrics against the reference, write ``<out>/runs/<run_id>/``, ``leaderboard.csv`` and
    ``report.html``. With no arguments: the built-in benchmark (phantom reference, every generator
    and metric that needs no downloaded weights). Everything that can be checked without generating
    an image is checked first (:func:`usbench.validate.check_run_config`); files in ``out`` that
    usbench did not write are never overwritten unless ``force``. Images are generated and compared
    at ``image_size`` (default ``DEFAULTS["generation_size"]`` = 256, the size the built-in
    reference is built at): a reference of another size is resized to it (PIL bicubic), as its
    ``resize_protocol`` says."""
    from usbench import validate
    from usbench.runs import run_benchmark

    cfg = from_flags(config, generators=list(generators) if generators else None, reference=reference,
                     metrics=list(metrics) if metrics else None, n=n, seed=seed, out=out, image_size=image_size,
                     n_bootstrap=n_bootstrap, split=split, inception_weights=inception_weights, segmenter=segmenter,
                     alexnet_weights=alexnet_weights, utility=utility, per_mask=per_mask,
                     allow_training_masks=allow_training_masks)
    validate.check_run_config(cfg, force=force)
    return run_benchmark(cfg, progress=progress, log=log, studies=[Path(s) for s in studies])


def write_leaderboard(runs: Iterable[str | Path], out: str | Path, *, studies: Iterable[str | Path] = (),
                      force: bool = False) -> list[dict[str, Any]]:
    """Aggregate run folders (or benchmark output folders) into ``out`` (a CSV file; ``.md`` and
    ``.html`` beside it), joining reader-study columns; returns the rows. Files there that usbench
    did not write are refused unless ``force``."""
    from usbench import leaderboard as lb
    from usbench import outputs
    from usbench.errors import OutputError
    from usbench.imageset import ensure_writable_dir

    out = Path(out)
    if out.is_dir():
        raise OutputError(f"{out} is a folder", "give a file name such as leaderboard.csv")
    outputs.claim(out.parent, [out.name, out.with_suffix(".md").name, out.with_suffix(".html").name], force=force)
    rows = lb.rows_from_runs([Path(r) for r in runs], reader_columns=lb.reader_columns([Path(s) for s in studies]))
    ensure_writable_dir(out.parent if str(out.parent) else Path("."))
    lb.write_all(rows, out)
    return rows


__all__ = ["evaluate", "generate", "list_datasets", "list_generators", "list_metrics", "load_dataset", "run", "write_leaderboard"]
