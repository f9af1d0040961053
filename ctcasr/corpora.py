"""Data preparation for corpora users already have (nothing is downloaded), and Kaldi data
dirs both ways.

Each ``prepare_*`` function reads a corpus in the layout its distributor ships and writes
one JSON-lines manifest per split (``{"id", "audio_filepath", "duration", "text",
"speaker"}``, see ctcasr.data) into ``out_dir``. A corpus directory in the wrong layout
raises DataError naming what is missing; transcript lines without audio and audio without
a transcript are counted per split, logged, and returned in ``PrepStats`` (never silent).

LibriSpeech  ``<corpus>/<subset>/<spk>/<chapter>/<spk>-<chapter>-<utt>.flac`` and
             ``<spk>-<chapter>.trans.txt``; text lower-cased to a-z, apostrophe, space.
AISHELL-1    ``<corpus>/data_aishell/wav/{train,dev,test}/<spk>/<id>.wav`` (the per-speaker
             ``.tar.gz`` archives of the release extracted in place) and
             ``transcript/aishell_transcript_v0.8.txt``; the spaces between words removed.
TIMIT        ``<corpus>/{TRAIN,TEST}/<DR>/<SPK>/<UTT>.{WAV,PHN}`` (any case; ``UTT.WAV`` is
             NIST SPHERE, which libsndfile reads; a converted ``UTT.WAV.wav`` is used when
             present). SA sentences excluded; train = TRAIN, dev = the 50-speaker dev set,
             test = the 24-speaker core test set. Text: the 61 phones, one character each
             (``TIMIT_PHONE_CHARS``), scored after folding to 39 (``timit_phone_errors``).

Why one character per phone: ctcasr's tokenizer, decoders, word timings and ONNX metadata
all treat a token as one character. Writing each phone as a letter that Unicode NFKC and
lower-casing leave alone (``sh`` -> ``ʃ``, ``bcl`` -> ``β``) makes a phone recogniser an
ordinary ``word_delimiter: null`` model (like Chinese), with no change to the library. The
manifests carry the readable sequence too (``"phones": "h# sh iy ..."``), ``phone_map.txt``
lists the table, and ``ctcasr data score-timit`` turns the letters back into phones.
"""

from __future__ import annotations

import logging
import os
import re
import unicodedata
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .data import Utterance, _read_table, read_kaldi_dir, read_manifest, write_manifest
from .errors import AudioError, DataError

log = logging.getLogger(__name__)


@dataclass
class PrepStats:
    """What data preparation kept and what it left out, for one split."""

    utterances: int = 0
    seconds: float = 0.0
    no_audio: int = 0          # transcript lines whose audio file is missing
    no_transcript: int = 0     # audio files that no transcript line names
    unreadable: int = 0        # audio files whose header cannot be read
    empty_text: int = 0        # transcripts that are empty after normalisation
    excluded: int = 0          # left out on purpose (TIMIT SA sentences)
    examples: dict = field(default_factory=dict)  # reason -> one example id

    def note(self, reason: str, uid: str) -> None:
        setattr(self, reason, getattr(self, reason) + 1)
        self.examples.setdefault(reason, uid)

    def summary(self) -> str:
        s = f"{self.utterances} utterances, {self.seconds / 3600:.2f} h"
        skipped = [f"{getattr(self, k)} {k.replace('_', ' ')} (e.g. {self.examples[k]})"
                   for k in ("no_audio", "no_transcript", "unreadable", "empty_text") if getattr(self, k)]
        if skipped:
            s += "; skipped: " + ", ".join(skipped)
        if self.excluded:
            s += f"; {self.excluded} excluded on purpose"
        return s


def _log_skips(name: str, st: PrepStats) -> None:
    for reason, what in (("no_audio", "transcript line(s) without an audio file"),
                         ("no_transcript", "audio file(s) without a transcript line"),
                         ("unreadable", "unreadable audio file(s)"),
                         ("empty_text", "empty transcript(s)")):
        n = getattr(st, reason)
        if n:
            log.warning("%s: skipped %d %s (e.g. %s)", name, n, what, st.examples[reason])


def _children(d: Path) -> dict:
    """Lower-cased name -> path of the entries of ``d`` (TIMIT comes in either case)."""
    try:
        return {p.name.lower(): p for p in sorted(d.iterdir())}
    except OSError as e:
        raise DataError(f"{d}: cannot list ({e.strerror or e})") from None


def _with_durations(items, stats: PrepStats, jobs: int) -> list:
    """``items``: (id, path, text, extra) -> Utterances with durations from the file
    headers (read in ``jobs`` threads: header reads are I/O, and a 960 h corpus has 280k
    files). Unreadable files are counted and skipped."""
    from .audio import audio_duration

    def dur(item):
        try:
            return audio_duration(item[1])
        except AudioError:
            return None

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        durations = list(pool.map(dur, items))
    utts = []
    for (uid, path, text, extra), d in zip(items, durations):
        if d is None:
            stats.note("unreadable", uid)
            continue
        utts.append(Utterance(uid, str(path), d, text, 0.0, dict(extra)))
        stats.utterances += 1
        stats.seconds += d
    return utts


def _write_split(utts, out_dir: Path, name: str, stats: PrepStats, corpus: str) -> Path:
    if not utts:
        raise DataError(f"{corpus}: no usable utterances for {name} ({stats.summary()})")
    path = out_dir / f"{name}.jsonl"
    write_manifest(sorted(utts, key=lambda u: u.id), path)
    _log_skips(f"{corpus} {name}", stats)
    log.debug("%s %s: %s -> %s", corpus, name, stats.summary(), path)
    return path


# ----------------------------------------------------------------------------- LibriSpeech
LIBRISPEECH_SUBSETS = ("train-clean-100", "train-clean-360", "train-other-500", "dev-clean", "dev-other",
                       "test-clean", "test-other")
_NOT_LIBRI = re.compile(r"[^a-z' ]+")


def normalize_librispeech(text: str) -> str:
    """Lower-case letters, apostrophe and single spaces (what the transcripts hold, in
    upper case; anything else, should a copy have it, becomes a word break)."""
    t = unicodedata.normalize("NFKC", text).lower().translate(str.maketrans({"’": "'", "‘": "'", "`": "'"}))
    return " ".join(_NOT_LIBRI.sub(" ", t).split())


def _librispeech_root(corpus_dir: Path, subsets) -> Path:
    if not corpus_dir.is_dir():
        raise DataError(f"{corpus_dir}: corpus directory not found")
    for root in (corpus_dir, corpus_dir / "LibriSpeech"):
        if any((root / s).is_dir() for s in subsets):
            return root
    found = [p.name for p in sorted(corpus_dir.iterdir()) if p.name in LIBRISPEECH_SUBSETS]
    raise DataError(f"{corpus_dir}: no LibriSpeech subset directory ({', '.join(subsets)}) here or in "
                    f"{corpus_dir / 'LibriSpeech'}" + (f"; found {', '.join(found)}" if found else "")
                    + "; pass the folder that holds the extracted subsets")


def prepare_librispeech(corpus_dir, out_dir, subsets=("train-clean-100", "dev-clean", "dev-other", "test-clean",
                                                        "test-other"), jobs: int = 4) -> dict:
    """Write ``out_dir/<subset>.jsonl`` for each subset; returns {subset: PrepStats}."""
    corpus_dir, out_dir = Path(corpus_dir), Path(out_dir)
    subsets = list(subsets)
    unknown = [s for s in subsets if s not in LIBRISPEECH_SUBSETS]
    if unknown:
        raise DataError(f"unknown LibriSpeech subset(s) {', '.join(unknown)}; known: {', '.join(LIBRISPEECH_SUBSETS)}")
    root = _librispeech_root(corpus_dir, subsets)
    missing = [s for s in subsets if not (root / s).is_dir()]
    if missing:
        raise DataError(f"{root}: subset(s) {', '.join(missing)} not found (extract them there, or choose "
                        "others with --subsets)")
    out = {}
    for subset in subsets:
        st = PrepStats()
        items = []
        chapters = sorted(p for p in (root / subset).glob("*/*") if p.is_dir())
        if not any((c / f"{c.parent.name}-{c.name}.trans.txt").is_file() for c in chapters):
            raise DataError(f"{root / subset}: no <speaker>/<chapter>/<speaker>-<chapter>.trans.txt files; "
                            "is this an extracted LibriSpeech subset?")
        for chapter in chapters:
            # .flac as distributed; a .wav copy (some users convert) when there is no .flac.
            audio = {p.stem: p for p in sorted(chapter.iterdir(), key=lambda p: p.suffix.lower() == ".flac")
                     if p.suffix.lower() in (".flac", ".wav")}
            tf = chapter / f"{chapter.parent.name}-{chapter.name}.trans.txt"
            lines = tf.read_text(encoding="utf-8").splitlines() if tf.is_file() else []
            seen_audio = set()
            for line in lines:
                if not line.strip():
                    continue
                uid, _, text = line.strip().partition(" ")
                p = audio.get(uid)
                if p is None:
                    st.note("no_audio", uid)
                    continue
                seen_audio.add(uid)
                text = normalize_librispeech(text)
                if not text:
                    st.note("empty_text", uid)
                    continue
                items.append((uid, p, text, {"speaker": uid.split("-")[0]}))
            for uid in sorted(set(audio) - seen_audio):
                st.note("no_transcript", uid)
        utts = _with_durations(items, st, jobs)
        _write_split(utts, out_dir, subset, st, "LibriSpeech")
        out[subset] = st
    return out


# ----------------------------------------------------------------------------- AISHELL-1
AISHELL_SPLITS = ("train", "dev", "test")
AISHELL_TRANSCRIPT = "transcript/aishell_transcript_v0.8.txt"


def _aishell_root(corpus_dir: Path) -> Path:
    if not corpus_dir.is_dir():
        raise DataError(f"{corpus_dir}: corpus directory not found")
    for root in (corpus_dir, corpus_dir / "data_aishell"):
        if (root / "wav").is_dir() or (root / "transcript").is_dir():
            break
    else:
        raise DataError(f"{corpus_dir}: no data_aishell/wav or data_aishell/transcript here; pass the folder "
                        "data_aishell.tgz was extracted into (or data_aishell itself)")
    if not (root / AISHELL_TRANSCRIPT).is_file():
        raise DataError(f"{root}: transcript file {AISHELL_TRANSCRIPT} not found")
    missing = [s for s in AISHELL_SPLITS if not (root / "wav" / s).is_dir()]
    if missing:
        tars = sorted((root / "wav").glob("*.tar.gz")) if (root / "wav").is_dir() else []
        hint = (f"; wav/ holds {len(tars)} per-speaker .tar.gz archives: extract them first "
                f"(cd {root / 'wav'} && for f in *.tar.gz; do tar xzf \"$f\"; done)") if tars else ""
        raise DataError(f"{root / 'wav'}: split folder(s) {', '.join(missing)} not found{hint}")
    return root


def prepare_aishell(corpus_dir, out_dir, jobs: int = 4) -> dict:
    """Write ``out_dir/{train,dev,test}.jsonl``; returns {split: PrepStats} plus the number
    of transcript lines no split has audio for. Characters are the tokens: the word
    segmentation spaces of the transcript are removed."""
    root = _aishell_root(Path(corpus_dir))
    out_dir = Path(out_dir)
    texts = {}
    for n, line in enumerate((root / AISHELL_TRANSCRIPT).read_text(encoding="utf-8-sig").splitlines(), start=1):
        if line.strip():
            uid, _, text = line.strip().partition(" ")
            texts[uid] = "".join(unicodedata.normalize("NFKC", text).split())
    used, out = set(), {}
    for split in AISHELL_SPLITS:
        st = PrepStats()
        items = []
        for wav in sorted((root / "wav" / split).glob("*/*.wav")):
            uid = wav.stem
            if uid not in texts:
                st.note("no_transcript", uid)
                continue
            used.add(uid)
            if not texts[uid]:
                st.note("empty_text", uid)
                continue
            items.append((uid, wav, texts[uid], {"speaker": wav.parent.name}))
        out[split] = st
        _write_split(_with_durations(items, st, jobs), out_dir, split, st, "AISHELL-1")
    orphans = sorted(set(texts) - used)
    if orphans:
        # The transcript covers all three splits; a line no split has audio for is not an
        # error of any one split, but a user should know their copy is incomplete.
        log.warning("AISHELL-1: %d transcript line(s) have no audio file in any split (e.g. %s)",
                    len(orphans), orphans[0])
    out["transcript lines without audio in any split"] = len(orphans)
    return out


# ----------------------------------------------------------------------------- TIMIT
# The 61 phones of the TIMIT .PHN files, each written as one letter that NFKC and
# lower-casing leave unchanged (IPA where there is one; closures as the Greek letter of
# their stop; pau/epi/h# as ρ/ε/σ). Never φ, the CTC blank's symbol.
TIMIT_PHONE_CHARS = {
    "b": "b", "d": "d", "g": "g", "p": "p", "t": "t", "k": "k", "dx": "ɾ", "q": "ʔ",
    "jh": "ʤ", "ch": "ʧ",
    "s": "s", "sh": "ʃ", "z": "z", "zh": "ʒ", "f": "f", "th": "θ", "v": "v", "dh": "ð",
    "m": "m", "n": "n", "ng": "ŋ", "em": "ɱ", "en": "ɲ", "eng": "ɳ", "nx": "ɴ",
    "l": "l", "r": "r", "w": "w", "y": "j", "hh": "h", "hv": "ɦ", "el": "ɫ",
    "iy": "i", "ih": "ɪ", "eh": "ɛ", "ey": "e", "ae": "æ", "aa": "ɑ", "aw": "ɒ", "ay": "a", "ah": "ʌ",
    "ao": "ɔ", "oy": "ɞ", "ow": "o", "uh": "ʊ", "uw": "u", "ux": "ʉ", "er": "ɝ", "ax": "ə", "ix": "ɨ",
    "axr": "ɚ", "ax-h": "ɘ",
    "bcl": "β", "dcl": "δ", "gcl": "γ", "pcl": "π", "tcl": "τ", "kcl": "κ",
    "pau": "ρ", "epi": "ε", "h#": "σ",
}
TIMIT_PHONES = tuple(TIMIT_PHONE_CHARS)
_TIMIT_CHAR_PHONES = {c: p for p, c in TIMIT_PHONE_CHARS.items()}

# 61 -> 39 phones for scoring (Lee & Hon 1989, as in Kaldi's egs/timit/s5/conf/
# phones.60-48-39.map): closures, pauses, epenthetic silence and h# become "sil"; q is
# deleted; the other merges below. Every phone not listed maps to itself.
TIMIT_FOLD_39 = {
    "ao": "aa", "ax": "ah", "ax-h": "ah", "axr": "er", "hv": "hh", "ix": "ih", "el": "l", "em": "m",
    "en": "n", "nx": "n", "eng": "ng", "zh": "sh", "ux": "uw",
    "bcl": "sil", "dcl": "sil", "gcl": "sil", "pcl": "sil", "tcl": "sil", "kcl": "sil",
    "h#": "sil", "pau": "sil", "epi": "sil", "q": None,
}

# The 24 speakers of the core test set (2 men, 1 woman per dialect region) and the
# 50-speaker development set (Kaldi egs/timit/s5/conf/{test,dev}_spk.list).
TIMIT_CORE_TEST_SPEAKERS = frozenset(
    "mdab0 mwbt0 felc0 mtas1 mwew0 fpas0 mjmp0 mlnt0 fpkt0 mlll0 mtls0 fjlm0 mbpm0 mklt0 fnlp0 mcmj0 mjdh0 "
    "fmgd0 mgrt0 mnjm0 fdhc0 mjln0 mpam0 fmld0".split())
TIMIT_DEV_SPEAKERS = frozenset(
    "faks0 fdac1 fjem0 mgwt0 mjar0 mmdb1 mmdm2 mpdf0 fcmh0 fkms0 mbdg0 mbwm0 mcsh0 fadg0 fdms0 fedw0 mgjf0 "
    "mglb0 mrtk0 mtaa0 mtdt0 mthc0 mwjg0 fnmr0 frew0 fsem0 mbns0 mmjr0 mdls0 mdlf0 mdvc0 mers0 fmah0 fdrw0 "
    "mrcs0 mrjm4 fcal1 mmwh0 fjsj0 majc0 mjsw0 mreb0 fgjd0 fjmg0 mroa0 mteb0 mjfc0 mrjr0 fmml0 mrws1".split())


def timit_encode(phones) -> str:
    """Phone names (a list, or a space-separated string) -> the one-letter-per-phone text."""
    phones = phones.split() if isinstance(phones, str) else list(phones)
    bad = sorted({p for p in phones if p not in TIMIT_PHONE_CHARS})
    if bad:
        raise DataError(f"not TIMIT phones: {', '.join(bad)}")
    return "".join(TIMIT_PHONE_CHARS[p] for p in phones)


def timit_decode(text: str) -> list:
    """One-letter-per-phone text (a model's output) -> phone names. Whitespace is ignored."""
    chars = [c for c in text if not c.isspace()]
    bad = sorted({c for c in chars if c not in _TIMIT_CHAR_PHONES})
    if bad:
        raise DataError(f"{''.join(bad)!r}: not letters of the TIMIT phone table")
    return [_TIMIT_CHAR_PHONES[c] for c in chars]


def fold_timit(phones) -> list:
    """61 phones -> the 39 scored ones (q deleted). Neighbours that fold to the same
    phone (``bcl h#`` -> ``sil sil``) are both kept: folding maps, it does not merge."""
    out = []
    for p in phones:
        if p not in TIMIT_PHONE_CHARS:
            raise DataError(f"not a TIMIT phone: {p!r}")
        f = TIMIT_FOLD_39.get(p, p)
        if f is not None:
            out.append(f)
    return out


def _as_phones(x) -> list:
    """A phone list, a space-separated phone string, or one-letter-per-phone text."""
    if not isinstance(x, str):
        return list(x)
    toks = x.split()
    if toks and all(t in TIMIT_PHONE_CHARS for t in toks):
        return toks
    return timit_decode(x)


def timit_phone_errors(refs, hyps):
    """(61-phone ErrorCounts, 39-phone ErrorCounts) summed over parallel lists; each item
    a phone list, a space-separated phone string or one-letter-per-phone text. Both sides
    are folded before the 39-phone alignment."""
    from .metrics import ErrorCounts, edit_ops

    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    e61, e39 = ErrorCounts(), ErrorCounts()
    for r, h in zip(refs, hyps):
        r, h = _as_phones(r), _as_phones(h)
        e61 = e61 + edit_ops(r, h)
        e39 = e39 + edit_ops(fold_timit(r), fold_timit(h))
    return e61, e39


def _timit_root(corpus_dir: Path) -> tuple:
    if not corpus_dir.is_dir():
        raise DataError(f"{corpus_dir}: corpus directory not found")
    candidates = [corpus_dir] + [p for n, p in _children(corpus_dir).items() if n in ("timit", "data") and p.is_dir()]
    for root in candidates:
        kids = _children(root)
        if "train" in kids and "test" in kids and kids["train"].is_dir() and kids["test"].is_dir():
            return kids["train"], kids["test"]
    raise DataError(f"{corpus_dir}: no TRAIN and TEST folders (any case) here or in TIMIT/ or data/; "
                    "pass the folder of the TIMIT release that holds them")


def _read_phn(path: Path) -> list:
    phones = []
    for n, line in enumerate(path.read_text(encoding="ascii", errors="replace").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3 or parts[2] not in TIMIT_PHONE_CHARS:
            raise DataError(f"{path}:{n}: expected 'START END PHONE' with one of the 61 TIMIT phones, got {line!r}")
        phones.append(parts[2])
    return phones


def _timit_split(split_dir: Path, keep, st: PrepStats) -> list:
    """(id, path, text, extra) of the SI/SX utterances of speakers with ``keep(spk)``."""
    items = []
    for dr in _children(split_dir).values():
        if not dr.is_dir():
            continue
        for spk_dir in _children(dr).values():
            spk = spk_dir.name.lower()
            if not spk_dir.is_dir() or not keep(spk):
                continue
            files = _children(spk_dir)
            stems = {n.split(".")[0] for n in files if n.endswith((".phn", ".wav"))}
            for stem in sorted(stems):
                uid = f"{spk}_{stem}"
                if stem.startswith("sa"):
                    st.excluded += 1  # the two dialect sentences every speaker read
                    continue
                phn = files.get(stem + ".phn")
                wav = files.get(stem + ".wav.wav") or files.get(stem + ".wav")
                if phn is None:
                    st.note("no_transcript", uid)
                    continue
                if wav is None:
                    st.note("no_audio", uid)
                    continue
                phones = _read_phn(phn)
                if not phones:
                    st.note("empty_text", uid)
                    continue
                items.append((uid, wav, timit_encode(phones), {"speaker": spk, "phones": " ".join(phones)}))
    return items


def prepare_timit(corpus_dir, out_dir, jobs: int = 4) -> dict:
    """Write ``out_dir/{train,dev,test}.jsonl`` (TRAIN minus SA; the 50 dev speakers;
    the 24 core test speakers) and ``phone_map.txt``; returns {split: PrepStats}."""
    from .utils import atomic_write_text

    train_dir, test_dir = _timit_root(Path(corpus_dir))
    out_dir = Path(out_dir)
    out = {}
    for split, d, keep in (("train", train_dir, lambda s: True),
                           ("dev", test_dir, TIMIT_DEV_SPEAKERS.__contains__),
                           ("test", test_dir, TIMIT_CORE_TEST_SPEAKERS.__contains__)):
        st = PrepStats()
        items = _timit_split(d, keep, st)
        out[split] = st
        _write_split(_with_durations(items, st, jobs), out_dir, split, st, "TIMIT")
    atomic_write_text(out_dir / "phone_map.txt", "".join(
        f"{p}\t{c}\t{TIMIT_FOLD_39.get(p, p) or '-'}\n" for p, c in TIMIT_PHONE_CHARS.items()))
    return out


# ----------------------------------------------------------------------------- Kaldi dirs
def import_kaldi(kaldi_dir, manifest) -> list:
    """Kaldi data dir (wav.scp, text, optional segments and utt2spk) -> JSON-lines manifest.
    Shell pipelines in wav.scp are refused (read_kaldi_dir). Returns the Utterances."""
    kaldi_dir = Path(kaldi_dir)
    utts = read_kaldi_dir(kaldi_dir)
    if not utts:
        raise DataError(f"{kaldi_dir}: no utterance has both audio and a transcript")
    # read_kaldi_dir warns about audio without text; the other way round is said here.
    have = {u.id for u in utts}
    orphans = sorted(uid for _, (uid, _) in _read_table(kaldi_dir / "text", 2) if uid not in have)
    if orphans:
        log.warning("%s: %d line(s) of text have no audio in wav.scp/segments (e.g. %s); skipped",
                    kaldi_dir, len(orphans), orphans[0])
    if (kaldi_dir / "utt2spk").is_file():
        spk = {uid: s.strip() for _, (uid, s) in _read_table(kaldi_dir / "utt2spk", 2)}
        for u in utts:
            if u.id in spk:
                u.extra["speaker"] = spk[u.id]
    unreadable = [u.id for u in utts if u.duration <= 0]
    if unreadable:
        log.warning("%s: %d utterance(s) with unreadable or empty audio (e.g. %s); kept, training skips them",
                    kaldi_dir, len(unreadable), unreadable[0])
    write_manifest(utts, manifest)
    return utts


def _kaldi_field(value: str, what: str, uid: str) -> str:
    if not value or any(c.isspace() for c in value):
        raise DataError(f"utterance {uid!r}: {what} {value!r} is empty or holds whitespace; Kaldi ids cannot")
    return value


def export_kaldi(manifest, kaldi_dir) -> dict:
    """JSON-lines manifest -> Kaldi data dir: wav.scp, text, utt2spk, spk2utt, and segments
    when any utterance has an offset. Files are sorted by id (as Kaldi's tools require)
    and replaced all together or not at all. The speaker is the manifest's ``speaker``
    field, else the utterance id (Kaldi's convention when speakers are unknown).
    Returns {file name: number of lines}."""
    from .utils import atomic_write_files

    utts = sorted(read_manifest(manifest), key=lambda u: u.id)
    if not utts:
        raise DataError(f"{manifest}: no utterances")
    kaldi_dir = Path(kaldi_dir)
    if kaldi_dir.exists() and not kaldi_dir.is_dir():
        raise DataError(f"{kaldi_dir}: exists and is not a directory")
    segmented = any(u.offset or u.extra.get("segment") for u in utts)
    for u in utts:
        _kaldi_field(u.id, "id", u.id)
        if "\n" in u.text or "\r" in u.text:
            raise DataError(f"utterance {u.id!r}: transcript holds a line break")
        if "\n" in u.audio_filepath or u.audio_filepath.rstrip().endswith("|"):
            raise DataError(f"utterance {u.id!r}: audio path {u.audio_filepath!r} cannot be written to wav.scp")
    recordings, wav_lines, seg_lines = {}, [], []
    if segmented:
        # One recording per audio file, named after the file (numbered when two share a stem).
        stems = Counter()
        for u in utts:
            p = os.path.abspath(u.audio_filepath)
            if p not in recordings:
                stem = re.sub(r"\s+", "_", Path(p).stem) or "rec"
                stems[stem] += 1
                recordings[p] = stem if stems[stem] == 1 else f"{stem}-{stems[stem]}"
        wav_lines = sorted(f"{r} {p}" for p, r in recordings.items())
        seg_lines = [f"{u.id} {recordings[os.path.abspath(u.audio_filepath)]} {u.offset:.3f} "
                     f"{u.offset + u.duration:.3f}" for u in utts]
    else:
        wav_lines = [f"{u.id} {os.path.abspath(u.audio_filepath)}" for u in utts]
    spk_of = {u.id: _kaldi_field(str(u.extra.get("speaker") or u.id), "speaker", u.id) for u in utts}
    spk2utt = {}
    for uid, s in spk_of.items():
        spk2utt.setdefault(s, []).append(uid)
    files = {
        "wav.scp": wav_lines,
        "text": [f"{u.id} {' '.join(u.text.split())}".rstrip() for u in utts],
        "utt2spk": [f"{uid} {s}" for uid, s in spk_of.items()],
        "spk2utt": [f"{s} {' '.join(ids)}" for s, ids in sorted(spk2utt.items())],
    }
    if segmented:
        files["segments"] = seg_lines
    atomic_write_files([(kaldi_dir / name, "\n".join(lines) + "\n") for name, lines in files.items()])
    stale = kaldi_dir / "segments"
    if not segmented and stale.is_file():
        stale.unlink()  # from an earlier export; it would re-cut the new wav.scp
        log.warning("%s: removed the segments file of an earlier export", kaldi_dir)
    others = sorted(p.name for p in kaldi_dir.iterdir() if p.is_file() and p.name not in files and
                    not p.name.startswith("."))
    if others:
        log.warning("%s: also holds %s from before; they may not match the new data", kaldi_dir, ", ".join(others))
    return {name: len(lines) for name, lines in files.items()}
