"""``ctcasr plot-training EXP_DIR``: a PNG of the loss and CER/WER curves in an experiment
directory's ``train_log.csv`` (the log ``ctcasr train`` always writes).

matplotlib is an optional extra (``pip install 'ctcasr[plot]'``): training must never need
a plotting stack, and a missing one is a one-line error, not a traceback.
"""

from __future__ import annotations

import csv
from pathlib import Path

from .errors import CTCASRError


def read_train_log(exp_dir) -> list[dict]:
    """Rows of ``EXP_DIR/train_log.csv`` with numeric fields as floats (an epoch whose
    validation was not run has empty fields: NaN)."""
    path = Path(exp_dir) / "train_log.csv"
    if not path.is_file():
        raise CTCASRError(f"{path}: no training log (is {exp_dir} a `ctcasr train --out` directory?)")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise CTCASRError(f"{path}: cannot read ({e})") from None
    need = {"epoch", "train_loss", "valid_loss", "valid_cer"}
    if rows and not need <= set(rows[0]):
        raise CTCASRError(f"{path}: not a ctcasr training log (columns {', '.join(sorted(rows[0]))})")
    out = []
    for i, r in enumerate(rows, start=2):
        try:
            out.append({k: float(v) if v not in ("", None) else float("nan") for k, v in r.items() if k})
        except ValueError as e:
            raise CTCASRError(f"{path}:{i}: {e}") from None
    if not out:
        raise CTCASRError(f"{path}: no epochs logged yet")
    return out


def plot_training(exp_dir, out=None) -> Path:
    """Write the PNG (default ``EXP_DIR/training.png``) and return its path."""
    rows = read_train_log(exp_dir)
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display needed on servers
        import matplotlib.pyplot as plt
    except ImportError:
        raise CTCASRError("plot-training needs matplotlib: pip install 'ctcasr[plot]' (or matplotlib)") from None
    out = Path(out) if out else Path(exp_dir) / "training.png"
    ep = [r["epoch"] for r in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(ep, [r["train_loss"] for r in rows], "o-", label="train")
    a1.plot(ep, [r["valid_loss"] for r in rows], "s-", label="valid")
    a1.set_xlabel("epoch")
    a1.set_ylabel("CTC loss per utterance")
    a1.set_yscale("log")
    a1.legend()
    a2.plot(ep, [100 * r["valid_cer"] for r in rows], "o-", label="valid CER")
    if "valid_wer" in rows[0]:
        a2.plot(ep, [100 * r["valid_wer"] for r in rows], "s-", label="valid WER")
    a2.set_xlabel("epoch")
    a2.set_ylabel("%")
    a2.set_yscale("log")
    a2.legend()
    best = min(rows, key=lambda r: r["valid_cer"])
    fig.suptitle(f"{Path(exp_dir).resolve().name}: best valid CER {100 * best['valid_cer']:.2f}% "
                 f"at epoch {int(best['epoch'])}")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    try:
        fig.savefig(tmp, dpi=100)
        tmp.replace(out)
    except OSError as e:
        raise CTCASRError(f"{out}: cannot write ({e.strerror or e})") from None
    finally:
        plt.close(fig)
        if tmp.exists():
            tmp.unlink()
    return out
