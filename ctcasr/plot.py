"""Pictures, as PNG files (matplotlib, imported only when a picture is asked for).

``ctcasr plot-training EXP_DIR``: the loss and CER/WER curves in an experiment
directory's ``train_log.csv`` (the log ``ctcasr train`` always writes).

``ctcasr plot AUDIO -o out.png``: the posteriorgram, the picture of CTC at work: the
log-mel spectrogram, and below it on the same time axis the per-frame posteriors of the
tokens and of the blank φ, with the greedy decoder's tokens at their spike frames.

matplotlib is an optional extra (``pip install 'ctcasr[plot]'``): training must never need
a plotting stack, and a missing one is a one-line error, not a traceback.
"""

from __future__ import annotations

import csv
import logging
import re
import unicodedata
import warnings
from pathlib import Path

from .errors import CTCASRError

log = logging.getLogger(__name__)

# Fonts with Han characters (matplotlib's DejaVu Sans has none), the common Debian ones
# first: fonts-noto-cjk, fonts-wqy-microhei, fonts-wqy-zenhei, fonts-arphic-*.
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Source Han Sans SC", "WenQuanYi Micro Hei",
             "WenQuanYi Zen Hei", "Droid Sans Fallback", "AR PL UMing CN", "AR PL UKai CN")
_CJK_FILE = re.compile(r"cjk|wqy|sourcehan|droidsansfallback|ukai|uming", re.IGNORECASE)


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
    plt = _pyplot("plot-training")
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
    return _save(fig, out)


def _pyplot(command: str):
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display needed on servers
        import matplotlib.pyplot as plt
    except ImportError:
        raise CTCASRError(f"{command} needs matplotlib: pip install 'ctcasr[plot]' (or matplotlib)") from None
    return plt


def _save(fig, out) -> Path:
    """Write ``fig`` to ``out`` via a temp file, so a failed write leaves no half PNG."""
    import matplotlib.pyplot as plt

    out = Path(out)
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


# ------------------------------------------------------------------------------ posteriorgram
def posteriorgram(model, tokenizer, waveform, sample_rate: int | None = None) -> dict:
    """What ``plot_posteriorgram`` draws, as arrays: ``mel_db [frames, n_mels]`` (power in dB,
    before the model's normalisation), ``log_probs [T, V]``, the greedy ``hypothesis``,
    ``hop_s`` (fbank frame shift) and ``frame_shift_s`` (output frame shift)."""
    import numpy as np
    import torch

    from .audio import prepare_waveform
    from .decoding import GreedyDecoder

    fe = model.frontend
    if torch.is_tensor(waveform):
        waveform = waveform.detach().cpu().numpy()
    x = prepare_waveform(waveform, sample_rate or fe.sample_rate, fe.sample_rate)
    dev = next(model.parameters()).device
    wav = torch.from_numpy(x)[None]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            lp, olen = model(wav.to(dev), torch.tensor([len(x)], device=dev))
            mel = fe.mel(torch.nn.functional.pad(wav, (0, max(0, fe.n_fft - len(x)))).to(dev))[0].float().cpu()
    finally:
        model.train(was_training)
    log_probs = lp[0, : int(olen[0])].float().cpu().numpy()
    mel_db = 10 * np.log10(mel.T.numpy() + 1e-10)
    hyp = GreedyDecoder(tokenizer.decoder_tokens, blank=tokenizer.blank_id,
                        word_delimiter=tokenizer.word_delimiter, input_type="log_probs")(log_probs)[0]
    return {"mel_db": mel_db, "log_probs": log_probs, "hypothesis": hyp, "hop_s": fe.hop / fe.sample_rate,
            "frame_shift_s": model.frame_shift_s, "duration_s": len(x) / fe.sample_rate}


def _show(token: str) -> str:
    return "␣" if token == " " else token


def _font_rc(labels) -> dict | None:
    """rcParams under which ``labels`` render: {} for Latin/Greek text; for text with wide
    (CJK) characters, DejaVu Sans (φ, ␣, digits) followed by an installed CJK font, which
    matplotlib falls back to glyph by glyph. None when no CJK font is installed (the
    characters come out as empty boxes): one warning here says what to install."""
    if not any(unicodedata.east_asian_width(ch) in "WF" for t in labels for ch in t):
        return {}
    from matplotlib import font_manager

    names = {f.name for f in font_manager.fontManager.ttflist}
    if not any(n in names for n in CJK_FONTS):
        # matplotlib's font cache predates the font package: add the font files themselves.
        for path in font_manager.findSystemFonts():
            if _CJK_FILE.search(Path(path).name):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    pass
        names = {f.name for f in font_manager.fontManager.ttflist}
    found = [n for n in CJK_FONTS if n in names]
    if not found:
        log.warning("no font with CJK characters installed: the tokens are drawn as boxes "
                    "(Debian/Ubuntu: apt-get install fonts-wqy-microhei or fonts-noto-cjk)")
        return None
    return {"font.family": ["DejaVu Sans", *found]}


def plot_posteriorgram(model, tokenizer, waveform, out, sample_rate: int | None = None,
                       title: str | None = None, words=None, max_rows: int = 40) -> Path:
    """Write the posteriorgram of ``waveform`` to the PNG ``out`` and return its path.

    Three panels on one time axis in seconds: the log-mel spectrogram; a heatmap of the
    posterior of every token per output frame (at most ``max_rows`` tokens: those that
    peak highest, so a large vocabulary stays readable); the blank's posterior with the
    greedy decoder's tokens marked at their spike frames. ``words`` (e.g. from
    ``ctcasr.align.align``) are drawn as spans over the spectrogram. Chinese (and other
    CJK) tokens are drawn with an installed CJK font (see ``_font_rc``).
    """
    plt = _pyplot("plot")
    rc = _font_rc(tokenizer.tokens)
    # Text objects take their font when created and tick labels when drawn: both happen
    # inside the context.
    fm_log = logging.getLogger("matplotlib.font_manager")
    fm_level = fm_log.level
    with plt.rc_context(rc or {}), warnings.catch_warnings():
        if rc is None:  # warned once above, not once per missing glyph
            warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning)
        if rc:  # CJK fonts seldom have a bold face; regular is fine, the warning is noise
            fm_log.setLevel(logging.ERROR)
        try:
            return _draw_posteriorgram(plt, model, tokenizer, waveform, out, sample_rate, title, words, max_rows)
        finally:
            fm_log.setLevel(fm_level)


def _draw_posteriorgram(plt, model, tokenizer, waveform, out, sample_rate, title, words, max_rows) -> Path:
    import numpy as np

    d = posteriorgram(model, tokenizer, waveform, sample_rate)
    lp, hyp = d["log_probs"], d["hypothesis"]
    post = np.exp(lp)
    T, V = post.shape
    fs, hop = d["frame_shift_s"], d["hop_s"]
    blank = tokenizer.blank_id
    # Output frame t is drawn over [t*fs, (t+1)*fs) and fbank frame j over [j*hop, (j+1)*hop):
    # the convention of the word times (see ctcasr.align), and one that keeps each output
    # frame exactly over the three fbank frames it stacks.
    t_end = T * fs

    rows = [i for i in range(V) if i != blank]
    if len(rows) > max_rows:
        rows = sorted(sorted(rows, key=lambda i: -post[:, i].max())[:max_rows])
    width = float(np.clip(2.5 + 4.5 * d["duration_s"], 8, 32))
    height_ratios = [3, max(2.0, 0.14 * len(rows)), 1.8]
    fig, (a1, a2, a3) = plt.subplots(3, 1, sharex=True, figsize=(width, 2.2 + sum(height_ratios)),
                                     gridspec_kw={"height_ratios": height_ratios})

    mel = d["mel_db"]
    vmax = mel.max()
    a1.imshow(mel.T, origin="lower", aspect="auto", cmap="magma", vmin=vmax - 80, vmax=vmax,
              extent=(0, mel.shape[0] * hop, 0, mel.shape[1]), interpolation="nearest")
    a1.set_ylabel("mel bin")
    a1.set_title(title or "log-mel spectrogram", loc="left", fontsize=10)
    for w in words or []:
        a1.axvspan(w.start_s, w.end_s, color="cyan", alpha=0.18, lw=0)
        a1.text((w.start_s + w.end_s) / 2, mel.shape[1] * 0.97, w.text, ha="center", va="top",
                color="white", fontsize=9, fontweight="bold")

    a2.imshow(post[:, rows].T, origin="lower", aspect="auto", cmap="Greys", vmin=0, vmax=1,
              extent=(0, t_end, -0.5, len(rows) - 0.5), interpolation="nearest")
    a2.set_yticks(range(len(rows)))
    a2.set_yticklabels([_show(tokenizer.tokens[i]) for i in rows], fontsize=8 if len(rows) <= 30 else 6)
    a2.set_ylabel("token")
    a2.set_title("token posteriors per output frame (black = 1)", loc="left", fontsize=10)
    row_of = {i: r for r, i in enumerate(rows)}
    for tok, t in zip(hyp.tokens, hyp.timesteps):
        if tok in row_of:
            a2.plot((t + 0.5) * fs, row_of[tok], "o", ms=7, mfc="none", mec="tab:red", mew=1.2)

    centers = (np.arange(T) + 0.5) * fs
    a3.fill_between(centers, post[:, blank], step="mid", color="0.8", label="φ (blank)")
    nonblank = np.delete(post, blank, axis=1).max(axis=1)
    a3.plot(centers, nonblank, drawstyle="steps-mid", color="tab:blue", lw=0.8, alpha=0.7,
            label="best non-blank token")
    spikes = [((t + 0.5) * fs, post[t, tok], tok) for tok, t in zip(hyp.tokens, hyp.timesteps)]
    if spikes:
        a3.vlines([x for x, _, _ in spikes], 0, [p for _, p, _ in spikes], color="tab:red", lw=1.0)
        a3.plot([x for x, _, _ in spikes], [p for _, p, _ in spikes], "o", color="tab:red", ms=3)
    # Labels of neighbouring spikes (often one frame apart) go on two rows so they stay
    # legible; min_dx is about one bold character's width in seconds.
    min_dx = 0.14 * t_end / (0.85 * width)
    last = [-1.0, -1.0]
    for x, _, tok in spikes:
        row = 0 if x - last[0] >= min_dx or x - last[1] < min_dx else 1
        last[row] = x
        a3.text(x, 1.03 + 0.12 * row, _show(tokenizer.tokens[tok]), ha="center", va="bottom", color="tab:red",
                fontsize=10, fontweight="bold", clip_on=False)
    a3.set_ylim(0, 1)
    a3.set_ylabel("posterior")
    a3.set_xlabel("time (s)")
    a3.set_xlim(0, max(t_end, mel.shape[0] * hop))
    a3.legend(loc="lower right", fontsize=8, framealpha=0.8)
    a3.set_title(f"blank posterior and greedy tokens at their spike frames: {hyp.text!r}", loc="left",
                 fontsize=10, pad=34)
    fig.tight_layout()
    return _save(fig, out)


def cmd_plot(a) -> int:
    from .audio import load_audio
    from .model import load_model_dir
    from .utils import pick_device

    _pyplot("plot")  # a missing matplotlib fails before the model loads
    model, tokenizer = load_model_dir(a.model, pick_device(a.device))
    x = load_audio(a.audio, model.frontend.sample_rate)
    words = None
    if a.transcript:
        from .align import align

        words = align(model, tokenizer, x, a.transcript)
    title = f"{Path(a.audio).name}: log-mel spectrogram" + (" and aligned words" if words else "")
    print(f"wrote {plot_posteriorgram(model, tokenizer, x, a.output, title=title, words=words)}")
    return 0


def add_parser(subparsers):
    """Register ``ctcasr plot`` on an argparse subparsers object; returns the parser."""
    s = subparsers.add_parser(
        "plot", help="PNG of an utterance's spectrogram and CTC posteriors",
        description="Draw the log-mel spectrogram of AUDIO and, on the same time axis, the model's "
        "per-frame token and blank posteriors with the greedy decoder's tokens at their spike frames. "
        "Needs matplotlib (pip install 'ctcasr[plot]').")
    s.add_argument("audio", metavar="AUDIO", help="audio file (wav, flac, ogg, mp3, ...)")
    s.add_argument("-o", "--output", required=True, help="PNG to write")
    s.add_argument("--model", default=None, help="model directory or shipped model name (default: digits)")
    s.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    s.add_argument("--transcript", help="also mark the words of this transcript where `ctcasr align` puts them")
    s.set_defaults(func=cmd_plot)
    return s
