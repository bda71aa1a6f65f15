"""Generation on several processes (GPUs) under ``accelerate launch``, merged into one ImageSet.

Each process takes whole batches ``rank, rank + world, ...`` of the request list (so every batch
is the same as in a single-process run), writes them to its own shard folder with
:func:`~usbench.generators.driver.generate_to_imageset` (resumable), and the main process merges
the shards, in request order, into ``out``. Seeds belong to requests, not processes: the merged
set is pixel-identical to a single-process run.

Library use (the ``usbench generate``/``usbench run`` commands call this)::

    generate_sharded(generator, requests, out, batch_size=8)

From the command line::

    accelerate launch --multi_gpu --num_processes 2 -m usbench generate -g sd-busi --n 780 --out gen/
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Sequence

from usbench.errors import UsbenchError
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


__all__ = ["generate_sharded", "merge_shards", "shard_requests"]
