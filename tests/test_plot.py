"""`ctcasr plot-training`: a PNG from train_log.csv; clear errors for what is not a log."""

import builtins
import subprocess
import sys

import pytest

LOG = """epoch,step,train_loss,valid_loss,valid_cer,valid_wer,lr,epoch_seconds,train_audio_hours,skipped_batches
1,82,73.0,50.7,1.0,1.0,5.5e-04,52.7,2.0,0
2,164,43.9,29.4,0.59,0.95,1.1e-03,48.4,2.0,0
3,246,23.8,9.35,0.12,0.33,1.5e-03,52.0,2.0,0
"""


def run(*args):
    return subprocess.run([sys.executable, "-m", "ctcasr", *args], capture_output=True, text=True)


def test_plot_training_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    (tmp_path / "train_log.csv").write_text(LOG)
    r = run("plot-training", str(tmp_path))
    assert r.returncode == 0, r.stderr
    png = tmp_path / "training.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    r = run("plot-training", str(tmp_path), "-o", str(tmp_path / "sub" / "x.png"))
    assert r.returncode == 0 and (tmp_path / "sub" / "x.png").is_file()


@pytest.mark.parametrize("content, match", [(None, "no training log"), ("a,b\n1,2\n", "not a ctcasr training log"),
                                            (LOG.splitlines()[0] + "\n", "no epochs"),
                                            (LOG + "4,x,1,1,1,1,1,1,1,0\n", "train_log.csv:5")])
def test_plot_training_errors_are_one_line(tmp_path, content, match):
    if content is not None:
        (tmp_path / "train_log.csv").write_text(content)
    r = run("plot-training", str(tmp_path))
    assert r.returncode != 0 and match in r.stderr and "Traceback" not in r.stderr


def test_missing_matplotlib_is_a_clear_error(tmp_path, monkeypatch):
    from ctcasr.errors import CTCASRError
    from ctcasr.plot import plot_training

    (tmp_path / "train_log.csv").write_text(LOG)
    real_import = builtins.__import__

    def no_mpl(name, *a, **kw):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(name)
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_mpl)
    with pytest.raises(CTCASRError, match=r"pip install 'ctcasr\[plot\]'"):
        plot_training(tmp_path)
