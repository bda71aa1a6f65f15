"""docs/api.md is true: its notebook session (generate, evaluate, intervals, to_frame, plot, JSON,
FID of two folders, a benchmark) runs as a doctest in an empty folder."""

import doctest
from pathlib import Path

from _metrics_inception_weights import make_random_inception_weights

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def test_api_md_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    weights = make_random_inception_weights(tmp_path / "random-inception.pth")
    result = doctest.testfile(str(DOC), module_relative=False, globs={"inception_weights": str(weights)},
                              optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 20 and result.failed == 0
    assert (tmp_path / "frd.png").stat().st_size > 1000  # the plot was drawn
