"""The report is redrawn only when what it shows changes (a content key of its inputs)."""

from pathlib import Path

from _spine_fixtures import make_busi
from usbench.config import RunConfig
from usbench.report import KEY_MARK
from usbench.runs import run_benchmark


def _config(tmp_path, ref, **kw):
    return RunConfig(out=str(tmp_path / "out"), reference=str(ref), generators=["toy-noise"], metrics=["toy-mean-gap"],
                     n=12, image_size=32, n_bootstrap=20, **kw)


def _key(report: Path) -> str:
    text = report.read_text()
    return text.split(KEY_MARK, 1)[1].split(" ", 1)[0]


def test_report_is_redrawn_only_when_its_inputs_change(plugin, tmp_path):
    ref = make_busi(tmp_path / "b", duplicate=False)
    out = Path(run_benchmark(_config(tmp_path, ref)).out)
    report, grid = out / "report.html", out / "figures" / "samples_reference.png"
    first = (_key(report), report.stat().st_mtime_ns, grid.stat().st_mtime_ns)

    run_benchmark(_config(tmp_path, ref))  # same inputs: neither the page nor a figure is rewritten
    assert (_key(report), report.stat().st_mtime_ns, grid.stat().st_mtime_ns) == first

    grid.unlink()  # a figure the page shows is gone: redrawn
    run_benchmark(_config(tmp_path, ref))
    assert grid.is_file() and _key(report) == first[0]

    other = run_benchmark(_config(tmp_path, ref, seed=1))  # another run joins the leaderboard: a new page
    assert _key(report) != first[0] and other.runs[0].run_id in report.read_text()
