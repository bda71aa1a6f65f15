"""Typed run configuration, read from TOML, with one table of defaults.

A config file looks like this (every key optional)::

    [run]
    reference = "Dataset_BUSI_with_GT"   # a dataset folder or "phantom-busi" (built in)
    generators = ["sd-busi", "phantom"]
    metrics = ["fid", "kid", "prdc"]
    n = 300                                # generated images per generator
    seed = 0
    image_size = 256                       # evaluate: default none (native size); run/generate: default 256
    n_bootstrap = 1000
    split = "seeded"                       # or "paper" (BUSI's published hold-out)
    compare_to = "all"                     # distribution metrics against the whole reference, or "test"
    inception_weights = "~/weights/weights-inception-2015-12-05-6726825d.pth"   # = [extractor.inception] weights
    segmenter = "~/models/seg-busi"        # for mask-adherence and lesion-presence
    alexnet_weights = "~/weights/alexnet-owt-7be5be79.pth"                      # for lpips-diversity
    utility = false                        # also the downstream classification experiment

    [generator.sd-busi]                    # passed to the backend's from_config
    model = "~/models/sd-busi"
    steps = 50

    [metric.kid]                           # passed to the metric's from_config
    extractor = "radiomics"

    [extractor.inception]                  # options of a feature extractor
    weights = "~/weights/weights-inception-2015-12-05-6726825d.pth"

Command-line flags override the file (:func:`from_flags` is the one place flags become a config;
every command-line option defaults to None and falls back to :data:`DEFAULTS`). Unknown keys and
wrong types are refused in one line.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from usbench.errors import ConfigError, InputError
from usbench.common import config_from_dict

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# The defaults table: every default of a run, in one place.
DEFAULTS: dict[str, Any] = {
    "out": "usbench-results",
    "reference": "phantom-busi",
    "generators": [],  # empty: every built-in generator that needs no downloaded weights
    "metrics": [],  # empty: every default metric; those whose weights are missing are skipped with the reason
    "n": 300,
    "seed": 0,
    # None: usbench evaluate compares the images at their own (native) size when every image of the
    # sets shares one, and refuses sets of mixed sizes; run and generate make images of generation_size
    "image_size": None,
    "generation_size": 256,  # side of generated images (and of the built-in phantom-busi) when image_size is None
    "n_bootstrap": 1000,
    "split": "seeded",
    "test_fraction": 0.2,
    "compare_to": "all",
    "train": "",  # a separate training set for memorization; default: the reference's train split
    "batch_size": 8,
    "utility": False,  # also run the downstream classification experiment (usbench utility) per generator
    "inception_weights": "",  # a weights file for the Inception extractor; default: found in the caches
    "segmenter": "",  # a segmenter folder (usbench segmenter train); default: ~/.cache/usbench/models/segmenter
    "alexnet_weights": "",  # torchvision's AlexNet file for lpips-diversity; default: found in the caches
    "n_generate": 100,  # images of `usbench generate` / usbench.generate when no n is given
    "labels_from": "phantom-busi",  # the dataset `usbench generate` follows (labels, conditioning masks)
    "per_mask": 0,  # mask-conditioned generators: exactly this many images per held-out mask (0: n in the label mix)
    "allow_training_masks": False,  # mask-conditioned generators may use their own training masks
}


@dataclass
class RunConfig:
    out: str = DEFAULTS["out"]
    reference: str = DEFAULTS["reference"]
    generators: list = field(default_factory=lambda: list(DEFAULTS["generators"]))
    metrics: list = field(default_factory=lambda: list(DEFAULTS["metrics"]))
    n: int = DEFAULTS["n"]
    seed: int = DEFAULTS["seed"]
    image_size: int | None = DEFAULTS["image_size"]  # None: native (evaluate), generation_size (run, generate)
    n_bootstrap: int = DEFAULTS["n_bootstrap"]
    split: str = DEFAULTS["split"]
    test_fraction: float = DEFAULTS["test_fraction"]
    compare_to: str = DEFAULTS["compare_to"]
    train: str = DEFAULTS["train"]
    batch_size: int = DEFAULTS["batch_size"]
    utility: bool = DEFAULTS["utility"]
    inception_weights: str = DEFAULTS["inception_weights"]
    segmenter: str = DEFAULTS["segmenter"]
    alexnet_weights: str = DEFAULTS["alexnet_weights"]
    per_mask: int = DEFAULTS["per_mask"]
    allow_training_masks: bool = DEFAULTS["allow_training_masks"]
    generator: dict = field(default_factory=dict)  # name -> backend config
    metric: dict = field(default_factory=dict)  # name -> metric config
    extractor: dict = field(default_factory=dict)  # name -> extractor options
    utility_config: dict = field(default_factory=dict)  # [utility] table: usbench.tasks.utility.UtilityConfig keys

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.n < 1:
            raise ConfigError(f"n must be at least 1, got {self.n}", "set --n to the number of images per generator")
        if self.image_size is not None and (isinstance(self.image_size, bool) or not isinstance(self.image_size, int)):
            raise ConfigError(f"image_size must be int, got {type(self.image_size).__name__} {self.image_size!r}",
                              "e.g. image_size = 256, or leave it out for the images' own size")
        if self.image_size is not None and self.image_size < 32:
            raise ConfigError(f"image_size must be at least 32, got {self.image_size}", "e.g. 256")
        if self.n_bootstrap < 0:
            raise ConfigError(f"n_bootstrap must be >= 0, got {self.n_bootstrap}", "0 turns intervals off")
        if self.compare_to not in ("all", "test"):
            raise ConfigError(f"compare_to must be 'all' or 'test', got {self.compare_to!r}", "see docs/leaderboard.md")
        if not 0 < self.test_fraction < 1:
            raise ConfigError(f"test_fraction must be in (0, 1), got {self.test_fraction}", "e.g. 0.2")

    @property
    def generation_size(self) -> int:
        """The side of generated images (run, generate) and of a built-in reference: ``image_size``,
        else ``DEFAULTS["generation_size"]`` (256). A run compares its images at this size."""
        return self.image_size if self.image_size is not None else int(DEFAULTS["generation_size"])

    def extractor_options(self) -> dict[str, dict[str, Any]]:
        """``[extractor.*]`` options, with ``inception_weights`` as the Inception extractor's ``weights``."""
        options = {name: dict(opts) for name, opts in self.extractor.items()}
        if self.inception_weights:
            options.setdefault("inception", {})["weights"] = str(self.inception_weights)
        return options

    def with_overrides(self, **overrides: Any) -> "RunConfig":
        """A copy with the non-None overrides applied (flags win over the file)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update({k: v for k, v in overrides.items() if v is not None and v != []})
        return RunConfig(**values)


def from_flags(config: "str | Path | RunConfig | None" = None, **flags: Any) -> RunConfig:
    """The run configuration of a command or API call: the TOML file (or a RunConfig, or the
    defaults), with every flag that is not None applied. Flags are RunConfig fields; paths become
    strings, ``generators``/``metrics`` lists (empty = keep the file's)."""
    base = config if isinstance(config, RunConfig) else load_config(config)
    known = {f.name for f in fields(RunConfig)}
    unknown = sorted(set(flags) - known)
    if unknown:
        raise TypeError(f"unknown run option(s) {', '.join(unknown)}")  # a programming error, not a user's
    clean: dict[str, Any] = {}
    for key, value in flags.items():
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, (tuple, list)):
            value = [str(v) for v in value]
        elif isinstance(value, str) and key in ("generators", "metrics"):
            value = [value]
        clean[key] = value
    return base.with_overrides(**clean)


_TOP_TABLES = {"run", "generator", "metric", "extractor", "utility"}


def load_config(path: str | Path | None) -> RunConfig:
    """Read a TOML run configuration; no path gives the defaults."""
    if path is None:
        return RunConfig()
    path = Path(path)
    if not path.is_file():
        raise InputError(f"config file {path} does not exist", "check the path given to --config")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}", "fix the syntax") from None
    unknown = sorted(set(data) - _TOP_TABLES)
    if unknown:
        raise ConfigError(f"{path}: unknown table(s) {', '.join(unknown)}", f"known tables: {', '.join(sorted(_TOP_TABLES))}")
    run = data.get("run", {})
    nested = sorted(set(run) & {"generator", "metric", "extractor", "utility_config"})
    if nested:
        raise ConfigError(f"{path}: {nested[0]} is a table, not a key of [run]", f"write it as [{nested[0]}.NAME] with key = value lines")
    config = config_from_dict(RunConfig, run, f"{path}: [run]")  # unknown keys and wrong types, in one line
    for table in ("generator", "metric", "extractor"):
        for name, sub in data.get(table, {}).items():
            if not isinstance(sub, dict):
                raise ConfigError(f"{path}: [{table}.{name}] must be a table", f"write [{table}.{name}] then key = value lines")
    config.generator, config.metric = data.get("generator", {}), data.get("metric", {})
    config.extractor, config.utility_config = data.get("extractor", {}), data.get("utility", {})
    return config
