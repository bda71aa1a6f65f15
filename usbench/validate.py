"""Checks of a command's inputs, all made before any work starts.

Each check raises a :class:`~usbench.errors.UsbenchError` whose one line names the flag (or config
key), what is wrong with the value and what to give instead. The CLI calls them first, so a typo in
the last ``--metrics`` does not cost the generation of every image before it.

The limits (and why):

- ``--n`` (images per generator): 1 … :data:`MAX_IMAGES`. Every generated image is a PNG on disk
  and its features are held in memory for the metrics (Inception: 8 kB per image and extractor;
  KID's subsets and the bootstrap resample them), so 100 000 images are ~6.5 GB of PNGs at 256 px
  and several GB of features; more is better spent on several seeds.
- ``--image-size``: 32 … 1024 px (MS-SSIM needs at least 32 px per side after its four
  downsamplings; the phantom simulator and the extractors are not meant beyond 1024).
- ``--bootstrap``: 0 … 100 000 resamples (0 turns intervals off; beyond 1e5 the interval no
  longer changes at the printed precision and the time is wasted).
- ``--seed``: 0 … 2**32 - 1 (numpy's SeedSequence takes no negative seeds).
- images read as inputs: at least :data:`MIN_IMAGE_SIDE` (32) px per side; smaller ones would be
  upscaled from nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

from usbench.errors import ConfigError, InputError, UnknownNameError

MAX_IMAGES = 100_000
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 32, 1024
MAX_BOOTSTRAP = 100_000
MAX_SEED = 2**32 - 1
MIN_IMAGE_SIDE = 32
SPLITS = ("seeded", "paper")


# ---------------------------------------------------------------------------------------------
# numbers


def check_int(flag: str, value: Any, lo: int, hi: int | None = None, why: str = "", example: Any = None) -> int | None:
    """``value`` must be an integer in [lo, hi] (None: not given, nothing to check)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{flag} must be a whole number, got {value!r}", f"e.g. {flag} {example if example is not None else lo}")
    if value < lo or (hi is not None and value > hi):
        bound = f"at least {lo}" if hi is None else f"between {lo} and {hi:,}".replace(",", " ")
        hint = f"use {flag} {example if example is not None else lo}" + (f"; {why}" if why else "")
        raise ConfigError(f"{flag} must be {bound}, got {value}", hint)
    return value


def check_float(flag: str, value: Any, lo: float, hi: float, inclusive: bool = True, example: Any = None) -> float | None:
    if value is None:
        return None
    ok = lo <= value <= hi if inclusive else lo < value < hi
    if not ok:
        interval = f"[{lo}, {hi}]" if inclusive else f"({lo}, {hi})"
        raise ConfigError(f"{flag} must be in {interval}, got {value}", f"e.g. {flag} {example if example is not None else hi / 2}")
    return value


def check_n(value: int | None, flag: str = "--n") -> int | None:
    return check_int(flag, value, 1, MAX_IMAGES, example=300,
                     why=f"more than {MAX_IMAGES:,} images per generator do not fit the feature store in memory; "
                         "run several seeds instead".replace(",", " "))


def check_image_size(value: int | None, flag: str = "--image-size") -> int | None:
    return check_int(flag, value, MIN_IMAGE_SIZE, MAX_IMAGE_SIZE, example=256)


def check_bootstrap(value: int | None, flag: str = "--bootstrap") -> int | None:
    return check_int(flag, value, 0, MAX_BOOTSTRAP, example=1000, why="0 turns the intervals off")


def check_seed(value: int | None, flag: str = "--seed") -> int | None:
    return check_int(flag, value, 0, MAX_SEED, example=0)


def check_split(value: str | None, flag: str = "--split") -> str | None:
    if value is not None and value not in SPLITS:
        raise ConfigError(f"{flag} must be one of {', '.join(SPLITS)}, got {value!r}",
                          "seeded: stratified by label, grouped by patient; paper: BUSI's published hold-out")
    return value


def check_run_numbers(n: int | None = None, seed: int | None = None, image_size: int | None = None,
                      n_bootstrap: int | None = None, split: str | None = None) -> None:
    """The numbers of ``usbench run`` / ``generate`` / ``evaluate``, as flags."""
    check_n(n)
    check_seed(seed)
    check_image_size(image_size)
    check_bootstrap(n_bootstrap)
    check_split(split)


def check_config_numbers(config: Any, where: str = "the run configuration") -> None:
    """The same limits for the values of a merged RunConfig (flags and config file)."""
    check_n(config.n, f"n ({where})")
    check_seed(config.seed, f"seed ({where})")
    check_image_size(config.image_size, f"image_size ({where})")
    check_bootstrap(config.n_bootstrap, f"n_bootstrap ({where})")
    check_split(config.split, f"split ({where})")


# ---------------------------------------------------------------------------------------------
# names


def check_generator_names(names: Iterable[str]) -> list[str]:
    from usbench.generators import GENERATORS

    names = list(names)
    for name in names:
        GENERATORS.get(name)  # unknown names fail here, listing the known ones
    return names


def check_metric_names(entries: Iterable[str], flag: str = "--metrics") -> list[str]:
    """Metric names, each optionally ``metric@extractor`` (``kid@radiomics``)."""
    from usbench.metrics import EXTRACTORS, METRICS

    entries = list(entries)
    for entry in entries:
        name, at, ext = str(entry).partition("@")
        if not name:
            raise UnknownNameError(f"{flag} {entry!r} names no metric", f"known metrics: {', '.join(METRICS.names())}")
        cls = METRICS.get(name)
        if at:
            if ext not in EXTRACTORS.names():
                raise UnknownNameError(f"unknown extractor {ext!r} in {flag} {entry}",
                                       f"known extractors: {', '.join(EXTRACTORS.names())}")
            if getattr(cls, "extractor", None) is None:
                raise ConfigError(f"{flag} {entry}: {name} uses no feature extractor", f"write {flag} {name}")
    return entries


def check_paths(config: Any) -> None:
    """Extractor names of the config, and the weights files and segmenter folder given explicitly exist."""
    from usbench.metrics import EXTRACTORS

    options = config.extractor_options() if hasattr(config, "extractor_options") else config.extractor
    for name, opts in options.items():
        EXTRACTORS.get(name)
        weights = (opts or {}).get("weights")
        if weights and not Path(weights).expanduser().is_file():
            flag = "--inception-weights" if name == "inception" else f"[extractor.{name}] weights"
            raise InputError(f"the weights file {weights} of extractor {name} does not exist",
                             f"check the path given to {flag} (usbench doctor lists what it needs)")
    alexnet = getattr(config, "alexnet_weights", "")
    if alexnet and not Path(alexnet).expanduser().is_file():
        raise InputError(f"the AlexNet weights file {alexnet} does not exist", "check the path given to --alexnet-weights")
    segmenter = getattr(config, "segmenter", "")
    if segmenter and not Path(segmenter).expanduser().is_dir():
        raise InputError(f"the segmenter folder {segmenter} does not exist",
                         "check --segmenter; make one with `usbench segmenter train`")


def check_metric_weights(config: Any) -> None:
    """The weights of the metrics the user named are there (or can be downloaded) before any work:
    a named metric whose weights are missing is an error, and finding it after generating every
    image wastes the generation. (Default metrics with missing weights are skipped with the reason.)"""
    from usbench.metrics import METRICS
    from usbench.weights import offline

    options = config.extractor_options() if hasattr(config, "extractor_options") else config.extractor
    for entry in config.metrics:
        name, _, ext = str(entry).partition("@")
        cls = METRICS.get(name)
        extractor = ext or (config.metric.get(name, {}) or {}).get("extractor") or getattr(cls, "extractor", None)
        if extractor == "inception":
            from usbench.metrics.extractors import INCEPTION_WEIGHTS, resolve_with_policy

            opts = options.get("inception", {}) or {}
            resolve_with_policy(INCEPTION_WEIGHTS, opts.get("weights") or None, opts.get("weights_sha256"),
                                download=not offline())
        if name == "lpips-diversity":
            from usbench.metrics.diversity import ALEXNET_WEIGHTS
            from usbench.weights import resolve_weights

            explicit = getattr(config, "alexnet_weights", "") or (config.metric.get(name, {}) or {}).get("weights")
            resolve_weights(ALEXNET_WEIGHTS, explicit or None, download=False)


# ---------------------------------------------------------------------------------------------
# sets


def check_images(images: Any, flag: str) -> None:
    """Decode every image and mask of a set once (corrupt files, bombs, non-binary masks) and refuse
    images too small to be measured, before any feature is computed."""
    from usbench.imageset import read_gray, read_mask

    for rec in images.records:
        img = read_gray(rec.file)
        h, w = img.shape
        if min(h, w) < MIN_IMAGE_SIDE:
            raise InputError(
                f"image {rec.file} given to {flag} is {w}x{h} px; usbench does not upscale images smaller than "
                f"{MIN_IMAGE_SIDE} px a side", "remove it or give the images at their real resolution")
        if rec.mask_file is not None:
            read_mask(rec.mask_file, img.shape)
            for extra in images.extra_masks.get(rec.id, ()):
                read_mask(extra, img.shape)


def check_reference_serves(generators: Sequence[str], reference: Any, reference_flag: str, n: int, seed: int,
                           image_size: int, generator_config: dict | None = None) -> None:
    """Every generator can serve the requests the reference implies (labels it knows, masks it needs)."""
    from usbench.generators.plan import plan_generation

    unlabelled = sum(1 for r in reference.records if not r.label)
    for name in generators:
        # the labels are what matters here: a few requests show them without planning all n
        plan = plan_generation(name, (generator_config or {}).get(name, {}), reference, min(n, 64), seed, image_size)
        try:
            plan.check()
        except InputError as err:
            if unlabelled:
                raise InputError(
                    f"{reference_flag} has {unlabelled} unlabelled image(s) but generator {name} makes images per "
                    f"label ({err})", "give a labelled reference: a BUSI/BUS-BRA/UDIAT folder or an ImageSet whose "
                    "manifest.csv has a label column") from None
            raise


# ---------------------------------------------------------------------------------------------
# whole commands

RUN_OUTPUTS = ("leaderboard.csv", "leaderboard.md", "leaderboard.html", "report.html", "figures/")


def check_run_config(config: Any, force: bool = False) -> None:
    """Everything of ``usbench run`` that can be checked without generating an image: numbers, names,
    the output folder (nothing of the user's in the way) and the reference's labels."""
    from usbench import outputs
    from usbench.datasets import builtin_names, load
    from usbench.runs import generator_names

    check_config_numbers(config)
    names = check_generator_names(generator_names(config))
    check_metric_names(config.metrics)
    check_paths(config)
    check_metric_weights(config)
    out = Path(config.out).expanduser()
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file", "give --out a folder name")
    outputs.claim(out, RUN_OUTPUTS, force=force)
    if str(config.reference) not in builtin_names():  # the built-in set is labelled; a folder may not be
        reference = load(config.reference, image_size=config.generation_size)
        check_reference_serves(names, reference, f"--reference {config.reference}", config.n, config.seed,
                               config.generation_size, config.generator)


def check_evaluate_config(config: Any) -> None:
    """The numbers, names and paths of ``usbench evaluate``."""
    check_config_numbers(config)
    check_metric_names(config.metrics)
    check_paths(config)
    check_metric_weights(config)


def check_evaluate_inputs(generated: Any, reference: Any, train: Any = None) -> None:
    """The sets of ``usbench evaluate`` (loaded ImageSets): every generated (and training) image
    decodes, is large enough, and its mask is binary; before any feature is computed."""
    check_images(generated, "--generated")
    if train is not None:
        check_images(train, "--train")


def check_writable(folder: Path | str | None, flag: str) -> None:
    """A folder usbench will write into (a cache) can be created and written, before any work."""
    if folder is None:
        return
    from usbench.imageset import ensure_writable_dir

    ensure_writable_dir(Path(folder))


__all__ = [
    "MAX_IMAGES", "check_bootstrap", "check_config_numbers", "check_float", "check_generator_names", "check_image_size",
    "check_images", "check_int", "check_metric_names", "check_n", "check_reference_serves", "check_run_numbers",
    "check_seed", "check_split", "check_run_config", "check_evaluate_inputs", "check_evaluate_config", "check_paths", "check_metric_weights", "check_writable", "RUN_OUTPUTS",
]
