"""Generator backends behind one protocol (see :mod:`usbench.generators.base`)."""

from usbench.generators.base import GenerationRequest, Generator
from usbench.registry import Registry

GENERATORS: Registry = Registry("generator", "usbench.generators")
# Built-ins, imported lazily. Each module owns its backend(s).
GENERATORS.add_builtin("folder", "usbench.generators.folder:FolderGenerator")
GENERATORS.add_builtin("phantom", "usbench.generators.phantom:PhantomGenerator")
GENERATORS.add_builtin("phantom-blurred", "usbench.generators.phantom:BlurredPhantomGenerator")
GENERATORS.add_builtin("phantom-sparse", "usbench.generators.phantom:SparsePhantomGenerator")
GENERATORS.add_builtin("phantom-flat", "usbench.generators.phantom:FlatPhantomGenerator")
GENERATORS.add_builtin("sd-busi", "usbench.generators.diffusion:StableDiffusionGenerator")
GENERATORS.add_builtin("controlnet-busi", "usbench.generators.diffusion:ControlNetGenerator")


def build_generator(name: str, config: dict | None = None) -> Generator:
    """Look up ``name`` and build it from ``config`` (a plain dict, e.g. a TOML table)."""
    return GENERATORS.get(name).from_config(dict(config or {}))


__all__ = ["GENERATORS", "GenerationRequest", "Generator", "build_generator"]
