"""Generation on several processes (GPUs) under ``accelerate launch``, merged into one ImageSet.

Each process takes whole batches ``rank, rank + world, ...`` of the request list (so every batch
is the same as in a single-process run), writes them to its own shard folder with
:func:`~usbench.generators.driver.generate_to_imageset` (resumable), and the main process merges
the shards, in request order, into ``out``. Seeds belong to requests, not processes: the merged
set is pixel-identical to a single-process run.

Library use (the ``usbench generate``/``usbench run`` commands call this)::

    generate_sharded(generator, requests, out, batch_size=8)

Stand-alone, for scripts and tests::

    accelerate launch --multi_gpu --num_processes 2 -m usbench.generators.sharding \\
        --generator sd-busi --config '{"model": "sd-busi-ft", "steps": 50}' \\
        --labels benign=100,malignant=100,normal=100 --size 256 --seed 0 --out gen/
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Sequence

from usbench.errors import ConfigError, UsbenchError
from usbench.generators.base import GenerationRequest, Generator
from usbench.generators.driver import generate_to_imageset
from usbench.imageset import ImageSet, ImageSetWriter, read_gray, read_mask

SHARDS = ".shards"


def shard_requests(requests: Sequence[GenerationRequest], batch_size: int, rank: int, world: int) -> list[GenerationRequest]:
    """The requests of process ``rank``: whole batches, dealt round-robin."""
    out: list[GenerationRequest] = []
    for b, start in enumerate(range(0, len(requests), batch_size)):
        if b % world == rank:
            out.extend(requests[start:start + batch_size])
    return out


def launched() -> bool:
    """True when started by ``accelerate launch``/``torchrun`` with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def partial_state():
    """accelerate's process state. On a machine without CUDA, several processes must be told to
    use CPU (gloo); accelerate's own ``--cpu`` flag would start only one process."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=launched() and not torch.cuda.is_available())


def process_info() -> tuple[int, int]:
    """(rank, world size) of this process (0, 1 when not launched)."""
    if not launched():
        return 0, 1
    state = partial_state()
    return state.process_index, state.num_processes


def _barrier() -> None:
    partial_state().wait_for_everyone()


def generate_sharded(generator: Generator, requests: Sequence[GenerationRequest], out: str | Path,
                     batch_size: int = 8, source: str | None = None, progress: bool = False) -> ImageSet | None:
    """Generate ``requests`` into ``out`` on every process of the launch; the main process returns
    the merged ImageSet, the others None. With one process this is ``generate_to_imageset``."""
    out = Path(out)
    rank, world = process_info()
    if world == 1:
        return generate_to_imageset(generator, requests, out, source=source, batch_size=batch_size, progress=progress)
    shard_dir = out / SHARDS / f"shard-{rank:03d}-of-{world:03d}"
    mine = shard_requests(requests, batch_size, rank, world)
    if mine:
        generate_to_imageset(generator, mine, shard_dir, source=source, batch_size=batch_size, progress=progress and rank == 0)
    _barrier()
    merged = merge_shards(out, requests, world, source=source or generator.name) if rank == 0 else None
    _barrier()
    return merged


def merge_shards(out: Path, requests: Sequence[GenerationRequest], world: int, source: str) -> ImageSet:
    """Merge the shard folders into ``out`` in request order, then delete them."""
    shards = [out / SHARDS / f"shard-{r:03d}-of-{world:03d}" for r in range(world)]
    records = {}
    for shard in shards:
        if (shard / "manifest.csv").is_file():
            for rec in ImageSet.read(shard).records:
                records[rec.id] = rec
    missing = [r.id for r in requests if r.id not in records]
    if missing:
        raise UsbenchError(f"{len(missing)} image(s) missing from the shards, e.g. {missing[0]}",
                           "a process failed; run the same command again to finish (done images are kept)")
    writer = ImageSetWriter(out, source=source)
    for req in requests:
        rec = records[req.id]
        image = read_gray(rec.file)
        mask = read_mask(rec.mask_file) if rec.mask_file else None
        writer.add(rec.id, image, label=rec.label, mask=mask, prompt=rec.prompt, seed=rec.seed, source=rec.source)
    merged = writer.close(order=[r.id for r in requests])
    shutil.rmtree(out / SHARDS, ignore_errors=True)
    return merged


def label_requests(counts: dict[str, int], size: int = 256, seed: int = 0) -> list[GenerationRequest]:
    """``counts`` images per label, ids ``<label>-00000``…, seeds ``seed, seed+1, ...`` over the whole list."""
    out, k = [], 0
    for label, n in counts.items():
        for i in range(n):
            out.append(GenerationRequest(id=f"{label}-{i:05d}", label=label, seed=seed + k, size=size))
            k += 1
    return out


def parse_counts(text: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for part in filter(None, text.split(",")):
        label, _, n = part.partition("=")
        if not n.strip().isdigit():
            raise ConfigError(f"--labels {text!r}: expected label=count pairs", "e.g. --labels benign=10,malignant=10,normal=10")
        counts[label.strip()] = int(n)
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m usbench.generators.sharding", description=__doc__.split("\n\n")[0])
    ap.add_argument("--generator", required=True)
    ap.add_argument("--config", default="{}", help="the generator's config as JSON")
    ap.add_argument("--labels", default="benign=1,malignant=1,normal=1", help="label=count,...")
    ap.add_argument("--masks-from", default="", help="mask-conditioned: one request per image of this data set's masks")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    try:
        from usbench.generators import build_generator

        try:
            config = json.loads(args.config)
        except ValueError:
            raise ConfigError(f"--config is not valid JSON: {args.config!r}", "e.g. --config '{\"steps\": 20}'") from None
        gen = build_generator(args.generator, config)
        if args.masks_from:
            from usbench.datasets import load
            from usbench.generators.diffusion import mask_requests

            requests = mask_requests(load(args.masks_from), size=args.size, seed=args.seed)
        else:
            requests = label_requests(parse_counts(args.labels), size=args.size, seed=args.seed)
        result = generate_sharded(gen, requests, Path(args.out), batch_size=args.batch_size, progress=sys.stderr.isatty())
    except UsbenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    if result is not None:
        print(f"{len(result)} images in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["generate_sharded", "label_requests", "merge_shards", "parse_counts", "shard_requests"]
