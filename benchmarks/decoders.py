#!/usr/bin/env python
"""CTC decoder benchmark: ctcasr's beam search against flashlight (torchaudio) and pyctcdecode.

    OMP_NUM_THREADS=1 python benchmarks/decoders.py              # full table
    python benchmarks/decoders.py --utts 5 --beams 32           # quick look

Every decoder gets the same emissions: T=1000 frames x V=32 classes (blank, space, a-z,
', and three never-used specials as in wav2vec2's vocabulary), peaky like a trained CTC
model, generated deterministically (seeded) from real English text so that CER means
something: each character spikes for one or two frames, then 1-3 blank frames; at a
spike a random competitor character and the blank get noisy logits, tuned for a greedy
CER of about 6 %. The text is /usr/share/common-licenses/GPL-3 (Debian's base-files) or,
when that file is missing, a paragraph embedded below (the table says which).

The LM case uses a word 2-gram estimated by ctcasr's own NGramLM (modified Kneser-Ney)
from the same text and written as ARPA; every LM decoder (ctcasr's and flashlight's, which
also gets a lexicon of the LM's words) loads that file itself, so no decoder starts with
LM scores cached by another one.
LM weight and word score are picked per decoder by a small grid on separate dev
utterances, so each decoder runs at its own best setting.

Peers run when importable and are reported missing otherwise:
* flashlight: ``pip install flashlight-text`` (the PyPI wheel has no KenLM, so only the
  no-LM rows; ``benchmarks/build_flashlight_kenlm.sh`` builds one with KenLM),
  driven through ``torchaudio.models.decoder.ctc_decoder``;
* pyctcdecode: pins numpy<2, so it lives in its own venv ``benchmarks/.venv-pyctcdecode``
  (``python -m venv benchmarks/.venv-pyctcdecode && benchmarks/.venv-pyctcdecode/bin/pip
  install -r benchmarks/requirements-peers.txt``); this script runs it there as a
  subprocess (``--pyctcdecode-worker``).

Timings are single-threaded wall clock per utterance (one warm-up call first); nothing
here is asserted by the tests.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402 (thread caps must precede numpy)
import json  # noqa: E402 (thread caps must precede numpy)
import platform  # noqa: E402 (thread caps must precede numpy)
import re  # noqa: E402 (thread caps must precede numpy)
import subprocess  # noqa: E402 (thread caps must precede numpy)
import sys  # noqa: E402 (thread caps must precede numpy)
import tempfile  # noqa: E402 (thread caps must precede numpy)
import time  # noqa: E402 (thread caps must precede numpy)
from pathlib import Path  # noqa: E402 (thread caps must precede numpy)

import numpy as np  # noqa: E402 (thread caps must precede numpy)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TOKENS = ["<pad>", " "] + [chr(c) for c in range(97, 123)] + ["'", "<s>", "</s>", "<unk>"]
T_FRAMES = 1000

FALLBACK_TEXT = """
The licenses for most software and other practical works are designed to take away your
freedom to share and change the works. By contrast, the general public license is intended
to guarantee your freedom to share and change all versions of a program, to make sure it
remains free software for all its users. When we speak of free software, we are referring
to freedom, not price. Our general public licenses are designed to make sure that you have
the freedom to distribute copies of free software and charge for them if you wish, that you
receive source code or can get it if you want it, that you can change the software or use
pieces of it in new free programs, and that you know you can do these things. To protect
your rights, we need to prevent others from denying you these rights or asking you to
surrender the rights. Therefore, you have certain responsibilities if you distribute copies
of the software, or if you modify it: responsibilities to respect the freedom of others.
For example, if you distribute copies of such a program, whether gratis or for a fee, you
must pass on to the recipients the same freedoms that you received. You must make sure that
they, too, receive or can get the source code. And you must show them these terms so they
know their rights. Developers that use the general public license protect your rights with
two steps: assert copyright on the software, and offer you this license giving you legal
permission to copy, distribute and modify it. For the developers' and authors' protection,
the license clearly explains that there is no warranty for this free software. For both
users' and authors' sake, the license requires that modified versions be marked as changed,
so that their problems will not be attributed erroneously to authors of previous versions.
"""


# ----------------------------------------------------------------------------- data
def load_sentences():
    p = Path("/usr/share/common-licenses/GPL-3")
    if p.is_file():
        raw, source = p.read_text(encoding="utf-8"), str(p)
    else:
        raw, source = FALLBACK_TEXT, "embedded paragraph"
    sents = []
    for s in re.split(r"[.;:!?()]+", raw.lower().replace("\n", " ")):
        s = re.sub(r"[^a-z' ]+", " ", s)
        words = [w.strip("'") for w in s.split()]
        words = [w for w in words if w]
        if words:
            sents.append(words)
    return sents, source


def make_utterance(rng, words, T=T_FRAMES):
    """Peaky log-probs [T, 32] (float32) spelling a run of ``words``, and the reference."""
    V = len(TOKENS)
    tid = {t: i for i, t in enumerate(TOKENS)}
    logits = rng.normal(0.0, 1.5, size=(T, V))
    logits[:, 0] += 14.0 + rng.normal(0.0, 1.5, size=T)  # blank frames by default
    t, ref = 2, []
    i = int(rng.integers(0, len(words) - 400))
    while True:
        w = words[i]
        i += 1
        chars = list(w) + [" "]
        if t + 5 * len(chars) + 1 > T:
            break
        for c in chars:
            logits[t] = rng.normal(0.0, 1.5, size=V)
            logits[t, tid[c]] += rng.normal(8.0, 2.0)     # the true character spikes
            logits[t, 0] = rng.normal(1.5, 2.0)           # blank competes (deletions)
            logits[t, rng.integers(2, 29)] += rng.normal(1.0, 2.0)  # a random rival letter
            if rng.random() < 0.3:                        # some spikes last two frames
                t += 1
                logits[t] = logits[t - 1] + rng.normal(0.0, 0.5, size=V)
            t += 1 + int(rng.integers(1, 4))
        ref.append(w)
    lp = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    return lp.astype(np.float32), " ".join(ref)


def cer(refs, hyps):
    try:
        import jiwer
        return float(jiwer.cer(list(refs), list(hyps)))
    except ImportError:
        pass
    err = tot = 0
    for r, h in zip(refs, hyps):
        prev = list(range(len(h) + 1))
        for i, rc in enumerate(r, 1):
            cur = [i] + [0] * len(h)
            for j, hc in enumerate(h, 1):
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (rc != hc))
            prev = cur
        err += prev[-1]
        tot += len(r)
    return err / max(tot, 1)


def norm(text):
    # special tokens count as one wrong character whoever prints them (pyctcdecode
    # writes <unk> as a single "⁇")
    for sp in ("<unk>", "<s>", "</s>", "\u2047"):
        text = text.replace(sp, "?")
    return " ".join(text.replace("|", " ").split())


def timed(fn, utts):
    fn(utts[0])  # warm-up (caches, lazy imports)
    hyps = []
    t0 = time.perf_counter()
    for u in utts:
        hyps.append(fn(u))
    dt = time.perf_counter() - t0
    return dt / len(utts), [norm(h) for h in hyps]


# ------------------------------------------------------------------------ decoders
def ours_factory(beam, arpa=None, alpha=0.5, beta=0.0):
    from ctcasr.decoding import BeamSearchDecoder, NGramLM
    # a fresh NGramLM per decoder (as flashlight loads the ARPA per decoder): its score
    # cache starts empty
    lm = NGramLM.from_arpa(arpa) if arpa is not None else None
    dec = BeamSearchDecoder(TOKENS, blank=0, beam_size=beam, word_delimiter=" ", lm=lm,
                            lm_weight=alpha, word_score=beta, input_type="log_probs")
    return lambda lp: dec(lp)[0].text


def flashlight_available():
    try:
        import flashlight.lib.text.decoder  # noqa: F401
        from torchaudio.models.decoder import ctc_decoder  # noqa: F401
        return True, ""
    except Exception as e:  # noqa: BLE001
        return False, f"{type(e).__name__}: {e}"


def flashlight_has_kenlm():
    try:
        from flashlight.lib.text.decoder import KenLM  # noqa: F401
        return True
    except Exception:  # noqa: BLE001
        return False


def flashlight_factory(beam, lexicon=None, arpa=None, alpha=0.0, beta=0.0):
    import torch
    from torchaudio.models.decoder import ctc_decoder
    torch.set_num_threads(1)
    toks = ["|" if t == " " else t for t in TOKENS]
    dec = ctc_decoder(lexicon=lexicon, tokens=toks, lm=arpa, beam_size=beam,
                      lm_weight=alpha, word_score=beta, blank_token="<pad>", sil_token="|",
                      unk_word="<unk>")

    def run(lp):
        hyp = dec(torch.from_numpy(lp)[None])[0][0]
        if lexicon is not None:
            return " ".join(hyp.words)
        return "".join(toks[i] for i in hyp.tokens.tolist() if toks[i] not in ("<pad>",))

    return run


PYCTC_PY = HERE / ".venv-pyctcdecode" / "bin" / "python"


def pyctcdecode_worker(npz_path, out_path, beams):
    """Runs inside the pyctcdecode venv (numpy<2): decode and time, write JSON."""
    import logging
    logging.disable(logging.WARNING)
    from pyctcdecode import build_ctcdecoder
    data = np.load(npz_path)
    labels = [""] + TOKENS[1:]
    dec = build_ctcdecoder(labels)
    res = {}
    utts = [data[k] for k in sorted(data.files, key=lambda s: int(s[1:]))]
    for beam in beams:
        def fn(lp, b=beam):
            return dec.decode(lp, beam_width=b)
        sec, hyps = timed(fn, utts)
        res[str(beam)] = {"sec": sec, "hyps": hyps}
    Path(out_path).write_text(json.dumps(res))


def run_pyctcdecode(utts, beams):
    if not PYCTC_PY.exists():
        return None, f"no venv at {PYCTC_PY.relative_to(ROOT)}"
    with tempfile.TemporaryDirectory() as d:
        npz, out = Path(d) / "e.npz", Path(d) / "out.json"
        np.savez(npz, **{f"u{i}": lp for i, (lp, _) in enumerate(utts)})
        cmd = [str(PYCTC_PY), str(Path(__file__).resolve()), "--pyctcdecode-worker", str(npz), str(out),
               "--beams", *map(str, beams)]
        p = subprocess.run(cmd, capture_output=True, text=True, check=False, env={**os.environ, "PYTHONPATH": ""})
        if p.returncode != 0:
            return None, "worker failed: " + p.stderr.strip().splitlines()[-1] if p.stderr.strip() else "worker failed"
        return json.loads(out.read_text()), ""


# ----------------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--utts", type=int, default=20, help="test utterances (default 20)")
    ap.add_argument("--dev-utts", type=int, default=10, help="dev utterances for the LM weight grid")
    ap.add_argument("--beams", type=int, nargs="+", default=[10, 32, 100])
    ap.add_argument("--lm-extra-beams", type=int, nargs="*", default=[3, 5, 7, 16, 50],
                    help="more beam sizes for the LM rows of both ctcasr and flashlight, for the "
                    "equal-accuracy table (default 3 5 7 16 50)")
    ap.add_argument("--no-peers", action="store_true", help="only ctcasr's decoders")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--pyctcdecode-worker", nargs=2, metavar=("NPZ", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.pyctcdecode_worker:
        return pyctcdecode_worker(*args.pyctcdecode_worker, args.beams)

    sys.path.insert(0, str(ROOT))
    from ctcasr.decoding import GreedyDecoder, NGramLM

    sents, source = load_sentences()
    words = [w for s in sents for w in s]
    rng = np.random.default_rng(20240601)
    dev = [make_utterance(rng, words) for _ in range(args.dev_utts)]
    test = [make_utterance(rng, words) for _ in range(args.utts)]
    refs = [r for _, r in test]
    tmp = tempfile.TemporaryDirectory()
    arpa = os.path.join(tmp.name, "words2.arpa")
    lexicon = os.path.join(tmp.name, "lexicon.txt")
    lm = NGramLM.from_text(sents, order=2)
    lm.to_arpa(arpa)
    with open(lexicon, "w") as f:
        f.writelines(f"{w}\t{' '.join(w)} |\n" for w in lm.words)

    rows, missing = [], []

    def add(name, beam, lmname, fn, utts=test):
        sec, hyps = timed(fn, [u for u, _ in utts])
        rows.append({"decoder": name, "beam": beam, "lm": lmname, "ms": sec * 1e3,
                     "fps": T_FRAMES / sec, "cer": cer([r for _, r in utts], hyps)})
        print(f"  {name:<28} beam {beam!s:>4} {lmname:<8} {sec * 1e3:8.1f} ms  CER {rows[-1]['cer']:.4f}",
              flush=True)

    def grid(make, alphas, betas):
        best = None
        for a in alphas:
            for b in betas:
                fn = make(a, b)
                c = cer([r for _, r in dev], [norm(fn(u)) for u, _ in dev])
                if best is None or c < best[0]:
                    best = (c, a, b)
        return best[1], best[2]

    print(f"text: {source}; {len(test)} test utterances of {T_FRAMES} frames x {len(TOKENS)} classes; "
          f"LM: word 2-gram, {len(lm.words)} words")
    g = GreedyDecoder(TOKENS, input_type="log_probs")
    add("ctcasr greedy", "-", "-", lambda lp: g(lp)[0].text)
    for b in args.beams:
        add("ctcasr beam", b, "-", ours_factory(b))
    a_ours, b_ours = grid(lambda a, b: ours_factory(32, arpa, a, b), [0.3, 0.5, 0.8, 1.2], [0.0, 1.0, 2.0])
    lm_beams = sorted(set(args.beams) | set(args.lm_extra_beams))
    for b in lm_beams:
        add("ctcasr beam", b, "2-gram", ours_factory(b, arpa, a_ours, b_ours))

    if not args.no_peers:
        ok, why = flashlight_available()
        if ok:
            for b in args.beams:
                add("flashlight (torchaudio)", b, "-", flashlight_factory(b))
            if flashlight_has_kenlm():
                a_fl, b_fl = grid(lambda a, bb: flashlight_factory(32, lexicon, arpa, a, bb),
                                  [0.5, 1.0, 2.0, 3.0], [-1.0, 0.0, 1.0, 2.0])
                for b in lm_beams:
                    add("flashlight lexicon+KenLM", b, "2-gram", flashlight_factory(b, lexicon, arpa, a_fl, b_fl))
            else:
                missing.append("flashlight with KenLM (the PyPI flashlight-text wheel has none; "
                               "see benchmarks/build_flashlight_kenlm.sh)")
        else:
            missing.append(f"flashlight/torchaudio ({why})")
        res, why = run_pyctcdecode(test, args.beams)
        if res is None:
            missing.append(f"pyctcdecode ({why})")
        else:
            for b in args.beams:
                r = res[str(b)]
                rows.append({"decoder": "pyctcdecode", "beam": b, "lm": "-", "ms": r["sec"] * 1e3,
                             "fps": T_FRAMES / r["sec"], "cer": cer(refs, r["hyps"])})

    # ratio of each ctcasr row to the peer row with the same beam and LM
    peers = sorted({r["decoder"] for r in rows if not r["decoder"].startswith("ctcasr")})
    for r in rows:
        if r["decoder"].startswith("ctcasr"):
            for p in peers:
                q = [x for x in rows if x["decoder"] == p and x["beam"] == r["beam"] and x["lm"] == r["lm"]]
                if q:
                    r[f"x {p}"] = r["ms"] / q[0]["ms"]

    print()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}, numpy {np.__version__}, single thread")
    print(f"ctcasr LM weight {a_ours}, word score {b_ours}" +
          (f"; flashlight LM weight {a_fl}, word score {b_fl}" if "a_fl" in locals() else ""))
    print()
    head = "| decoder | beam | LM | ms/utt | frames/s | CER | " + " | ".join(f"time / {p}" for p in peers) + " |"
    print(head)
    print("|" + "---|" * (6 + len(peers)))
    for r in rows:
        ratios = " | ".join(f"{r[f'x {p}']:.2f}" if f"x {p}" in r else "" for p in peers)
        print(f"| {r['decoder']} | {r['beam']} | {r['lm']} | {r['ms']:.1f} | {r['fps']:,.0f} | "
              f"{100 * r['cer']:.2f} % | {ratios} |")
    # Equal accuracy: "beam N" means different search effort in each decoder (module
    # docstring), so also compare operating points: for each flashlight+LM row, the fastest
    # ctcasr LM row whose CER is no higher.
    fl = [r for r in rows if r["decoder"] == "flashlight lexicon+KenLM"]
    ours_lm = [r for r in rows if r["decoder"] == "ctcasr beam" and r["lm"] == "2-gram"]
    if fl:
        print()
        print("| flashlight lexicon+KenLM beam | its CER | its ms/utt | fastest ctcasr beam with CER <= | "
              "ctcasr CER | ctcasr ms/utt | time / flashlight |")
        print("|---|---|---|---|---|---|---|")
        for r in fl:
            ok = [o for o in ours_lm if o["cer"] <= r["cer"] + 1e-12]
            if ok:
                o = min(ok, key=lambda x: x["ms"])
                print(f"| {r['beam']} | {100 * r['cer']:.2f} % | {r['ms']:.1f} | {o['beam']} | {100 * o['cer']:.2f} % "
                      f"| {o['ms']:.1f} | {o['ms'] / r['ms']:.2f} |")
            else:
                print(f"| {r['beam']} | {100 * r['cer']:.2f} % | {r['ms']:.1f} | none reaches it | | | |")
    print()
    print("missing peers: " + ("; ".join(missing) if missing else "none"))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "missing": missing}, indent=1))


if __name__ == "__main__":
    main()
