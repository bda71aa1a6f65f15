"""Finding model weights offline-first, and checking them by sha256.

Every path that needs weights goes through :func:`resolve_weights` with a :class:`WeightsSpec`.
The search order is: the explicit path (a flag such as ``--inception-weights``), the environment
variable of the spec, the standard caches (``$TORCH_HOME/hub/checkpoints``, the Hugging Face
cache, ``~/.cache/usbench/weights``), then a download when the machine is online and downloads
are allowed (never in tests: ``USBENCH_OFFLINE=1`` or ``HF_HUB_OFFLINE=1`` forbid it). A file
that is found is checked by sha256; a mismatch is an error, never a silent fallback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from usbench.errors import WeightsError
from usbench.imageset import sha256_file


@dataclass(frozen=True)
class WeightsSpec:
    name: str  # human name, e.g. "Inception v3 (torch-fidelity, TF 2015-12-05)"
    filename: str  # file name in the caches
    sha256: str | None  # None: cannot be pinned (user-provided), checked only for existence
    url: str | None = None
    flag: str = ""  # CLI flag that takes an explicit path, e.g. "--inception-weights"
    env: str = ""  # environment variable that takes an explicit path


def cache_dirs() -> list[Path]:
    """Where weights are looked for, in order (after the explicit path and env variable)."""
    torch_home = Path(os.environ.get("TORCH_HOME", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "torch"))
    dirs = [torch_home / "hub" / "checkpoints", torch_home / "hub"]
    hf_home = Path(os.environ.get("HF_HOME", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "huggingface"))
    dirs.append(hf_home / "hub")
    dirs.append(usbench_cache() / "weights")
    return dirs


def usbench_cache() -> Path:
    """usbench's own cache (built-in reference set, downloaded weights): ``$USBENCH_CACHE`` or ~/.cache/usbench."""
    return Path(os.environ.get("USBENCH_CACHE", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "usbench"))


def offline() -> bool:
    return any(os.environ.get(v, "") not in ("", "0") for v in ("USBENCH_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def check_sha256(path: Path, spec: WeightsSpec) -> str:
    """Return the file's sha256; raise when the spec pins another one."""
    digest = sha256_file(path)
    if spec.sha256 and digest != spec.sha256:
        raise WeightsError(
            f"{path} has sha256 {digest[:16]}… but {spec.name} must have {spec.sha256}",
            f"the file is corrupt or the wrong one; delete it and put {spec.filename} with the right hash there",
        )
    return digest


def missing_message(spec: WeightsSpec) -> WeightsError:
    where = cache_dirs()[0]
    how = f"pass its path with {spec.flag}" if spec.flag else "pass its path"
    if spec.env:
        how += f" or set {spec.env}"
    pin = f" (sha256 {spec.sha256})" if spec.sha256 else ""
    prefix = _torchvision_hash_prefix(spec.filename)
    if not spec.sha256 and prefix:
        pin = f" (sha256 beginning {prefix}, as torchvision names its files)"
    src = f" from {spec.url}" if spec.url else ""
    return WeightsError(
        f"{spec.name} weights not found: {spec.filename}{pin}",
        f"download it{src} and put it in {where}/, or {how}",
    )


def resolve_weights(spec: WeightsSpec, explicit: str | Path | None = None, download: bool = True) -> tuple[Path, str]:
    """Find the weights file of ``spec``; return (path, sha256). Raises :class:`WeightsError`."""
    candidates: list[Path] = []
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise WeightsError(f"weights file {p} does not exist", f"check the path given to {spec.flag or 'the option'}")
        return p, check_sha256(p, spec)
    if spec.env and os.environ.get(spec.env):
        candidates.append(Path(os.environ[spec.env]).expanduser())
    for d in cache_dirs():
        candidates.append(d / spec.filename)
    for c in candidates:
        if c.is_file():
            return c, check_sha256(c, spec)
    if download and spec.url and not offline():
        target = cache_dirs()[0] / spec.filename
        try:
            import torch.hub

            target.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(spec.url, str(target), hash_prefix=None, progress=True)
        except Exception:  # offline or refused: fall through to the actionable message
            if target.exists():
                target.unlink()
        else:
            return target, check_sha256(target, spec)
    raise missing_message(spec)


def _torchvision_hash_prefix(filename: str) -> str | None:
    """torchvision names a weights file ``<name>-<first 8 hex of its sha256>.pth``."""
    import re

    m = re.search(r"-([0-9a-f]{8})\.pth$", filename)
    return m.group(1) if m else None


SD15_REPOS = ("stable-diffusion-v1-5/stable-diffusion-v1-5", "runwayml/stable-diffusion-v1-5")


def other_weights_status() -> list[dict]:
    """Weights that are not a single WeightsSpec file: LPIPS' linear layers (shipped inside the lpips
    package) and Stable Diffusion 1.5 (a diffusers folder in the Hugging Face cache), for ``doctor``."""
    import importlib.util

    out = []
    spec = importlib.util.find_spec("lpips")
    alex = Path(spec.origin).parent / "weights" / "v0.1" / "alex.pth" if spec and spec.origin else None
    if alex is not None and alex.is_file():
        out.append({"name": "LPIPS linear layers (lpips v0.1, AlexNet)", "file": "alex.pth", "found": str(alex),
                    "sha256": sha256_file(alex)})
    else:
        out.append({"name": "LPIPS linear layers (lpips v0.1, AlexNet)", "file": "alex.pth", "found": None,
                    "how": "shipped inside the lpips package: pip install lpips"})
    hf_home = Path(os.environ.get("HF_HOME", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "huggingface"))
    found = next((hf_home / "hub" / f"models--{r.replace('/', '--')}" for r in SD15_REPOS
                  if (hf_home / "hub" / f"models--{r.replace('/', '--')}").is_dir()), None)
    out.append({"name": "Stable Diffusion 1.5 (base of usbench finetune)", "file": SD15_REPOS[0],
                "found": str(found) if found else None,
                "how": None if found else f"on a machine online: huggingface-cli download {SD15_REPOS[0]} "
                       f"(into {hf_home / 'hub'}), or pass a diffusers folder to usbench finetune --base"})
    return out
