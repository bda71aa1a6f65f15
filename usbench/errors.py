"""Errors a user can cause, each with a one-line message that says what is wrong and how to fix it.

The CLI catches :class:`UsbenchError`, prints ``error: <message>`` on one line and exits with
code 2. Anything else is a bug in usbench and keeps its traceback.
"""

from __future__ import annotations


class UsbenchError(Exception):
    """Base class of every error a user can cause and fix. ``str(err)`` is the one-line message."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        message = " ".join(str(message).split())  # one line, always
        if hint:
            message = f"{message} ({' '.join(hint.split())})"
        super().__init__(message)


class InputError(UsbenchError):
    """A path, image, mask or folder that cannot be used as given."""


class ConfigError(UsbenchError):
    """A configuration file, flag or parameter with an unknown key, wrong type or impossible value."""


class UnknownNameError(UsbenchError):
    """A generator, metric, extractor, dataset layout or preset name that is not registered."""


class NotEnoughImagesError(UsbenchError):
    """Fewer images than a metric, split or study needs."""


class WeightsError(UsbenchError):
    """Model weights that are missing, incomplete, of the wrong kind, or whose sha256 does not match."""


class OutputError(UsbenchError):
    """An output location that cannot be written, or would overwrite something the user made."""
