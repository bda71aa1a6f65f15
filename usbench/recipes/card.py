"""The model card every fine-tuned folder carries: what it was trained on, how, and how well.

Two files: ``usbench-model-card.json`` (read by the generators: labels, base, kind) and a
``README.md`` for people.
"""

from __future__ import annotations

import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from usbench.generators.checkpoints import write_card
from usbench.imageset import atomic_write_text
from usbench.versions import versions


def package_versions() -> dict[str, str]:
    return {**versions(("torch", "diffusers", "transformers", "accelerate", "peft", "safetensors")), "platform": platform.platform()}


def write_model_card(folder: Path, card: dict[str, Any]) -> None:
    """Write the JSON card and its human-readable README.md (both atomically)."""
    card = {**card, "written": datetime.now(timezone.utc).isoformat(timespec="seconds"), "versions": package_versions()}
    atomic_write_text(Path(folder) / "README.md", render_markdown(card))
    write_card(Path(folder), card)  # last: the JSON card marks the folder complete


def render_markdown(card: dict[str, Any]) -> str:
    hp = card.get("hyperparameters", {})
    data = card.get("data", {})
    split = card.get("split") or {}
    lines = [
        f"# {card.get('kind', 'model')} — fine-tuned with usbench",
        "",
        f"- Base model: `{card.get('base', '')}`" + (f" (initialised from `{card['init_from']}`)" if card.get("init_from") else ""),
        f"- Kind: {'LoRA adapter (rank ' + str(card['lora_rank']) + ')' if card.get('lora_rank') else 'full weights'}",
        "- Labels and prompts: " + "; ".join(f"{l}: \"{p}\"" for l, p in zip(card.get("labels", []), card.get("prompts", []))),
        f"- Data: `{data.get('path', '')}` ({data.get('n_train', '?')} training images, content sha256 `{data.get('content_hash', '')}`)",
        f"- Split: {split.get('scheme', 'none')} (seed {split.get('seed', '-')}, {split.get('n_test', 0)} held out)",
        f"- Steps: {card.get('steps', '?')}, final training loss {card.get('final_loss', float('nan')):.4f}",
        f"- Resolution {hp.get('resolution')} px, learning rate {hp.get('lr')}, batch {hp.get('batch_size')} per process "
        f"× {card.get('num_processes', 1)} process(es), mixed precision {hp.get('mixed_precision')}, EMA {hp.get('ema')}",
        "",
        "## Use",
        "",
        "```",
        f"usbench run --generator {card.get('kind', 'sd-busi')}   # if this folder is the default location",
        "```",
        "",
        "or in a run config: `[generator.%s] model = \"%s\"`." % (card.get("kind", "sd-busi"), Path(card.get("out", ".")).resolve().as_posix()),
        "",
        "## Versions",
        "",
        *[f"- {k}: {v}" for k, v in card.get("versions", {}).items()],
        "",
    ]
    return "\n".join(lines)
