"""The ``ctcasr`` command. Thin: parse arguments, call the library, print.

Errors a user can cause print one line to stderr (``ctcasr: error: ...``) and exit 1; an
unexpected failure prints one line too and asks for CTCASR_DEBUG=1 to show the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

log = logging.getLogger("ctcasr")


def _setup_logging(verbose: int):
    """-q: warnings; default: info; -v: ctcasr's debug lines; -vv: every library's too
    (-v used to turn on numba's bytecode dumps, hundreds of lines, with ours)."""
    level = logging.WARNING if verbose < 0 else logging.INFO if verbose == 0 else logging.DEBUG
    logging.basicConfig(level=level if verbose != 1 else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S",
                        stream=sys.stderr)
    if verbose == 1:
        logging.getLogger("ctcasr").setLevel(logging.DEBUG)


# ------------------------------------------------------------------------- commands
def cmd_prepare(a):
    from .train import prepare

    r = prepare(a.config, a.train, a.out)
    print(f"wrote {a.out}/tokens.txt ({r['tokens']} tokens from {r['utterances']} transcripts) and "
          f"{a.out}/cmvn.json ({r['cmvn_frames']} frames of {r['cmvn_utterances']} utterances)")
    return 0


def cmd_train(a):
    from .train import train

    if a.resume and a.overwrite:
        raise ValueError("--resume continues a run, --overwrite starts again: give one of them")
    r = train(a.config, a.train, a.valid, a.out, resume=a.resume, device=a.device, epochs=a.epochs,
              progress=not a.no_progress and sys.stderr.isatty(), overwrite=a.overwrite)
    if r and int(os.environ.get("RANK", "0")) == 0:  # under torchrun, one summary for the job
        print(f"epoch {r['epoch']}: valid CER {100 * r['valid_cer']:.2f}% WER {100 * r['valid_wer']:.2f}% "
              f"(best CER {100 * r['best_cer']:.2f}%); model in {a.out}")
    return 0


def _collect_inputs(items):
    """Expand FILE/DIR/MANIFEST arguments into (utterances, output names, ids, errors).

    A directory with a ``wav.scp`` is a Kaldi data dir; any other directory is searched
    recursively for audio files (by extension, sorted); ``*.json``/``*.jsonl`` files are
    manifests; anything else is an audio file. The output name (for --output-dir) is the
    path relative to the directory given, the file's stem, or the utterance id. ``ids``:
    the utterance id of a manifest or Kaldi entry (several segments of one recording share
    its path), None for an audio file; txt output's first column and json's "id".
    """
    from pathlib import Path

    from .audio import AUDIO_EXTENSIONS
    from .data import Utterance, read_kaldi_dir, read_manifest
    from .errors import CTCASRError

    utts, names, ids, errors = [], [], [], []
    for item in items:
        p = Path(item)
        try:
            if p.is_dir() and (p / "wav.scp").is_file():
                found = read_kaldi_dir(p)
                utts += found
                names += [u.id for u in found]
                ids += [u.id for u in found]
            elif p.is_dir():
                files = sorted(f for f in p.rglob("*") if f.suffix.lower() in AUDIO_EXTENSIONS and f.is_file())
                if not files:
                    raise CTCASRError(f"{item}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) in this directory")
                for f in files:
                    utts.append(Utterance(str(f), str(f), 0.0, ""))
                    names.append(str(f.relative_to(p).with_suffix("")))
                    ids.append(None)
            elif p.suffix.lower() in (".json", ".jsonl"):
                found = read_manifest(p, require_text=False)
                utts += found
                names += [u.id for u in found]
                ids += [u.id for u in found]
            else:
                utts.append(Utterance(item, item, 0.0, ""))
                names.append(p.stem or "audio")
                ids.append(None)
        except CTCASRError as e:
            errors.append(e)
    seen: dict = {}
    for i, n in enumerate(names):
        # Two inputs with one name (a/x.wav, b/x.wav) must not overwrite each other's output.
        k = seen.get(n, 0)
        seen[n] = k + 1
        if k:
            names[i] = f"{n}-{k + 1}"
    return utts, names, ids, errors


def _parse_hotwords(specs):
    hot = {}
    for s in specs or []:
        word, _, weight = s.rpartition(":") if ":" in s else (s, "", "")
        try:
            hot[word.strip()] = float(weight) if weight else 5.0
        except ValueError:
            raise ValueError(f"--hotword {s!r}: weight {weight!r} is not a number (use WORD or WORD:WEIGHT)") from None
        if not word.strip():
            raise ValueError(f"--hotword {s!r}: empty word")
    return hot or None


def cmd_transcribe(a):
    from pathlib import Path

    from .formats import render
    from .transcribe import Transcriber
    from .utils import atomic_write_text

    utts, names, ids, errors = _collect_inputs(a.inputs)
    for e in errors:
        print(f"ctcasr: error: {e}", file=sys.stderr)
    if a.format in ("srt", "vtt") and not a.output_dir and len(utts) > 1:
        raise ValueError(f"--format {a.format} writes one subtitle file per input: give --output-dir "
                         f"for {len(utts)} inputs")
    hot = _parse_hotwords(a.hotword)
    if hot and a.decoder == "greedy":
        raise ValueError("--hotword needs beam search: drop --decoder greedy")
    opts = _beam_options(a)
    if hot:
        opts["hotwords"] = hot
    asr = Transcriber.load(a.model, device=a.device, decoder="beam" if hot and a.decoder == "auto" else a.decoder,
                           **opts)
    if a.silence_dbfs is not None:
        if not a.silence_dbfs <= 0:  # (NaN fails too)
            raise ValueError(f"--silence-dbfs must be a level <= 0 dBFS (or -inf), got {a.silence_dbfs}")
        asr.silence_dbfs = a.silence_dbfs
    asr.edge_quiet_s = a.edge_quiet
    joiner = " " if asr.tokenizer.word_delimiter is not None else ""
    ext = {"txt": ".txt", "json": ".json", "srt": ".srt", "vtt": ".vtt", "ctm": ".ctm"}[a.format]
    out_dir = Path(a.output_dir) if a.output_dir else None
    state = {"failed": 0, "audio_s": 0.0, "next": 0}
    pending: dict = {}

    def emit(i, r):
        u = utts[i]
        if isinstance(r, Exception):
            state["failed"] += 1
            print(f"ctcasr: error: {r}", file=sys.stderr, flush=True)
            return
        state["audio_s"] += r.duration_s
        if out_dir is not None:
            atomic_write_text(out_dir / (names[i] + ext), render(r, a.format, u.audio_filepath, names[i], joiner,
                                                                 utt_id=ids[i]))
        elif a.format == "txt":
            print(f"{ids[i] or u.audio_filepath}\t{r.text}", flush=True)
        else:
            sys.stdout.write(render(r, a.format, u.audio_filepath, names[i], joiner, utt_id=ids[i]))
            sys.stdout.flush()

    def on_result(i, r):
        # Results arrive sorted by duration; stdout keeps the input order (a small reorder
        # buffer), files in --output-dir are written the moment they are ready.
        if out_dir is not None:
            emit(i, r)
            return
        pending[i] = r
        while state["next"] in pending:
            emit(state["next"], pending.pop(state["next"]))
            state["next"] += 1

    t0 = time.time()
    asr.transcribe_utterances(utts, batch_size=a.batch_size, progress=sys.stderr.isatty(), on_result=on_result)
    wall = time.time() - t0
    failed = state["failed"] + len(errors)
    n_ok = len(utts) - state["failed"]
    if not a.quiet:
        rtf = f"RTF {wall / state['audio_s']:.4f}" if state["audio_s"] else "RTF n/a"
        print(f"ctcasr: transcribed {n_ok} file(s), {state['audio_s']:.1f} s of audio in {wall:.2f} s ({rtf})"
              + (f"; {failed} failed" if failed else "")
              + (f"; outputs in {out_dir}" if out_dir is not None else ""), file=sys.stderr)
    return 1 if failed else 0


def _beam_options(a):
    opts = {"beam_size": a.beam_size, "lm_weight": a.lm_weight, "word_score": a.word_score}
    if a.decoder == "greedy":
        # Silently decoding greedy with "--lm-weight 0.8" given would hide the user's mistake.
        given = [f"--{k.replace('_', '-')}" for k, v in opts.items() if v is not None]
        given += ["--lm"] if a.lm not in ("default", "none") else []
        if given:
            what = "is a beam search setting" if len(given) == 1 else "are beam search settings"
            raise ValueError(f"{', '.join(given)} {what}: drop --decoder greedy")
        return {}
    return {**opts, "lm": a.lm}


def _add_decoder_args(s):
    s.add_argument("--decoder", choices=["auto", "greedy", "beam"], default="auto",
                   help="auto (default): beam search when the model directory has an lm.arpa (or --lm "
                   "names one), else greedy")
    # None: the model directory's decode.yaml (ctcasr tune-lm --write), else 32 / 0.5 / 1.0.
    s.add_argument("--beam-size", type=int, default=None, help="beam search: hypotheses kept per frame "
                   "(default: the model's decode.yaml, else 32)")
    s.add_argument("--lm", default="default", help="beam search: ARPA file, 'none', or 'default' (the model "
                   "directory's lm.arpa when it has one)")
    s.add_argument("--lm-weight", type=float, default=None, help="beam search: weight of the LM log-probability "
                   "(default: the model's decode.yaml, else 0.5)")
    s.add_argument("--word-score", type=float, default=None, help="beam search: bonus per word "
                   "(default: the model's decode.yaml, else 1.0)")


def _edge_quiet(v: str):
    if v.strip().lower() in ("all", "none", "off"):
        return None
    try:
        f = float(v)
    except ValueError:
        f = float("nan")
    if not 0 <= f < float("inf"):
        raise argparse.ArgumentTypeError(f"must be seconds >= 0 or 'all', not {v!r}")
    return f


def _add_edge_quiet_arg(s):
    s.add_argument("--edge-quiet", type=_edge_quiet, default=0.3, metavar="SECONDS",
                   help="seconds of quiet kept before the first and after the last loud frame of each input "
                   "(or window of a long file), and on each side of a longer pause inside; the rest does not "
                   "reach the model, whose level and mean normalisation it would shift (default 0.3; 'all' "
                   "keeps everything). Word times stay those of the input")


def cmd_evaluate(a):
    from .train import evaluate

    r = evaluate(a.model, a.data, device=a.device, decoder=a.decoder, progress=sys.stderr.isatty(),
                 edge_quiet_s=a.edge_quiet, **_beam_options(a))
    if a.details:
        for uid, ref, hyp in zip(r["ids"], r["refs"], r["hyps"]):
            if ref != hyp:
                print(f"{uid}\tREF: {ref}\n{uid}\tHYP: {hyp}")
    if r["word_level"]:
        print(r["word"].summary("WER"))
    print(r["char"].summary("CER"))
    print(f"SER {100 * r['ser']:.2f}% [{r['sentence_errors']} / {r['utterances']} utterances with an error]"
          + ("" if r["word_level"] else " (no WER: this model writes no word delimiter; CER is its metric)"))
    print(f"utterances {r['utterances']}, failed to read {len(r['failed'])}")
    for uid, msg in r["failed"][:10]:
        print(f"ctcasr: error: {uid}: {msg}", file=sys.stderr)
    return 0


def cmd_synth(a):
    from . import synth

    return synth.run(a)


def cmd_lm_build(a):
    from .decoding.lm import build_lm_cli

    lm = build_lm_cli(a.text, a.order, a.output, token_level=a.token_level, lowercase=a.lowercase, prune=a.prune)
    counts = ", ".join(f"{n} {k}-grams" for k, n in enumerate(lm.counts(), start=1))
    print(f"wrote {a.output} ({counts})")
    return 0


def cmd_plot_training(a):
    from .plot import plot_training

    print(f"wrote {plot_training(a.exp_dir, a.output)}")
    return 0


# ------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ctcasr", description="BiLSTM-CTC speech recognition.")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    s = sub.add_parser("prepare", help="write tokens.txt and CMVN statistics from training data",
                       description="Recipe stage 1: build the token list and global CMVN statistics.")
    s.add_argument("--config", required=True, help="training YAML (model: + train:)")
    s.add_argument("--train", required=True, help="training manifest (JSON lines) or Kaldi data dir")
    s.add_argument("--out", required=True, help="experiment directory")
    s.set_defaults(func=cmd_prepare)

    s = sub.add_parser("train", help="train a CTC model", description="Train a CTC model; the best epoch "
                       "is written to --out as a model directory.")
    s.add_argument("--config", required=True, help="training YAML (model: + train:)")
    s.add_argument("--train", required=True, help="training manifest or Kaldi data dir")
    s.add_argument("--valid", required=True, help="validation manifest or Kaldi data dir")
    s.add_argument("--out", required=True, help="experiment / model directory")
    s.add_argument("--resume", action="store_true", help="continue from --out/checkpoints/last.pt")
    s.add_argument("--overwrite", action="store_true",
                   help="--out holds an earlier run: delete its model, checkpoints and log and start again "
                   "(without this, or --resume, such an --out is refused)")
    s.add_argument("--epochs", type=int, help="override train.epochs")
    s.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:N")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("transcribe", help="transcribe audio files, directories and manifests",
                       description="Transcribe audio of any length. Inputs: audio files, directories "
                       "(searched recursively for audio files), JSON-lines manifests and Kaldi data dirs. "
                       "Without --output-dir the transcripts go to stdout in input order (txt: PATH<TAB>TEXT "
                       "a line, ID<TAB>TEXT for manifest and Kaldi entries; json: one JSON object a line, "
                       "with the entry's id; ctm: one word a line). Files that fail are "
                       "reported on stderr and skipped; the exit status is 1 if any failed.")
    s.add_argument("inputs", nargs="+", metavar="INPUT", help="audio file (wav, flac, ogg, mp3, ...), "
                   "directory, manifest (.json/.jsonl) or Kaldi data dir")
    s.add_argument("--model", default=None, help="model directory or shipped model name (default: digits)")
    s.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    s.add_argument("--format", default="txt", choices=["txt", "json", "srt", "vtt", "ctm"],
                   help="output format (json/srt/vtt/ctm carry word times in seconds)")
    s.add_argument("--output-dir", "-o", help="write one file per input here (NAME.FORMAT, NAME = the "
                   "input's stem, path under the directory given, or utterance id)")
    _add_decoder_args(s)
    s.add_argument("--hotword", action="append", metavar="WORD[:WEIGHT]",
                   help="add WEIGHT (default 5, in log-probability units) each time the beam search "
                   "writes WORD; repeatable; implies beam search")
    s.add_argument("--batch-size", type=int, default=8, help="files (or windows of a long file) per model call")
    s.add_argument("--silence-dbfs", type=float, default=None, metavar="DB",
                   help="audio (or a window of a long file) whose loudest 100 ms is below this level gives "
                   "no words (default -50; --silence-dbfs=-inf decodes everything)")
    _add_edge_quiet_arg(s)
    s.set_defaults(func=cmd_transcribe)

    s = sub.add_parser("evaluate", help="WER/CER of a model on a manifest",
                       description="Decode every utterance of a manifest and print WER and CER with "
                       "substitution/deletion/insertion counts.")
    s.add_argument("--model", default=None, help="model directory or shipped model name")
    s.add_argument("--data", required=True, help="manifest (JSON lines) or Kaldi data dir")
    s.add_argument("--device", default="auto")
    _add_decoder_args(s)
    s.add_argument("--details", action="store_true", help="print REF/HYP for every utterance with errors")
    _add_edge_quiet_arg(s)
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("synth", help="synthesize a speech corpus with Debian TTS voices",
                       description="Synthesize texts (one per line) with espeak-ng, flite and festival voices, "
                       "with rate/pitch variation and augmentation, into wavs and a JSON-lines manifest.")
    from . import synth

    synth.add_arguments(s)
    s.set_defaults(func=cmd_synth)

    s = sub.add_parser("lm", help="n-gram language models", description="n-gram language model tools.")
    lsub = s.add_subparsers(dest="lm_command", metavar="LM_COMMAND")
    lsub.required = True
    b = lsub.add_parser("build", help="estimate an ARPA n-gram LM from text",
                        description="Estimate an interpolated modified Kneser-Ney n-gram LM from text "
                        "(one sentence a line) and write it as ARPA (loads in KenLM too).")
    b.add_argument("text", help="UTF-8 text, one sentence per line")
    b.add_argument("--order", type=int, default=3)
    b.add_argument("-o", "--output", required=True, help="ARPA file to write")
    b.add_argument("--token-level", action="store_true",
                   help="every non-space character is a word (for models with word_delimiter: null, e.g. Chinese)")
    b.add_argument("--lowercase", action="store_true", help="lower-case the text first")
    b.add_argument("--prune", type=int, nargs="+", metavar="N", help="count thresholds per order as in KenLM's "
                   "lmplz --prune: '0 1 1' drops 2- and 3-grams seen once (back-off weights are renormalised)")
    b.set_defaults(func=cmd_lm_build)

    s = sub.add_parser("plot-training", help="PNG of the loss and CER curves of a training run",
                       description="Plot EXP_DIR/train_log.csv (train/valid loss, valid CER/WER per epoch) "
                       "into a PNG. Needs matplotlib (pip install 'ctcasr[plot]').")
    s.add_argument("exp_dir", metavar="EXP_DIR", help="a `ctcasr train --out` directory")
    s.add_argument("-o", "--output", help="PNG to write (default EXP_DIR/training.png)")
    s.set_defaults(func=cmd_plot_training)

    from . import align, datacli, export, plot, tune

    align.add_parser(sub)
    tune.add_parser(sub)
    plot.add_parser(sub)
    export.add_parser(sub)
    datacli.add_parser(sub)
    _add_global_options(sub)
    return p


def _add_global_options(sub):
    """Accept -v/-q after the command too (`ctcasr transcribe x.wav -q`), as users type them.
    SUPPRESS keeps a sub-command's absent flag from overwriting the top-level value."""
    for s in sub.choices.values():
        if any("--quiet" in a.option_strings for a in s._actions):
            continue
        s.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more log output")
        s.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                       help="warnings and errors only")
        for child in s._actions:
            if isinstance(child, argparse._SubParsersAction):
                _add_global_options(child)


def _error_line(e: BaseException) -> int:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    print(f"ctcasr: error: {msg}", file=sys.stderr)
    return 1


def _stdout_reader_gone() -> bool:
    """Whether stdout is a pipe or socket whose reading end is closed (poll reports an
    error condition on the writing end then)."""
    import select

    try:
        p = select.poll()
        p.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & select.POLLERR for _, ev in p.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll() (Windows), stdout closed or replaced
        return False


def main(argv=None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    _setup_logging(-1 if a.quiet else a.verbose)
    from .errors import CTCASRError
    if a.command == "train":
        # 1.2-1.3x faster CPU training steps (ctcasr.utils.tune_malloc; CTCASR_MALLOC_TUNING=0:
        # off). Not for transcription: measured on a 1-hour file, 10 % faster for 120 MB more
        # peak memory (benchmarks/README.md).
        # And a bounded oneDNN primitive cache: without it memory grows with every new batch
        # shape (ctcasr.utils.limit_onednn_cache).
        # And a short OpenMP spin, so that the niced data worker gets the cores the step's
        # threads would spin on (ctcasr.utils.limit_openmp_spin; before torch is imported).
        from .utils import limit_onednn_cache, limit_openmp_spin, tune_malloc

        tune_malloc()
        limit_onednn_cache()
        limit_openmp_spin()

    try:
        rc = int(a.func(a) or 0)
        sys.stdout.flush()  # (here, so that a reader gone away is seen below, not at exit)
        return rc
    except KeyboardInterrupt:
        print("ctcasr: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError as e:
        if not _stdout_reader_gone():  # a pipe of ours (e.g. to a TTS process) broke: an error
            if os.environ.get("CTCASR_DEBUG"):
                raise
            return _error_line(e)
        # `ctcasr transcribe ... | head`: the reader has what it wanted. Stop quietly, with
        # the status a shell reports for a tool ended by SIGPIPE, as Unix tools do; stdout
        # goes to /dev/null so that the interpreter's last flush does not fail again.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except OSError:
            pass
        return 141
    except (CTCASRError, ValueError, OSError) as e:
        if os.environ.get("CTCASR_DEBUG"):
            raise
        return _error_line(e)
    except Exception as e:  # noqa: BLE001 - never a traceback for users; one line and a hint
        if os.environ.get("CTCASR_DEBUG"):
            raise
        print(f"ctcasr: internal error: {type(e).__name__}: {str(e).strip()[:300]} "
              "(run with CTCASR_DEBUG=1 for the traceback and please report it)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
