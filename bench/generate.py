"""Benchmark of diffusion generation: speed, peak memory and the quality cost of each knob.

Runs the ``sd-busi`` generator (the real code path) on whatever device it finds, on the tiny
Stable Diffusion of :mod:`usbench.generators.tiny` (fine-tuned a few steps on a toy set so its
outputs are not pure noise), for:

- the authors' settings: PLMS (pndm) 50 steps, fp32;
- a fast preset: DPM-Solver++ 20 steps, half precision (fp16 on CUDA, bf16 on CPU), SDPA attention;
- each knob alone (sampler, steps, precision, attention), to see what it costs.

Quality cost = difference of each setting's images from the authors' setting's images for the same
seeds and prompts: mean absolute pixel difference (0–255) and PSNR (dB). Every setting runs in a
fresh process so that peak memory is its own (CUDA: max allocated; CPU: growth of the resident
set during generation over the loaded model, sampled every 5 ms). On a shared CPU, wall-clock
images/s depends on what else runs; CPU-seconds per image is steadier.

    PYTHONPATH=. python bench/generate.py --n 16 --batch-size 4 [--model DIR] [--device cuda]

``--model`` points to a real checkpoint (e.g. the fine-tuned SD 1.5) to measure at full size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

AUTHORS = {"scheduler": "pndm", "steps": 50, "dtype": "fp32", "attention": "sdpa"}


def settings(half: str) -> list[tuple[str, dict]]:
    return [
        ("authors: PLMS 50, fp32", AUTHORS),
        ("fast: DPM++ 20, " + half + ", SDPA", {"scheduler": "dpm++", "steps": 20, "dtype": half, "attention": "sdpa"}),
        ("knob: DDIM 50", {**AUTHORS, "scheduler": "ddim"}),
        ("knob: DPM++ 50", {**AUTHORS, "scheduler": "dpm++"}),
        ("knob: DPM++ 20", {**AUTHORS, "scheduler": "dpm++", "steps": 20}),
        ("knob: DPM++ 10", {**AUTHORS, "scheduler": "dpm++", "steps": 10}),
        ("knob: PLMS 20", {**AUTHORS, "steps": 20}),
        ("knob: " + half, {**AUTHORS, "dtype": half}),
        ("knob: plain attention (no SDPA)", {**AUTHORS, "attention": "default"}),
    ]


def run_one(model: str, config: dict, n: int, batch_size: int, device: str, out: Path, repeats: int = 3) -> dict:
    """Generate ``n`` images with one setting (in this process) and report speed and memory."""
    import resource

    import torch

    from usbench.generators import GenerationRequest, build_generator

    gen = build_generator("sd-busi", {"model": model, "batch_size": batch_size, "device": device, **config})
    labels = ("benign", "malignant", "normal")
    size = gen.resolution
    reqs = [GenerationRequest(id=f"i{k}", label=labels[k % 3], seed=k, size=size) for k in range(n)]
    list(gen.generate(reqs[:batch_size]))  # warm-up: weights to device, kernels chosen
    cuda = gen.device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    sampler = _RssSampler() if not cuda else None
    seconds = cpu = float("inf")
    for _ in range(repeats):  # best of: a shared machine only ever slows a run down
        t0, c0 = time.perf_counter(), time.process_time()
        images = np.stack(list(gen.generate(reqs)))
        if cuda:
            torch.cuda.synchronize()
        seconds, cpu = min(seconds, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else sampler.stop()
    np.save(out, images)
    return {"device": gen.device, "images_per_s": n / seconds, "seconds": seconds, "cpu_s_per_image": cpu / n,
            "peak_mib": peak, "resident_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "resolution": size}


class _RssSampler:
    """Peak growth of the resident set during generation (CPU), sampled every 5 ms from /proc."""

    def __init__(self):
        import threading

        self.base = self.peak = self._rss()
        self.running = True
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    @staticmethod
    def _rss() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    def _loop(self) -> None:
        while self.running:
            self.peak = max(self.peak, self._rss())
            time.sleep(0.005)

    def stop(self) -> float:
        self.running = False
        self.thread.join()
        return self.peak - self.base


def quality(ref: np.ndarray, imgs: np.ndarray) -> dict:
    diff = np.abs(ref.astype(np.float64) - imgs.astype(np.float64))
    mse = float((diff ** 2).mean())
    return {"mean_abs_diff": float(diff.mean()), "psnr_db": float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)}


def tiny_model(folder: Path, steps: int) -> str:
    """The tiny SD, fine-tuned ``steps`` steps on a toy textured set with the real recipe."""
    from usbench.generators.tiny import save_tiny_sd
    from usbench.imageset import ImageSetWriter
    from usbench.recipes import finetune_sd, recipe_config

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :64]
    with ImageSetWriter(folder / "data", source="toy") as w:
        for i in range(12):
            label = ("benign", "malignant", "normal")[i % 3]
            img = rng.gamma(2.0, 30, (64, 64))
            if label != "normal":
                cy, cx = rng.integers(16, 48, 2)
                img[(yy - cy) ** 2 + (xx - cx) ** 2 < 100] *= 0.3
            w.add(f"t{i}", np.clip(img, 0, 255).astype(np.uint8), label=label)
    save_tiny_sd(folder / "base")
    finetune_sd(recipe_config("sd-busi", data=str(folder / "data"), base=str(folder / "base"), out=str(folder / "ft"),
                              steps=steps, lr=1e-3, batch_size=4, progress=False, gradient_checkpointing=False, split="none"))
    return str(folder / "ft")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="", help="a checkpoint folder (default: the tiny SD, fine-tuned here)")
    ap.add_argument("--finetune-steps", type=int, default=100)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--repeats", type=int, default=3, help="time each setting this many times, keep the fastest")
    ap.add_argument("--one", default="", help=argparse.SUPPRESS)  # internal: run one setting (JSON) here
    ap.add_argument("--save", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args.model, json.loads(args.one), args.n, args.batch_size, args.device, Path(args.save), args.repeats)))
        return

    import torch

    work = Path(tempfile.mkdtemp(prefix="usbench-bench-"))
    model = args.model or tiny_model(work, args.finetune_steps)
    cuda = torch.cuda.is_available() and args.device in ("auto", "cuda")
    half = "fp16" if cuda else "bf16"
    rows, ref = [], None
    for name, config in settings(half):
        save = work / f"{len(rows)}.npy"
        cmd = [sys.executable, __file__, "--model", model, "--n", str(args.n), "--batch-size", str(args.batch_size),
               "--device", args.device, "--repeats", str(args.repeats), "--one", json.dumps(config), "--save", str(save)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        if proc.returncode != 0:
            rows.append({"setting": name, "error": proc.stderr.strip().splitlines()[-1][:200]})
            print(f"{name:36s} failed: {rows[-1]['error']}", flush=True)
            continue
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        imgs = np.load(save)
        if ref is None:
            ref = imgs
        res.update(quality(ref, imgs), setting=name)
        rows.append(res)
        print(f"{name:36s} {res['images_per_s']:8.2f} img/s  {res['cpu_s_per_image']:7.3f} CPU-s/img  peak +{res['peak_mib']:7.1f} MiB  "
              f"|Δ| {res['mean_abs_diff']:6.2f}  PSNR {res['psnr_db']:6.2f} dB", flush=True)
    env = {"torch": torch.__version__, "device": rows[0].get("device"), "cpu": platform.processor() or platform.machine(),
           "threads": torch.get_num_threads(), "n": args.n, "batch_size": args.batch_size, "repeats": args.repeats,
           "model": "tiny SD (32 px)" if not args.model else args.model}
    print(json.dumps({"environment": env, "results": rows}, indent=1))


if __name__ == "__main__":
    main()
