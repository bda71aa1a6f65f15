"""Library functions behind the CLI commands that are not a whole benchmark run:
``generate``, ``evaluate``, ``doctor``, and joining reader-study columns."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from usbench.errors import OutputError
from usbench.imageset import MANIFEST, ImageSet


def _check_out(out: Path) -> None:
    """Refuse to write generated images over something the user has (a finished set, other files)."""
    out = Path(out)
    if not out.exists():
        return
    if not out.is_dir():
        raise OutputError(f"{out} is a file", "choose a folder name for --out")
    if (out / MANIFEST).exists():
        raise OutputError(f"{out} already holds an image set", "choose another --out or delete it first")
    others = [p.name for p in out.iterdir() if p.name not in ("images", "masks") and not p.name.startswith(".")]
    if others:
        raise OutputError(f"{out} is not empty (it holds {others[0]})", "choose a new or empty folder for --out")


def generate_set(generator: str, out: Path, n: int, seed: int = 0, labels_from: str = "phantom-busi", image_size: int = 256,
                 generator_config: dict | None = None, progress: bool = False, per_mask: int = 0,
                 allow_training_masks: bool = False, log: Callable[[str], None] = lambda s: None) -> ImageSet | None:
    """Generate ``n`` images into ``out`` (resuming an interrupted call). Returns None on
    non-main processes of a multi-process (accelerate) launch."""
    from usbench.datasets import load
    from usbench.datasets.splits import split
    from usbench.generators import build_generator
    from usbench.generators.sharding import generate_sharded
    from usbench.runs import make_requests

    _check_out(out)
    gen = build_generator(generator, generator_config or {})
    reference = load(labels_from, size=image_size, progress=progress)
    plan = None
    if getattr(gen, "mask_conditioned", False) and reference.has_masks:  # held-out masks only: generators/conditioning.py
        from usbench.generators.conditioning import plan_requests

        plan = plan_requests(gen, reference, n, seed, image_size, fallback=split(reference, seed=seed, check_leaks=False).test,
                             per_mask=per_mask, allow_training_masks=allow_training_masks, log=log)
    requests = plan.requests if plan else make_requests(reference, n, seed, image_size)
    if hasattr(gen, "check_requests"):
        gen.check_requests(requests)
    images = generate_sharded(gen, requests, Path(out), source=generator, progress=progress)  # one process or many
    if images is not None and plan:
        plan.write(out)
    return images


def evaluate_sets(generated: Path, reference: str, train: Path | None = None, metrics: list[str] | None = None,
                  seed: int = 0, image_size: int = 256, n_bootstrap: int = 1000, extractor: dict | None = None,
                  metric_config: dict | None = None, cache: Path | None = None, progress: bool = False,
                  log: Callable[[str], None] = lambda s: None, allow_training_masks: bool = False) -> dict[str, Any]:
    """Score a generated set against a reference; returns ``{"results": [...], "skipped": [...], ...}``."""
    from usbench.generators.conditioning import check_generated
    from usbench.config import RunConfig
    from usbench.datasets import load
    from usbench.metrics.features import FeatureStore
    from usbench.runs import evaluate_imageset, select_metrics
    from usbench.weights import usbench_cache

    conditioning = check_generated(generated, allow_training_masks) if Path(generated).is_dir() else None
    gen = load(generated)
    ref = load(reference, size=image_size, progress=progress)
    train_set = load(train) if train else None
    cfg = RunConfig(metrics=list(metrics or []), metric=dict(metric_config or {}), extractor=dict(extractor or {}),
                    seed=seed, image_size=image_size, n_bootstrap=n_bootstrap)
    specs = select_metrics(cfg)
    store = FeatureStore(Path(cache) if cache else usbench_cache() / "features", image_size=image_size,
                         options=cfg.extractor, progress=progress)
    entries = evaluate_imageset(gen, ref, specs, store, train=train_set, seed=seed, n_bootstrap=n_bootstrap,
                                image_size=image_size, progress=progress, log=log)
    results, skipped = [], []
    for e in entries.values():
        if "skipped" in e:
            skipped.append({"metric": e["metric"], "subset": e["subset"], "reason": e["skipped"]})
        else:
            results.extend(dict(r, subset=e["subset"]) for r in e["results"])
    return {"generated": str(generated), "reference": str(reference), "n_generated": len(gen), "n_reference": len(ref),
            "generated_hash": gen.content_hash(), "reference_hash": ref.content_hash(), "seed": seed,
            "results": results, "skipped": skipped,
            **({"conditioning": {k: v for k, v in conditioning.items() if k != "masks_from"}} if conditioning else {})}


def format_results(res: dict[str, Any]) -> str:
    lines = [f"{res['generated']} ({res['n_generated']} images) vs {res['reference']} ({res['n_reference']} images)"]
    for r in res["results"]:
        ci = "" if r["ci_low"] is None else f"  [{r['ci_low']:.4g}, {r['ci_high']:.4g}]"
        arrow = "↑" if r["higher_is_better"] else "↓"
        val = "nan" if r["value"] is None else f"{r['value']:.4g}"
        lines.append(f"  {r['subset']:<10} {r['column']:<24} {val:>10}{ci}  {arrow}")
    for s in res["skipped"]:
        if s["subset"] == "all":
            lines.append(f"  skipped {s['metric']}: {s['reason']}")
    return "\n".join(lines)


def reader_columns(studies: list[Path]) -> dict[str, dict[str, Any]]:
    """Reader-study columns by run id, from the studies' analysis (empty without studies)."""
    out: dict[str, dict[str, Any]] = {}
    if not studies:
        return out
    from usbench.reader_study.analysis import leaderboard_columns

    for study in studies:
        for run_id, cols in leaderboard_columns(Path(study)).items():
            out.setdefault(run_id, {}).update(cols)
    return out


def doctor_report() -> dict[str, Any]:
    """What this installation has: versions, device, backends, and where weights are found."""
    from usbench.generators import GENERATORS
    from usbench.metrics import EXTRACTORS, METRICS
    from usbench.versions import versions
    from usbench.weights import cache_dirs, offline, usbench_cache

    report: dict[str, Any] = {"versions": versions(), "offline": offline(), "cache": str(usbench_cache()),
                              "weights_search_path": [str(d) for d in cache_dirs()]}
    try:
        import torch

        report["device"] = {"cuda": torch.cuda.is_available(), "cuda_devices": torch.cuda.device_count(),
                            "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
                            "threads": torch.get_num_threads()}
    except Exception as exc:  # doctor must report a broken torch, not crash on it
        report["device"] = {"error": str(exc)}
    gens = {}
    for name in GENERATORS.names():
        try:
            cls = GENERATORS.get(name)
            gens[name] = {"needs_weights": bool(getattr(cls, "needs_weights", True)),
                          "mask_conditioned": bool(getattr(cls, "mask_conditioned", False))}
        except Exception as exc:
            gens[name] = {"error": f"{type(exc).__name__}: {exc}"}
    report["generators"] = gens
    report["metrics"] = METRICS.names()
    report["extractors"] = EXTRACTORS.names()
    report["weights"] = _weights_status()
    return report


WEIGHTS_MODULES = ("usbench.metrics.extractors", "usbench.metrics.diversity", "usbench.tasks.classifier",
                   "usbench.tasks.utility")


def _weights_status() -> list[dict[str, Any]]:
    """Each known weights file: found where, or missing (with what to do)."""
    from usbench.weights import WeightsSpec, resolve_weights
    from usbench.errors import WeightsError

    import importlib

    specs: list[tuple[str, WeightsSpec]] = []
    for module in WEIGHTS_MODULES:  # every WeightsSpec a module defines is listed
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        specs.extend((module, v) for v in vars(mod).values() if isinstance(v, WeightsSpec))
    out = []
    for module, spec in specs:
        try:
            path, digest = resolve_weights(spec, download=False)
            out.append({"name": spec.name, "file": spec.filename, "found": str(path), "sha256": digest})
        except WeightsError as err:
            out.append({"name": spec.name, "file": spec.filename, "found": None, "how": str(err)})
    from usbench.weights import usbench_cache

    for model in ("sd-busi", "controlnet-busi", "segmenter"):
        p = usbench_cache() / "models" / model
        out.append({"name": f"{model} model folder", "file": str(p), "found": str(p) if p.is_dir() else None,
                    "how": None if p.is_dir() else f"make it with `usbench {'segmenter train' if model == 'segmenter' else 'finetune ' + model}`"})
    return out


def format_doctor(r: dict[str, Any]) -> str:
    v = r["versions"]
    lines = ["usbench " + v.get("usbench", "") + " — " + ", ".join(f"{k} {x}" for k, x in v.items() if k != "usbench" and x)]
    d = r["device"]
    lines.append("device: " + ("CUDA x%d" % d["cuda_devices"] if d.get("cuda") else "CPU") + f" ({d.get('threads', '?')} threads)"
                 + ("; offline mode" if r["offline"] else ""))
    lines.append("generators: " + ", ".join(f"{k}{'' if not g.get('needs_weights') else ' (needs weights)'}" for k, g in r["generators"].items()))
    lines.append("metrics: " + ", ".join(r["metrics"]))
    lines.append("extractors: " + ", ".join(r["extractors"]))
    lines.append("weights:")
    for w in r["weights"]:
        lines.append(f"  {'found  ' if w['found'] else 'missing'} {w['name']}: {w['found'] or w.get('how')}")
    lines.append("search path: " + ", ".join(r["weights_search_path"]))
    return "\n".join(lines)


__all__ = ["doctor_report", "evaluate_sets", "format_doctor", "format_results", "generate_set", "reader_columns"]
