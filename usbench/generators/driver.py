"""Running a generator over a list of requests into an ImageSet folder, resumably.

:func:`generate_to_imageset` skips requests whose image already exists (a killed run resumes
where it stopped) and writes the manifest last, so a folder with a manifest is complete.
"""

from __future__ import annotations

import math

from pathlib import Path
from typing import Sequence

from usbench.common import ProgressBar
from usbench.generators.base import GenerationRequest, Generator
from usbench.imageset import ImageSet, ImageSetWriter


def generate_to_imageset(generator: Generator, requests: Sequence[GenerationRequest], out: Path,
                         source: str | None = None, batch_size: int = 8, progress: bool = False) -> ImageSet:
    """Generate every request not yet in ``out`` and return the complete ImageSet.

    Conditioning masks are saved as the records' ``mask_file`` so mask adherence can compare the
    generated image with the mask it was asked for.
    """
    writer = ImageSetWriter(out, source=source or generator.name)
    done = writer.done_ids()
    todo = []
    for req in requests:
        if req.id in done:  # generated before the run was interrupted: same seed, same image
            writer.adopt(req.id, label=req.label, has_mask=req.mask is not None, prompt=req.prompt, seed=req.seed)
        else:
            todo.append(req)
    bar = ProgressBar(len(requests), f"generating {generator.name}", progress, completed=len(requests) - len(todo))
    try:
        step = max(batch_size, int(getattr(generator, "min_batch_size", 1)))
        if step > batch_size and todo:  # equal calls (300 → 150 + 150, not 256 + a small serial tail)
            calls = math.ceil(len(todo) / step)
            step = math.ceil(len(todo) / calls)
        for start in range(0, len(todo), step):
            batch = todo[start:start + step]
            for req, image in zip(batch, generator.generate(batch)):
                writer.add(req.id, image, label=req.label, mask=req.mask, prompt=req.prompt, seed=req.seed)
                bar.advance()
    finally:
        bar.close()
    return writer.close(order=[r.id for r in requests])
