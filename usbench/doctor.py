"""``usbench doctor``: what this installation has (versions, device, backends) and where each
weights file is found, or what to do when it is missing."""

from __future__ import annotations

from typing import Any


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
    from usbench.weights import other_weights_status, usbench_cache

    out.extend(other_weights_status())  # lpips' alex.pth, SD 1.5
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
        sha = f" (sha256 {w['sha256']})" if w.get("found") and w.get("sha256") else ""
        lines.append(f"  {'found  ' if w['found'] else 'missing'} {w['name']}: {w['found'] or w.get('how')}{sha}")
    lines.append("search path: " + ", ".join(r["weights_search_path"]))
    return "\n".join(lines)


__all__ = ["doctor_report", "format_doctor"]
