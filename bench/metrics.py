"""Speed of the metrics suite against torch-fidelity and scipy, side by side in one run.

    PYTHONPATH=. python bench/metrics.py            # full (several minutes on 2 cores)
    PYTHONPATH=. python bench/metrics.py --quick    # smaller sizes, for a smoke run

Prints a markdown report (paste into bench/RESULTS.md, section ## Metrics) and writes
bench/metrics_results.json. Inception timings use a random weights file built like the tests do
(the real file cannot be downloaded here); the network and the amount of work are the same.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))


def timed(fn, *a, repeat: int = 1, **k):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn(*a, **k)
        best = min(best, time.perf_counter() - t)
    return best, out


def inception_like(rng, n, d=2048, rank=300, shift=0.0):
    """Non-negative, correlated, partly low-rank features (like pooled ReLU activations)."""
    basis = np.random.default_rng(123).normal(size=(rank, d)) / np.sqrt(rank)
    X = np.abs(rng.normal(size=(n, rank)) @ basis + 0.3 * rng.normal(size=(n, d)) + shift)
    return X


def torch_fidelity_fid(X1, X2):
    import torch
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    s1, s2 = fid_features_to_statistics(torch.from_numpy(X1)), fid_features_to_statistics(torch.from_numpy(X2))
    return fid_statistics_to_metric(s1, s2, verbose=False)["frechet_inception_distance"]


def scipy_sqrtm_fid(X1, X2):
    from scipy import linalg

    m1, m2 = X1.mean(0), X2.mean(0)
    s1, s2 = np.cov(X1, rowvar=False), np.cov(X2, rowvar=False)
    covmean, _ = linalg.sqrtm(s1 @ s2, disp=False)
    return float((m1 - m2) @ (m1 - m2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real))


def bench_frechet(sizes):
    from usbench.metrics.frechet import frechet_distance_from_features

    rows = []
    for n in sizes:
        rng = np.random.default_rng(n)
        X1, X2 = inception_like(rng, n), inception_like(rng, n, shift=0.05)
        t_ours, ours = timed(frechet_distance_from_features, X1, X2, repeat=2)
        t_tf, tf = timed(torch_fidelity_fid, X1, X2)
        t_sp, sp = timed(scipy_sqrtm_fid, X1, X2)
        rows.append({"n": n, "d": 2048, "ours_s": t_ours, "torch_fidelity_s": t_tf, "scipy_sqrtm_s": t_sp,
                     "ours": ours, "torch_fidelity": tf, "scipy_sqrtm": sp,
                     "rel_diff_tf": abs(ours - tf) / abs(tf), "rel_diff_scipy": abs(ours - sp) / abs(sp),
                     "speedup_vs_tf": t_tf / t_ours})
        print(f"  frechet n={n}: ours {t_ours:.3f}s, torch-fidelity {t_tf:.2f}s, scipy {t_sp:.2f}s", flush=True)
    return rows


def bench_bootstrap(n=780, B=1000):
    from usbench.metrics.frechet import bootstrap_frechet, frechet_distance_from_features

    rng = np.random.default_rng(0)
    X1, X2 = inception_like(rng, n), inception_like(rng, n, shift=0.05)
    value = frechet_distance_from_features(X1, X2)
    t, (lo, hi, _) = timed(bootstrap_frechet, X1, X2, B=B, seed=0, estimate=value)
    print(f"  bootstrap B={B} n={n}: {t:.1f}s", flush=True)
    return {"n": n, "B": B, "seconds": t, "fid": value, "ci": [lo, hi]}


def bench_kid_prdc(n=780):
    from usbench.metrics.kid import kernel_grams, kid_bootstrap, kid_from_grams
    from usbench.metrics.prdc import prdc_subsampling

    rng = np.random.default_rng(1)
    X1, X2 = inception_like(rng, n), inception_like(rng, n, shift=0.05)

    def kid_all():
        g = kernel_grams(X1, X2)
        kid_from_grams(*g)
        return kid_bootstrap(*g, B=1000, seed=0)

    def prdc_all():
        return prdc_subsampling(X2, X1, 5, B=1000, seed=0)

    t_kid, _ = timed(kid_all)
    t_prdc, _ = timed(prdc_all)
    print(f"  kid+1000 bootstrap {t_kid:.1f}s, prdc+1000 bootstrap {t_prdc:.1f}s", flush=True)
    return {"n": n, "kid_with_bootstrap_s": t_kid, "prdc_with_bootstrap_s": t_prdc}


def bench_inception(n_images: int, size: int, tmp: Path):
    import torch
    from torch_fidelity.datasets import ImagesPathDataset
    from torch_fidelity.utils import create_feature_extractor, get_featuresdict_from_dataset

    from _metrics_fixtures import make_images, write_set
    from _metrics_inception_weights import make_random_inception_weights
    from usbench.metrics.features import FeatureStore

    weights = make_random_inception_weights(tmp / "random-inception.pth")
    imageset = write_set(tmp / "imgs", make_images(n_images, seed=0, size=size))
    files = [str(r.file) for r in imageset.records]

    def ours():
        store = FeatureStore(None, image_size=size, options={"inception": {"weights": str(weights)}})
        return store(imageset, "inception")

    def theirs():
        fe = create_feature_extractor("inception-v3-compat", ["2048"], cuda=False, feature_extractor_weights_path=str(weights),
                                      verbose=False)
        out = get_featuresdict_from_dataset(ImagesPathDataset(files), fe, 64, False, True, False)
        return out["2048"].double().numpy()

    theirs()  # warm up (imports, first allocation)
    t_theirs = t_ours = float("inf")
    for _ in range(3):  # alternate, keep the best of each: the machine is shared
        t, f_theirs = timed(theirs)
        t_theirs = min(t_theirs, t)
        t, f_ours = timed(ours)
        t_ours = min(t_ours, t)
    cache = tmp / "cache"
    FeatureStore(cache, image_size=size, options={"inception": {"weights": str(weights)}})(imageset, "inception")

    def hit():
        store = FeatureStore(cache, image_size=size, options={"inception": {"weights": str(weights)}})
        out = store(imageset, "inception")
        assert store.hits == 1
        return out

    t_hit, _ = timed(hit, repeat=3)
    print(f"  inception {n_images} imgs: ours {t_ours:.1f}s, torch-fidelity {t_theirs:.1f}s, cache hit {t_hit:.3f}s", flush=True)
    return {"n_images": n_images, "size": size, "ours_s": t_ours, "torch_fidelity_s": t_theirs,
            "ratio": t_ours / t_theirs, "cache_hit_s": t_hit, "cache_speedup": t_ours / t_hit,
            "max_abs_feature_diff": float(np.abs(f_ours - f_theirs).max()), "threads": torch.get_num_threads()}


def bench_radiomics(n_images: int, tmp: Path):
    from _metrics_fixtures import make_images, write_set
    from usbench.metrics.features import FeatureStore

    imageset = write_set(tmp / "rad", make_images(n_images, seed=3, size=256))
    t, X = timed(lambda: FeatureStore(None, image_size=256)(imageset, "radiomics"))
    print(f"  radiomics {n_images} imgs 256px: {t:.1f}s", flush=True)
    return {"n_images": n_images, "size": 256, "seconds": t, "features": X.shape[1], "workers": os.cpu_count()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(HERE / "metrics_results.json"))
    args = ap.parse_args()
    sizes = [500, 1000] if args.quick else [500, 1000, 2000, 10000]
    res: dict = {"cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        res["frechet"] = bench_frechet(sizes)
        res["bootstrap"] = bench_bootstrap(B=100 if args.quick else 1000)
        res["kid_prdc"] = bench_kid_prdc()
        res["inception"] = bench_inception(32 if args.quick else 128, 256, tmp)
        res["radiomics"] = bench_radiomics(200 if args.quick else 1400, tmp)
    Path(args.out).write_text(json.dumps(res, indent=1))
    print(report(res))


def report(r: dict) -> str:
    lines = [f"Machine: {r['cpus']} CPU cores, no GPU. Command: `PYTHONPATH=. python bench/metrics.py`.", "",
             "Fréchet distance from features (d = 2048, seconds; all three from the same feature matrices):", "",
             "| N | ours | torch-fidelity | scipy sqrtm | speed-up vs torch-fidelity | rel. diff vs torch-fidelity | rel. diff vs scipy |",
             "|---|---|---|---|---|---|---|"]
    for f in r["frechet"]:
        lines.append(f"| {f['n']} | {f['ours_s']:.3f} | {f['torch_fidelity_s']:.2f} | {f['scipy_sqrtm_s']:.2f} | "
                     f"{f['speedup_vs_tf']:.0f}× | {f['rel_diff_tf']:.1e} | {f['rel_diff_scipy']:.1e} |")
    b = r["bootstrap"]
    lines += ["", f"Bootstrap FID interval, B = {b['B']}, N = {b['n']} per set, d = 2048: **{b['seconds']:.1f} s** "
                  f"(Gram route; FID {b['fid']:.3f}, 95% CI [{b['ci'][0]:.3f}, {b['ci'][1]:.3f}]).",
              f"KID (100 subsets) + 1000-resample interval at N = {r['kid_prdc']['n']}: {r['kid_prdc']['kid_with_bootstrap_s']:.1f} s; "
              f"PRDC + 1000-resample intervals: {r['kid_prdc']['prdc_with_bootstrap_s']:.1f} s."]
    i = r["inception"]
    lines += ["", f"Inception pool3 extraction, {i['n_images']} PNG images of {i['size']} px (read + resize to 299 + network), "
                  f"{i['threads']} threads: ours {i['ours_s']:.1f} s, torch-fidelity {i['torch_fidelity_s']:.1f} s "
                  f"(ratio **{i['ratio']:.2f}**; max |feature difference| {i['max_abs_feature_diff']:.1e}). "
                  f"Feature cache hit: {i['cache_hit_s']*1000:.0f} ms (**{i['cache_speedup']:.0f}×** faster than extracting)."]
    ra = r["radiomics"]
    lines += ["", f"Radiomic features ({ra['features']} per image), {ra['n_images']} images of 256 px, {ra['workers']} processes: "
                  f"{ra['seconds']:.1f} s."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
