"""``ctcasr data``: prepare LibriSpeech / AISHELL-1 / TIMIT from a copy the user has,
convert Kaldi data dirs to and from manifests, and score TIMIT on 39 phones.

Thin: parses, calls ctcasr.corpora, prints. Errors are DataError (one line from the CLI).
"""

from __future__ import annotations

import sys


def _print_stats(corpus: str, stats: dict, out_dir) -> None:
    for name, st in stats.items():
        if isinstance(st, int):
            if st:
                print(f"{corpus}: {name}: {st}")
            continue
        print(f"{corpus} {name}: {st.summary()}")
    print(f"manifests in {out_dir}")


def cmd_prepare_librispeech(a):
    from .corpora import prepare_librispeech

    _print_stats("LibriSpeech", prepare_librispeech(a.corpus_dir, a.out, a.subsets, jobs=a.jobs), a.out)
    return 0


def cmd_prepare_aishell(a):
    from .corpora import prepare_aishell

    _print_stats("AISHELL-1", prepare_aishell(a.corpus_dir, a.out, jobs=a.jobs), a.out)
    return 0


def cmd_prepare_timit(a):
    from .corpora import prepare_timit

    _print_stats("TIMIT", prepare_timit(a.corpus_dir, a.out, jobs=a.jobs), a.out)
    return 0


def cmd_import_kaldi(a):
    from .corpora import import_kaldi

    utts = import_kaldi(a.kaldi_dir, a.output)
    hours = sum(u.duration for u in utts) / 3600
    print(f"wrote {a.output} ({len(utts)} utterances, {hours:.2f} h)")
    return 0


def cmd_export_kaldi(a):
    from .corpora import export_kaldi

    counts = export_kaldi(a.manifest, a.output)
    print(f"wrote {a.output}: " + ", ".join(f"{name} ({n} lines)" for name, n in counts.items()))
    return 0


def _read_hyps(path) -> dict:
    """A Kaldi-style text file: ``ID HYPOTHESIS`` a line (phones or phone letters)."""
    from pathlib import Path

    from .data import _read_table
    from .errors import DataError

    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: hypothesis file not found")
    return {uid: rest for _, (uid, rest) in _read_table(p, 2)} if p.read_text(encoding="utf-8").strip() else {}


def cmd_score_timit(a):
    from .corpora import timit_phone_errors
    from .data import read_manifest
    from .errors import DataError

    if (a.model is None) == (a.hyp is None):
        raise DataError("give either --model (decode the manifest) or --hyp (score a file of hypotheses)")
    if a.model is not None:
        from .cli import _beam_options
        from .train import evaluate

        r = evaluate(a.model, a.data, device=a.device, decoder=a.decoder, progress=sys.stderr.isatty(),
                     **_beam_options(a))
        ids, refs, hyps = r["ids"], r["refs"], r["hyps"]
        for uid, msg in r["failed"][:10]:
            print(f"ctcasr: error: {uid}: {msg}", file=sys.stderr)
    else:
        utts = read_manifest(a.data)
        got = _read_hyps(a.hyp)
        missing = [u.id for u in utts if u.id not in got]
        if missing:
            # Scored as all deleted, like unreadable audio in `ctcasr evaluate`: a figure
            # must not improve by dropping hard cases.
            print(f"ctcasr: warning: {len(missing)} utterance(s) have no hypothesis in {a.hyp} (e.g. "
                  f"{missing[0]}); scored as empty", file=sys.stderr)
        ids, refs, hyps = [u.id for u in utts], [u.text for u in utts], [got.get(u.id, "") for u in utts]
    e61, e39 = timit_phone_errors(refs, hyps)
    if a.details:
        from .corpora import _as_phones, fold_timit

        for uid, ref, hyp in zip(ids, refs, hyps):
            r39, h39 = fold_timit(_as_phones(ref)), fold_timit(_as_phones(hyp))
            if r39 != h39:
                print(f"{uid}\tREF: {' '.join(r39)}\n{uid}\tHYP: {' '.join(h39)}")
    print(e61.summary("PER (61 phones)"))
    print(e39.summary("PER (39 phones, Lee & Hon folding)"))
    print(f"utterances {len(ids)}")
    return 0


def add_parser(subparsers):
    """Register ``ctcasr data`` (with its sub-commands) on an argparse subparsers object."""
    from .cli import _add_decoder_args
    from .corpora import LIBRISPEECH_SUBSETS

    s = subparsers.add_parser(
        "data", help="prepare LibriSpeech/AISHELL-1/TIMIT; Kaldi data dirs <-> manifests",
        description="Corpus preparation (from a copy you have; nothing is downloaded), Kaldi data dir "
        "import/export, and TIMIT phone scoring.")
    dsub = s.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    dsub.required = True

    def prep(name, func, help_, description):
        p = dsub.add_parser(name, help=help_, description=description)
        p.add_argument("--corpus-dir", required=True, help="where the corpus is (as distributed, extracted)")
        p.add_argument("--out", required=True, help="folder for the manifests (created)")
        p.add_argument("--jobs", type=int, default=4, help="threads reading audio headers (default 4)")
        p.set_defaults(func=func)
        return p

    p = prep("prepare-librispeech", cmd_prepare_librispeech, "LibriSpeech -> one manifest per subset",
             "Read <corpus>/<subset>/<spk>/<chapter>/*.flac and *.trans.txt (CORPUS may also be the folder "
             "holding LibriSpeech/) and write OUT/<subset>.jsonl. Text is lower-cased to a-z, apostrophe, space.")
    p.add_argument("--subsets", nargs="+", default=["train-clean-100", "dev-clean", "dev-other", "test-clean",
                                                   "test-other"], choices=LIBRISPEECH_SUBSETS, metavar="SUBSET",
                   help="subsets to prepare (default: train-clean-100 dev-clean dev-other test-clean test-other)")
    prep("prepare-aishell", cmd_prepare_aishell, "AISHELL-1 -> train/dev/test manifests",
         "Read <corpus>/data_aishell/wav/{train,dev,test}/<spk>/<id>.wav (the per-speaker .tar.gz archives "
         "extracted in place) and transcript/aishell_transcript_v0.8.txt; write OUT/{train,dev,test}.jsonl "
         "with the spaces between words removed (characters are the tokens).")
    prep("prepare-timit", cmd_prepare_timit, "TIMIT -> train/dev/test manifests of phones",
         "Read <corpus>/{TRAIN,TEST}/<DR>/<SPK>/<UTT>.{WAV,PHN} (any case) and write OUT/{train,dev,test}.jsonl: "
         "train = TRAIN without the SA sentences, dev = the 50-speaker development set, test = the 24-speaker "
         "core test set. The text holds the 61 phones, one letter each (OUT/phone_map.txt); the readable "
         "sequence is in the 'phones' field.")

    p = dsub.add_parser("import-kaldi", help="Kaldi data dir -> JSON-lines manifest",
                        description="Convert a Kaldi data dir (wav.scp, text, optional segments and utt2spk) "
                        "into a manifest. wav.scp entries that are shell pipelines are refused.")
    p.add_argument("kaldi_dir", metavar="KALDI_DIR")
    p.add_argument("-o", "--output", required=True, help="manifest to write (.jsonl)")
    p.set_defaults(func=cmd_import_kaldi)

    p = dsub.add_parser("export-kaldi", help="JSON-lines manifest -> Kaldi data dir",
                        description="Write wav.scp, text, utt2spk, spk2utt (and segments when the manifest has "
                        "offsets), sorted by id, all replaced together. The speaker is the manifest's "
                        "'speaker' field, else the utterance id.")
    p.add_argument("manifest", metavar="MANIFEST")
    p.add_argument("-o", "--output", required=True, help="Kaldi data dir to write (created)")
    p.set_defaults(func=cmd_export_kaldi)

    p = dsub.add_parser("score-timit", help="TIMIT phone error rate, 61 and 39 phones",
                        description="Phone error rate of a TIMIT manifest (from prepare-timit): decode it with "
                        "--model, or score --hyp (lines 'ID PHONES', phones space-separated or as the model's "
                        "letters). Both references and hypotheses are folded to the 39 phones of Lee & Hon (1989) "
                        "before the second figure.")
    p.add_argument("--data", required=True, help="TIMIT manifest (e.g. data/test.jsonl)")
    p.add_argument("--model", help="model directory to decode with")
    p.add_argument("--hyp", help="hypotheses to score instead: 'ID PHONES' a line")
    p.add_argument("--device", default="auto")
    _add_decoder_args(p)
    p.add_argument("--details", action="store_true", help="print folded REF/HYP for every utterance with errors")
    p.set_defaults(func=cmd_score_timit)
    return s
