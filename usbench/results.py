"""Typed results: what :func:`usbench.evaluate` and :func:`usbench.run` return, and what
``metrics.json``, ``leaderboard.csv`` and ``report.html`` are written from.

- :class:`MetricEntry`: one value of one metric on one subset, with its interval, counts and details.
- :class:`SkippedMetric`: a metric that could not run on a subset, with the reason.
- :class:`EvaluationResult`: every entry of one generated set against one reference
  (``.value("fid")``, ``.interval("fid", subset="benign")``, ``.to_frame()``).
- :class:`RunInfo` / :class:`RunResult`: one generator run of a benchmark (``run.json`` + its evaluation).
- :class:`BenchmarkResult`: the runs of ``usbench run`` and the leaderboard rows of its output folder.

Each has a versioned JSON form (``to_json``/``from_json``): ``{"schema": "usbench.<kind>", "version": N, ...}``.
A run's ``metrics.json`` *is* the JSON of its :class:`EvaluationResult` (entries carry the cache
key they were computed under, which is how a killed run resumes).

Column names (``kid_radiomics``, ``ms_ssim_diversity``) are made by :func:`column_name` only.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple

from usbench.common import SUBSET_ALL, label_rank
from usbench.errors import InputError

EVALUATION_SCHEMA, EVALUATION_VERSION = "usbench.evaluation", 1
BENCHMARK_SCHEMA, BENCHMARK_VERSION = "usbench.benchmark", 1


def column_name(result_name: str, extractor: str | None = None, default_extractor: str | None = None) -> str:
    """The leaderboard column of a result: its name, suffixed with the extractor when that is not
    the metric's default; ``-`` and ``@`` become ``_`` (``kid@radiomics`` → ``kid_radiomics``)."""
    base = f"{result_name}_{extractor}" if extractor and default_extractor and extractor != default_extractor else result_name
    return base.replace("-", "_").replace("@", "_")


def _num(x: Any) -> float | None:
    """A float for JSON: NaN and None become null."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _nan(x: Any) -> float:
    return math.nan if x is None else float(x)


def _check_schema(d: dict[str, Any], schema: str, version: int, where: str) -> None:
    if d.get("schema") != schema:
        raise InputError(f"{where} is not a {schema} JSON (schema {d.get('schema')!r})", "pass a file written by usbench")
    if int(d.get("version", 0)) > version:
        raise InputError(f"{where} has {schema} version {d['version']}, this usbench reads up to {version}",
                         "upgrade usbench")


class Interval(NamedTuple):
    """A confidence interval; ``low``/``high`` are NaN when there is none (``n_bootstrap=0``)."""

    low: float
    high: float
    level: float = 0.95


@dataclass(frozen=True, eq=False)
class MetricEntry:
    """One value: ``metric`` is the registered metric (``prdc``), ``name`` the result (``precision``),
    ``column`` the leaderboard column (``precision_radiomics``). Equal entries have equal fields
    (NaN equal to NaN), the cache ``key`` and ``seconds`` aside."""

    metric: str
    name: str
    column: str
    subset: str
    value: float
    ci_low: float = math.nan
    ci_high: float = math.nan
    ci_level: float = 0.95
    n_generated: int = 0
    n_reference: int = 0
    higher_is_better: bool = False
    extractor: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    key: str = ""  # the cache key it was computed under
    seconds: float = 0.0

    @property
    def interval(self) -> Interval:
        return Interval(self.ci_low, self.ci_high, self.ci_level)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MetricEntry):
            return NotImplemented
        strip = lambda d: {k: v for k, v in d.items() if k not in ("key", "seconds")}  # noqa: E731
        return strip(self.to_dict()) == strip(other.to_dict())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("value", "ci_low", "ci_high"):
            d[k] = _num(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "MetricEntry":
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        for k in ("value", "ci_low", "ci_high"):
            d[k] = _nan(d.get(k))
        return cls(**d)


@dataclass(frozen=True)
class SkippedMetric:
    metric: str
    subset: str
    reason: str
    config: dict[str, Any] = field(default_factory=dict, compare=False)
    key: str = field(default="", compare=False)
    seconds: float = field(default=0.0, compare=False)

    @property
    def label(self) -> str:
        ext = self.config.get("extractor")
        return f"{self.metric}[{ext}]" if ext else self.metric

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SkippedMetric":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class EvaluationResult:
    """Every metric of one generated set against one reference, overall (``subset="all"``) and per label."""

    entries: list[MetricEntry] = field(default_factory=list)
    skipped: list[SkippedMetric] = field(default_factory=list)
    generated: str = ""
    reference: str = ""
    n_generated: int = 0
    n_reference: int = 0
    generated_hash: str = ""
    reference_hash: str = ""
    seed: int = 0
    n_bootstrap: int = 0
    image_size: int = 0
    provenance: dict[str, Any] = field(default_factory=dict)  # extractors_sha256, resize_protocol, ...

    # -- looking things up ---------------------------------------------------------------------
    @property
    def metrics(self) -> list[str]:
        """The columns present, in the order they were computed."""
        return list(dict.fromkeys(e.column for e in self.entries))

    @property
    def subsets(self) -> list[str]:
        return sorted({e.subset for e in self.entries}, key=lambda s: (label_rank(s), s))

    def entry(self, metric: str, subset: str = SUBSET_ALL) -> MetricEntry:
        """The entry of ``metric`` on ``subset``. ``metric`` is a column (``kid_radiomics``), or a
        result or metric name (``kid``, ``ms-ssim-diversity``) when that picks exactly one."""
        on_subset = [e for e in self.entries if e.subset == subset]
        want = column_name(metric)
        for match in ([e for e in on_subset if e.column == want],
                      [e for e in on_subset if column_name(e.name) == want],
                      [e for e in on_subset if column_name(e.metric) == want]):
            if len(match) == 1:
                return match[0]
            if len(match) > 1:
                raise KeyError(f"{metric!r} is ambiguous on subset {subset!r}: {', '.join(e.column for e in match)}")
        why = next((s.reason for s in self.skipped if s.subset == subset and column_name(s.metric) == want), None)
        if why:
            raise KeyError(f"{metric} was skipped on subset {subset!r}: {why}")
        have = ", ".join(dict.fromkeys(e.column for e in on_subset)) or "none"
        raise KeyError(f"no {metric!r} on subset {subset!r} (have: {have})")

    def value(self, metric: str, subset: str = SUBSET_ALL) -> float:
        return self.entry(metric, subset).value

    def interval(self, metric: str, subset: str = SUBSET_ALL) -> Interval:
        return self.entry(metric, subset).interval

    def to_frame(self):
        """A pandas DataFrame, one row per entry (``metric, column, subset, value, ci_low, ci_high, ...``)."""
        import pandas as pd

        cols = ["metric", "name", "column", "extractor", "subset", "value", "ci_low", "ci_high", "ci_level",
                "n_generated", "n_reference", "higher_is_better"]
        return pd.DataFrame([{c: getattr(e, c) for c in cols} for e in self.entries], columns=cols)

    # -- JSON ----------------------------------------------------------------------------------
    def to_dict(self, cache_keys: bool = False) -> dict[str, Any]:
        """The JSON form: ``results`` (one dict per entry) and ``skipped`` (``metric, subset, reason``).
        ``cache_keys`` adds what a run's ``metrics.json`` needs to resume (keys, configs, seconds)."""
        internal = ("key", "seconds") if not cache_keys else ()
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("entries", "skipped")}
        results = [{k: v for k, v in e.to_dict().items() if k not in internal} for e in self.entries]
        skipped = [s.to_dict() if cache_keys else {"metric": s.metric, "subset": s.subset, "reason": s.reason}
                   for s in self.skipped]
        return {"schema": EVALUATION_SCHEMA, "version": EVALUATION_VERSION, **d, "results": results, "skipped": skipped}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "evaluation") -> "EvaluationResult":
        _check_schema(d, EVALUATION_SCHEMA, EVALUATION_VERSION, where)
        known = {f.name for f in fields(cls)} - {"entries", "skipped"}
        return cls(entries=[MetricEntry.from_dict(e) for e in d.get("results", [])],
                   skipped=[SkippedMetric.from_dict(s) for s in d.get("skipped", [])],
                   **{k: v for k, v in d.items() if k in known})

    def to_json(self, path: str | Path | None = None, cache_keys: bool = False) -> str:
        """The JSON text; with ``path``, also written there (atomically)."""
        return _written(json.dumps(self.to_dict(cache_keys), indent=1), path)

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> "EvaluationResult":
        text, where = _read_json_arg(text_or_path)
        return cls.from_dict(text, where)

    # -- text ----------------------------------------------------------------------------------
    def summary(self) -> str:
        """What ``usbench evaluate`` prints: one line per entry, then the metrics skipped overall."""
        lines = [f"{self.generated} ({self.n_generated} images) vs {self.reference} ({self.n_reference} images)"]
        for e in sorted(self.entries, key=lambda e: label_rank(e.subset)):
            ci = "" if math.isnan(e.ci_low) else f"  [{e.ci_low:.4g}, {e.ci_high:.4g}]"
            val = "nan" if math.isnan(e.value) else f"{e.value:.4g}"
            lines.append(f"  {e.subset:<10} {e.column:<24} {val:>10}{ci}  {'↑' if e.higher_is_better else '↓'}")
        lines += [f"  skipped {s.metric}: {s.reason}" for s in self.skipped if s.subset == SUBSET_ALL]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _written(text: str, path: str | Path | None) -> str:
    """``text``, also written atomically to ``path`` when one is given (the ``to_json`` of every result)."""
    if path is not None:
        from usbench.imageset import atomic_write_text

        atomic_write_text(Path(path), text)
    return text


def _read_json_arg(text_or_path: str | Path) -> tuple[dict[str, Any], str]:
    """``from_json`` takes JSON text or the path of a JSON file."""
    if isinstance(text_or_path, Path) or not str(text_or_path).lstrip().startswith("{"):
        path = Path(text_or_path)
        if not path.is_file():
            raise InputError(f"{path} does not exist", "pass the path of a JSON file written by usbench, or its text")
        text, where = path.read_text(encoding="utf-8"), str(path)
    else:
        text, where = str(text_or_path), "JSON text"
    try:
        return json.loads(text), where
    except json.JSONDecodeError as exc:
        raise InputError(f"{where} is not valid JSON: {exc}", "pass a file written by usbench") from None


def read_evaluation(path: Path) -> EvaluationResult:
    """A run's ``metrics.json``; also reads the unversioned store of usbench 0.1 (``{"entries": {key: ...}}``)."""
    data, where = _read_json_arg(Path(path))
    if "schema" in data:
        return EvaluationResult.from_dict(data, where)
    return _from_v0_store(data)


def _from_v0_store(store: dict[str, Any]) -> EvaluationResult:
    prov = dict(store.get("provenance", {}))
    res = EvaluationResult(generated_hash=store.get("generated_hash", ""), n_bootstrap=store.get("n_bootstrap", 0),
                           reference=prov.pop("reference", ""), reference_hash=prov.pop("reference_hash", ""),
                           n_reference=prov.pop("n_reference", 0), provenance=prov)
    for key, e in store.get("entries", {}).items():
        common = {"metric": e["metric"], "subset": e["subset"], "config": e.get("config", {}), "key": key,
                  "seconds": e.get("seconds", 0.0)}
        if "skipped" in e:
            res.skipped.append(SkippedMetric(reason=e["skipped"], **common))
        for r in e.get("results", []):
            res.entries.append(MetricEntry(
                name=r["name"], column=column_name(r.get("column") or r["name"]), value=_nan(r["value"]),
                ci_low=_nan(r.get("ci_low")), ci_high=_nan(r.get("ci_high")), ci_level=r.get("ci_level", 0.95),
                n_generated=r.get("n_generated", 0), n_reference=r.get("n_reference", 0),
                higher_is_better=r.get("higher_is_better", False), details=r.get("details", {}),
                extractor=e.get("config", {}).get("extractor"), **common))
    return res


# ---------------------------------------------------------------------------------------------
# runs and benchmarks


RUN_FILE, METRICS_FILE = "run.json", "metrics.json"


@dataclass
class RunInfo:
    """``run.json``: what a generator run was made from. Keys this version does not know are kept in ``extra``."""

    run_id: str
    generator: str
    generator_config: dict[str, Any] = field(default_factory=dict)
    generator_fingerprint: str = ""
    mask_conditioned: bool = False
    n: int = 0
    seed: int = 0
    request_seeds: list[int] = field(default_factory=list)
    image_size: int = 0
    reference: str = ""
    reference_hash: str = ""
    split: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    seconds_generate: float = 0.0
    created: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        return {**self.extra, **d}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunInfo":
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in d.items() if k in known}, extra={k: v for k, v in d.items() if k not in known})

    def write(self, run_dir: Path) -> None:
        from usbench.imageset import atomic_write_text

        atomic_write_text(Path(run_dir) / RUN_FILE, json.dumps(self.to_dict(), indent=2))


@dataclass
class RunResult:
    """One generator run: its folder (images, ``run.json``, ``metrics.json``) and its evaluation."""

    info: RunInfo
    dir: Path
    evaluation: EvaluationResult = field(default_factory=EvaluationResult)

    @property
    def run_id(self) -> str:
        return self.info.run_id

    @property
    def generator(self) -> str:
        return self.info.generator

    @property
    def images(self):
        """The generated ImageSet (read from the run folder)."""
        from usbench.imageset import ImageSet

        return ImageSet.read(self.dir)

    @classmethod
    def read(cls, run_dir: Path) -> "RunResult":
        run_dir = Path(run_dir)
        info_path = run_dir / RUN_FILE
        if not info_path.is_file():
            raise InputError(f"{run_dir} is not a usbench run (no {RUN_FILE})", "point to <out>/runs/<run_id> or to <out>")
        info = RunInfo.from_dict(_read_json_arg(info_path)[0])
        metrics = run_dir / METRICS_FILE
        return cls(info, run_dir, read_evaluation(metrics) if metrics.is_file() else EvaluationResult())

    def to_dict(self) -> dict[str, Any]:
        return {"info": self.info.to_dict(), "dir": str(self.dir), "evaluation": self.evaluation.to_dict(cache_keys=True)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunResult":
        return cls(RunInfo.from_dict(d["info"]), Path(d["dir"]), EvaluationResult.from_dict(d["evaluation"]))


@dataclass
class BenchmarkResult:
    """What ``usbench run`` made: the runs of this call, and the leaderboard rows of every run in
    ``out`` against the same reference (earlier calls' too)."""

    out: Path
    runs: list[RunResult] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    reference: str = ""
    reference_hash: str = ""
    n_reference: int = 0
    n: int = 0
    seed: int = 0
    image_size: int = 0
    main_process: bool = True  # False on the other processes of an `accelerate launch`
    # The image sets behind the report (not serialised): the set compared against, the training set.
    reference_set: Any = field(default=None, repr=False, compare=False)
    train_set: Any = field(default=None, repr=False, compare=False)

    @property
    def leaderboard_csv(self) -> Path:
        return self.out / "leaderboard.csv"

    @property
    def report_html(self) -> Path:
        return self.out / "report.html"

    def run(self, generator: str) -> RunResult:
        """The run of ``generator`` in this call (a run id works too)."""
        found = [r for r in self.runs if generator in (r.generator, r.run_id)]
        if len(found) != 1:
            have = ", ".join(r.generator for r in self.runs) or "none"
            raise KeyError(f"{'no' if not found else 'more than one'} run of {generator!r} (runs: {have})")
        return found[0]

    def value(self, metric: str, generator: str, subset: str = SUBSET_ALL) -> float:
        return self.run(generator).evaluation.value(metric, subset)

    def interval(self, metric: str, generator: str, subset: str = SUBSET_ALL) -> Interval:
        return self.run(generator).evaluation.interval(metric, subset)

    def to_frame(self):
        """A pandas DataFrame of every entry of every run of this call, with ``generator`` and ``run_id``."""
        import pandas as pd

        frames = [r.evaluation.to_frame().assign(generator=r.generator, run_id=r.run_id) for r in self.runs]
        if not frames:
            return EvaluationResult().to_frame().assign(generator=[], run_id=[])
        return pd.concat(frames, ignore_index=True)

    def to_dict(self) -> dict[str, Any]:
        skip = {"runs", "out", "reference_set", "train_set"}
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}
        return {"schema": BENCHMARK_SCHEMA, "version": BENCHMARK_VERSION, "out": str(self.out), **d,
                "runs": [r.to_dict() for r in self.runs]}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "benchmark") -> "BenchmarkResult":
        _check_schema(d, BENCHMARK_SCHEMA, BENCHMARK_VERSION, where)
        known = {f.name for f in fields(cls)} - {"runs", "out", "reference_set", "train_set"}
        return cls(out=Path(d["out"]), runs=[RunResult.from_dict(r) for r in d.get("runs", [])],
                   **{k: v for k, v in d.items() if k in known})

    def to_json(self, path: str | Path | None = None) -> str:
        return _written(json.dumps(self.to_dict(), indent=1, default=_json_default), path)

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> "BenchmarkResult":
        data, where = _read_json_arg(text_or_path)
        return cls.from_dict(data, where)


def _json_default(o: Any) -> Any:
    if isinstance(o, float) and math.isnan(o):
        return None
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


__all__ = ["BenchmarkResult", "EvaluationResult", "Interval", "MetricEntry", "RunInfo", "RunResult", "SkippedMetric",
           "column_name", "read_evaluation"]
