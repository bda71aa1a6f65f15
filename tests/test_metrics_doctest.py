"""The docstring examples of the core metric functions run and hold."""

import doctest
import importlib

import pytest


@pytest.mark.parametrize("module", ["frechet", "kid", "prdc", "bootstrap", "radiomics", "distribution"])
def test_docstring_examples(module):
    mod = importlib.import_module(f"usbench.metrics.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
