"""Corpus preparation (LibriSpeech, AISHELL-1, TIMIT) on tiny fake corpora built in each
layout, TIMIT's 61->39 folding and phone error rates, Kaldi data dir import/export, and
stage 0 of each recipe run through its run.sh."""

import json
import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ctcasr.cli import main
from ctcasr.corpora import (TIMIT_CORE_TEST_SPEAKERS, TIMIT_DEV_SPEAKERS, TIMIT_FOLD_39, TIMIT_PHONE_CHARS,
                            TIMIT_PHONES, export_kaldi, fold_timit, import_kaldi, normalize_librispeech,
                            prepare_aishell, prepare_librispeech, prepare_timit, timit_decode, timit_encode,
                            timit_phone_errors)
from ctcasr.data import read_kaldi_dir, read_manifest
from ctcasr.errors import DataError
from ctcasr.tokenizer import BLANK, Tokenizer

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
SR = 16000


def tone(seconds=0.3, seed=0):
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    return (0.1 * np.sin(2 * np.pi * 220 * np.arange(n) / SR) + 0.01 * rng.standard_normal(n)).astype(np.float32)


def write_sphere(path, x):
    """A NIST SPHERE file with a header like TIMIT's (1024 bytes, 16-bit little-endian PCM)."""
    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2")
    fields = [("database_id", "-s5 TIMIT"), ("database_version", "-s3 1.0"), ("channel_count", "-i 1"),
              ("sample_count", f"-i {len(pcm)}"), ("sample_rate", f"-i {SR}"), ("sample_n_bytes", "-i 2"),
              ("sample_byte_format", "-s2 01"), ("sample_sig_bits", "-i 16")]
    head = "NIST_1A\n   1024\n" + "".join(f"{k} {v}\n" for k, v in fields) + "end_head\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(head.encode("ascii").ljust(1024, b" ") + pcm.tobytes())


# ----------------------------------------------------------------------------- fake corpora
def make_librispeech(root):
    """LibriSpeech/<subset>/<spk>/<chapter>/; train-clean-100 has one transcript line
    without audio (19-198-0003) and one flac without a transcript line (19-198-0009)."""
    ls = root / "LibriSpeech"
    spk_of = {"train-clean-100": ["19", "26"], "dev-clean": ["84"], "dev-other": ["116"], "test-clean": ["1089"],
              "test-other": ["1688"]}
    texts = ["HELLO WORLD", "IT'S A TEST", "THE QUICK BROWN FOX"]
    for subset, speakers in spk_of.items():
        for spk in speakers:
            ch = ls / subset / spk / "198"
            ch.mkdir(parents=True)
            lines = []
            for i, t in enumerate(texts):
                uid = f"{spk}-198-{i:04d}"
                sf.write(ch / f"{uid}.flac", tone(0.2 + 0.05 * i, seed=i), SR)
                lines.append(f"{uid} {t}")
            if subset == "train-clean-100" and spk == "19":
                lines.append("19-198-0003 NO AUDIO FOR THIS LINE")
                sf.write(ch / "19-198-0009.flac", tone(0.2), SR)
            (ch / f"{spk}-198.trans.txt").write_text("\n".join(lines) + "\n")
    return ls


def make_aishell(root):
    """data_aishell/wav/{train,dev,test}/<spk>/*.wav + transcript; S0002 has a wav
    without a transcript line, and the transcript a line without audio."""
    d = root / "data_aishell"
    lines = []
    for split, spk in (("train", "S0002"), ("train", "S0003"), ("dev", "S0724"), ("test", "S0764")):
        for i, words in enumerate(["而 对 楼市", "成交 抑制 作用"]):
            uid = f"BAC009{spk}W{i + 121:04d}"
            p = d / "wav" / split / spk / f"{uid}.wav"
            p.parent.mkdir(parents=True, exist_ok=True)
            sf.write(p, tone(0.3, seed=i), SR)
            lines.append(f"{uid} {words}")
    sf.write(d / "wav" / "train" / "S0002" / "BAC009S0002W0999.wav", tone(0.3), SR)
    lines.append("BAC009S0002W0500 没有 音频")
    (d / "transcript").mkdir(parents=True)
    (d / "transcript" / "aishell_transcript_v0.8.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return d


PHN_A = ["h#", "sh", "iy", "hh", "ae", "dcl", "d", "y", "er", "q", "h#"]
PHN_B = ["h#", "bcl", "b", "ao", "ng", "pau", "epi", "ax-h", "h#"]


def make_timit(root):
    """TIMIT/TRAIN|TEST/<DR>/<SPK>/<UTT>.WAV|PHN: upper case in TRAIN, lower case in TEST;
    one converted UTT.WAV.wav; SA sentences; a TEST speaker in neither dev nor core test;
    a PHN without audio (SX99) and audio without a PHN (SX98) in TRAIN."""
    t = root / "TIMIT"

    def utt(spk_dir, name, phones, upper=True, converted=False, seed=0):
        ext = (lambda e: e.upper()) if upper else (lambda e: e.lower())
        stem = name.upper() if upper else name.lower()
        x = tone(0.4, seed=seed)
        if converted:
            sf.write(spk_dir / f"{stem}{ext('.wav')}.wav", x, SR)  # RIFF, as some copies have next to the SPHERE
        write_sphere(spk_dir / f"{stem}{ext('.wav')}", x)
        step = len(x) // len(phones)
        (spk_dir / f"{stem}{ext('.phn')}").write_text(
            "".join(f"{i * step} {(i + 1) * step} {p}\n" for i, p in enumerate(phones)))

    for spk in ("FCJF0", "MDAC0"):
        d = t / "TRAIN" / "DR1" / spk
        d.mkdir(parents=True)
        utt(d, "SA1", PHN_A)
        utt(d, "SI1027", PHN_A, seed=1)
        utt(d, "SX37", PHN_B, converted=spk == "MDAC0", seed=2)
    (t / "TRAIN" / "DR1" / "FCJF0" / "SX99.PHN").write_text("0 100 h#\n")
    write_sphere(t / "TRAIN" / "DR1" / "FCJF0" / "SX98.WAV", tone(0.2))
    for dr, spk in (("dr1", "faks0"), ("dr1", "mdab0"), ("dr2", "mxyz0")):
        d = t / "TEST" / dr / spk
        d.mkdir(parents=True)
        utt(d, "sa2", PHN_B, upper=False)
        utt(d, "si1573", PHN_A, upper=False, seed=3)
        utt(d, "sx13", PHN_B, upper=False, seed=4)
    return t


# ----------------------------------------------------------------------------- TIMIT phones
def test_timit_phone_table_is_one_stable_letter_per_phone():
    assert len(TIMIT_PHONES) == 61 and len(set(TIMIT_PHONE_CHARS.values())) == 61
    for p, c in TIMIT_PHONE_CHARS.items():
        # The tokenizer applies NFKC and may lower-case: neither may change a phone letter.
        assert len(c) == 1 and unicodedata.category(c).startswith("L"), p
        assert unicodedata.normalize("NFKC", c) == c and c.lower() == c and c != BLANK, p
    assert timit_decode(timit_encode(PHN_A)) == PHN_A
    assert timit_encode("h# sh iy") == "σʃi"
    with pytest.raises(DataError, match="not TIMIT phones: xx"):
        timit_encode(["h#", "xx"])
    with pytest.raises(DataError, match="not letters"):
        timit_decode("σ!")
    folded = {TIMIT_FOLD_39.get(p, p) for p in TIMIT_PHONES} - {None}
    assert len(folded) == 39 and "sil" in folded and "q" not in folded


def test_fold_61_to_39():
    assert fold_timit(PHN_A) == ["sil", "sh", "iy", "hh", "ae", "sil", "d", "y", "er", "sil"]
    assert fold_timit(["ax-h", "axr", "ix", "el", "em", "en", "nx", "eng", "zh", "ux", "hv", "ao"]) == \
        ["ah", "er", "ih", "l", "m", "n", "n", "ng", "sh", "uw", "hh", "aa"]
    assert fold_timit(["q", "q"]) == []
    with pytest.raises(DataError):
        fold_timit(["sil"])  # a 39-set name is not one of the 61


def test_phone_error_rate_hand_made():
    ref = "h# sh iy hh ae dcl d y er q h#"
    hyp = "h# sh ix hv eh dcl d y axr h#"
    e61, e39 = timit_phone_errors([ref], [hyp])
    # 61 phones: iy/ix, hh/hv, ae/eh, er/axr substituted, q deleted.
    assert (e61.substitutions, e61.deletions, e61.insertions, e61.ref_len) == (4, 1, 0, 11)
    # 39 phones: ix->ih, hv->hh, axr->er fold onto the reference; q is gone from both.
    assert (e39.substitutions, e39.deletions, e39.insertions, e39.ref_len) == (2, 0, 0, 10)
    # Closures fold to sil; letters (a model's output), phone strings and lists all work.
    e61, e39 = timit_phone_errors([timit_encode("h# bcl b h#")], [["h#", "pcl", "b", "h#"]])
    assert (e61.errors, e39.errors) == (1, 0)
    e61, e39 = timit_phone_errors(["h# s h#", "h# z h#"], ["h# s ih h#", ""])
    assert (e61.insertions, e61.deletions, e61.ref_len) == (1, 3, 6)
    with pytest.raises(ValueError):
        timit_phone_errors(["h#"], [])


def test_timit_text_through_the_tokenizer():
    texts = [timit_encode(PHN_A), timit_encode(PHN_B)]
    tok = Tokenizer.build(texts, word_delimiter=None, lowercase=False, strip_punctuation=False)
    for t in texts:
        assert tok.decode(tok.encode(t)) == t and len(tok.encode(t)) == len(timit_decode(t))
    # The letters survive the English defaults too (lower-casing, punctuation stripping).
    tok = Tokenizer.build(texts, word_delimiter=None)
    assert [tok.decode(tok.encode(t)) for t in texts] == texts


# ----------------------------------------------------------------------------- preparation
def test_prepare_librispeech(tmp_path, caplog):
    ls = make_librispeech(tmp_path / "corpus")
    out = tmp_path / "data"
    stats = prepare_librispeech(tmp_path / "corpus", out, ["train-clean-100", "dev-clean"], jobs=2)
    tr = stats["train-clean-100"]
    assert (tr.utterances, tr.no_audio, tr.no_transcript) == (6, 1, 1)
    assert tr.examples == {"no_audio": "19-198-0003", "no_transcript": "19-198-0009"}
    assert "1 no audio (e.g. 19-198-0003)" in tr.summary()
    assert "without an audio file" in caplog.text and "without a transcript line" in caplog.text
    utts = read_manifest(out / "train-clean-100.jsonl")
    assert [u.id for u in utts] == ["19-198-0000", "19-198-0001", "19-198-0002", "26-198-0000", "26-198-0001",
                                    "26-198-0002"]
    assert [u.text for u in utts[:3]] == ["hello world", "it's a test", "the quick brown fox"]
    assert all(Path(u.audio_filepath).is_file() and u.audio_filepath.endswith(".flac") for u in utts)
    assert utts[1].duration == pytest.approx(0.25) and utts[0].extra["speaker"] == "19"
    assert [u.id for u in read_manifest(out / "dev-clean.jsonl")] == ["84-198-0000", "84-198-0001", "84-198-0002"]
    # The LibriSpeech folder itself works as --corpus-dir too.
    prepare_librispeech(ls, tmp_path / "data2", ["dev-clean"])
    assert normalize_librispeech("  DON’T  STOP-ME  ") == "don't stop me"


def test_prepare_aishell(tmp_path, caplog):
    make_aishell(tmp_path / "corpus")
    stats = prepare_aishell(tmp_path / "corpus", tmp_path / "data", jobs=2)
    assert stats["train"].utterances == 4 and stats["train"].no_transcript == 1
    assert stats["dev"].utterances == 2 and stats["test"].utterances == 2
    assert stats["transcript lines without audio in any split"] == 1
    assert "have no audio file in any split (e.g. BAC009S0002W0500)" in caplog.text
    train = read_manifest(tmp_path / "data" / "train.jsonl")
    assert [u.text for u in train[:2]] == ["而对楼市", "成交抑制作用"]
    assert train[0].id == "BAC009S0002W0121" and train[0].extra["speaker"] == "S0002"
    assert all(Path(u.audio_filepath).is_file() for u in train)
    # data_aishell itself works as --corpus-dir too; manifests next to the corpus hold
    # relative paths, which resolve against the manifest's folder.
    prepare_aishell(tmp_path / "corpus" / "data_aishell", tmp_path / "corpus")
    rec = json.loads((tmp_path / "corpus" / "dev.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert rec["audio_filepath"] == "data_aishell/wav/dev/S0724/BAC009S0724W0121.wav"
    assert Path(read_manifest(tmp_path / "corpus" / "dev.jsonl")[0].audio_filepath).is_file()


def test_prepare_timit(tmp_path):
    make_timit(tmp_path / "corpus")
    out = tmp_path / "data"
    stats = prepare_timit(tmp_path / "corpus", out, jobs=2)
    tr = stats["train"]
    assert (tr.utterances, tr.excluded, tr.no_audio, tr.no_transcript) == (4, 2, 1, 1)
    assert tr.examples["no_audio"] == "fcjf0_sx99" and tr.examples["no_transcript"] == "fcjf0_sx98"
    train = read_manifest(out / "train.jsonl")
    assert [u.id for u in train] == ["fcjf0_si1027", "fcjf0_sx37", "mdac0_si1027", "mdac0_sx37"]
    assert train[0].extra["phones"] == " ".join(PHN_A) and timit_decode(train[0].text) == PHN_A
    assert train[0].audio_filepath.endswith("SI1027.WAV") and train[0].duration == pytest.approx(0.4)
    assert train[3].audio_filepath.endswith("SX37.WAV.wav")  # the converted copy when there is one
    dev, test = read_manifest(out / "dev.jsonl"), read_manifest(out / "test.jsonl")
    assert [u.id for u in dev] == ["faks0_si1573", "faks0_sx13"] and {u.extra["speaker"] for u in dev} <= TIMIT_DEV_SPEAKERS
    assert [u.id for u in test] == ["mdab0_si1573", "mdab0_sx13"]
    assert {u.extra["speaker"] for u in test} <= TIMIT_CORE_TEST_SPEAKERS
    assert len(TIMIT_CORE_TEST_SPEAKERS) == 24 and len(TIMIT_DEV_SPEAKERS) == 50
    assert not TIMIT_CORE_TEST_SPEAKERS & TIMIT_DEV_SPEAKERS
    table = (out / "phone_map.txt").read_text(encoding="utf-8").splitlines()
    assert len(table) == 61 and "sh\tʃ\tsh" in table and "q\tʔ\t-" in table and "bcl\tβ\tsil" in table


def test_wrong_layouts_name_what_is_missing(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no LibriSpeech subset directory"):
        prepare_librispeech(empty, tmp_path / "o")
    with pytest.raises(DataError, match="corpus directory not found"):
        prepare_librispeech(tmp_path / "nope", tmp_path / "o")
    make_librispeech(tmp_path / "ls")
    with pytest.raises(DataError, match="train-clean-360 not found"):
        prepare_librispeech(tmp_path / "ls", tmp_path / "o", ["dev-clean", "train-clean-360"])
    with pytest.raises(DataError, match="unknown LibriSpeech subset"):
        prepare_librispeech(tmp_path / "ls", tmp_path / "o", ["train-clean-99"])
    (tmp_path / "ls2" / "LibriSpeech" / "dev-clean" / "1" / "2").mkdir(parents=True)
    with pytest.raises(DataError, match="trans.txt"):
        prepare_librispeech(tmp_path / "ls2", tmp_path / "o", ["dev-clean"])

    with pytest.raises(DataError, match="no data_aishell/wav"):
        prepare_aishell(empty, tmp_path / "o")
    a = tmp_path / "ai" / "data_aishell"
    (a / "wav").mkdir(parents=True)
    with pytest.raises(DataError, match="aishell_transcript_v0.8.txt not found"):
        prepare_aishell(tmp_path / "ai", tmp_path / "o")
    (a / "transcript").mkdir()
    (a / "transcript" / "aishell_transcript_v0.8.txt").write_text("BAC009S0002W0122 而 对\n", encoding="utf-8")
    (a / "wav" / "S0002.tar.gz").write_bytes(b"")
    with pytest.raises(DataError, match="train, dev, test not found.*extract them first"):
        prepare_aishell(tmp_path / "ai", tmp_path / "o")

    with pytest.raises(DataError, match="no TRAIN and TEST folders"):
        prepare_timit(empty, tmp_path / "o")
    t = make_timit(tmp_path / "ti")
    (t / "TRAIN" / "DR1" / "FCJF0" / "SI1027.PHN").write_text("0 100 h#\n100 200 xx\n")
    with pytest.raises(DataError, match=r"SI1027.PHN:2: .*61 TIMIT phones"):
        prepare_timit(tmp_path / "ti", tmp_path / "o")
    t2 = make_timit(tmp_path / "ti2")
    for f in (t2 / "TEST" / "dr1" / "mdab0").iterdir():
        f.unlink()
    with pytest.raises(DataError, match="no usable utterances for test"):
        prepare_timit(tmp_path / "ti2", tmp_path / "o")


# ----------------------------------------------------------------------------- Kaldi dirs
def make_kaldi_dir(d, wavs, segments=False):
    d.mkdir(parents=True)
    (d / "wav.scp").write_text("".join(f"rec{i} {p}\n" if segments else f"utt{i} {p}\n" for i, p in enumerate(wavs)))
    if segments:
        (d / "segments").write_text("utt0 rec0 0.10 0.30\nutt1 rec0 0.30 0.50\nutt2 rec1 0.05 0.25\n")
        (d / "text").write_text("utt0 hello there\nutt1 general kenobi\nutt2 你好\n", encoding="utf-8")
    else:
        (d / "text").write_text("utt0 hello there\nutt1 general kenobi\n", encoding="utf-8")
        (d / "utt2spk").write_text("utt0 spkA\nutt1 spkB\n")


def as_tuples(utts):
    return [(u.id, os.path.realpath(u.audio_filepath), round(u.duration, 3), u.text, round(u.offset, 3),
             u.extra.get("speaker")) for u in utts]


def test_kaldi_round_trip(tmp_path, caplog):
    wavs = []
    for i in range(2):
        wavs.append(tmp_path / "audio" / f"a{i}.wav")
        wavs[-1].parent.mkdir(exist_ok=True)
        sf.write(wavs[-1], tone(0.6, seed=i), SR)
    make_kaldi_dir(tmp_path / "k", wavs)
    first = import_kaldi(tmp_path / "k", tmp_path / "m.jsonl")
    assert [(u.id, u.extra["speaker"]) for u in first] == [("utt0", "spkA"), ("utt1", "spkB")]
    counts = export_kaldi(tmp_path / "m.jsonl", tmp_path / "k2")
    assert counts == {"wav.scp": 2, "text": 2, "utt2spk": 2, "spk2utt": 2}
    assert (tmp_path / "k2" / "spk2utt").read_text() == "spkA utt0\nspkB utt1\n"
    again = import_kaldi(tmp_path / "k2", tmp_path / "m2.jsonl")
    assert as_tuples(again) == as_tuples(first) == as_tuples(read_manifest(tmp_path / "m2.jsonl"))

    # Segments: offsets survive; one recording per audio file; a speaker-less manifest
    # gets utt2spk = the utterance id.
    make_kaldi_dir(tmp_path / "s", wavs, segments=True)
    seg = import_kaldi(tmp_path / "s", tmp_path / "s.jsonl")
    assert [(u.offset, round(u.duration, 3)) for u in seg] == [(0.1, 0.2), (0.3, 0.2), (0.05, 0.2)]
    export_kaldi(tmp_path / "s.jsonl", tmp_path / "s2")
    assert (tmp_path / "s2" / "wav.scp").read_text().splitlines() == [f"a0 {wavs[0]}", f"a1 {wavs[1]}"]
    assert (tmp_path / "s2" / "segments").read_text().splitlines()[0] == "utt0 a0 0.100 0.300"
    assert (tmp_path / "s2" / "utt2spk").read_text().splitlines()[0] == "utt0 utt0"
    assert as_tuples(read_kaldi_dir(tmp_path / "s2")) == [t[:5] + (None,) for t in as_tuples(seg)]
    # Exporting whole files over that dir removes its now-wrong segments file.
    export_kaldi(tmp_path / "m.jsonl", tmp_path / "s2")
    assert not (tmp_path / "s2" / "segments").exists()
    assert as_tuples(import_kaldi(tmp_path / "s2", tmp_path / "m3.jsonl")) == as_tuples(first)
    # Text without audio and audio without text are skipped, and said.
    with open(tmp_path / "k" / "text", "a") as f:
        f.write("utt9 no audio\n")
    (tmp_path / "k" / "wav.scp").write_text((tmp_path / "k" / "wav.scp").read_text() + f"utt8 {wavs[0]}\n")
    assert len(import_kaldi(tmp_path / "k", tmp_path / "m4.jsonl")) == 2
    assert "1 line(s) of text have no audio" in caplog.text and "1 utterance(s) have no line in text" in caplog.text


def test_kaldi_errors(tmp_path):
    d = tmp_path / "pipe"
    d.mkdir()
    (d / "wav.scp").write_text("utt0 sox a.wav -t wav - |\n")
    (d / "text").write_text("utt0 hi\n")
    with pytest.raises(DataError, match="shell pipeline"):
        import_kaldi(d, tmp_path / "m.jsonl")
    assert not (tmp_path / "m.jsonl").exists()
    (tmp_path / "bad").mkdir()
    with pytest.raises(DataError, match="no wav.scp"):
        import_kaldi(tmp_path / "bad", tmp_path / "m.jsonl")
    sf.write(tmp_path / "a.wav", tone(), SR)
    (tmp_path / "m.jsonl").write_text(json.dumps({"id": "utt 0", "audio_filepath": "a.wav", "text": "x"}) + "\n")
    with pytest.raises(DataError, match="whitespace"):
        export_kaldi(tmp_path / "m.jsonl", tmp_path / "out")
    (tmp_path / "m.jsonl").write_text(json.dumps({"id": "u0", "audio_filepath": "a.wav", "text": "x",
                                                  "speaker": "two words"}) + "\n")
    with pytest.raises(DataError, match="speaker"):
        export_kaldi(tmp_path / "m.jsonl", tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# ----------------------------------------------------------------------------- CLI + recipes
def test_cli_data_commands(tmp_path, capsys):
    make_timit(tmp_path / "corpus")
    assert main(["data", "prepare-timit", "--corpus-dir", str(tmp_path / "corpus"), "--out", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    assert "TIMIT train: 4 utterances" in out and "2 excluded on purpose" in out
    hyp = tmp_path / "hyp.txt"
    # Letters for one utterance, phone names for the other.
    hyp.write_text(f"mdab0_si1573 {timit_encode(PHN_A)}\nmdab0_sx13 h# bcl b aa ng h#\n", encoding="utf-8")
    assert main(["data", "score-timit", "--data", str(tmp_path / "d" / "test.jsonl"), "--hyp", str(hyp),
                 "--details"]) == 0
    out = capsys.readouterr().out
    # sx13 ref: h# bcl b ao ng pau epi ax-h h# (9) -> 61: ao/aa sub, pau epi ax-h deleted.
    assert "PER (61 phones) 20.00% [4 / 20, 1 sub, 3 del, 0 ins]" in out
    # 39: sil sil b aa ng sil sil ah sil vs sil sil b aa ng sil -> 3 deletions of 19.
    assert "PER (39 phones, Lee & Hon folding) 15.79% [3 / 19, 0 sub, 3 del, 0 ins]" in out
    assert "mdab0_sx13\tREF: sil sil b aa ng sil sil ah sil" in out
    assert main(["data", "score-timit", "--data", str(tmp_path / "d" / "test.jsonl")]) == 1
    assert "either --model" in capsys.readouterr().err
    k = tmp_path / "k"
    assert main(["data", "export-kaldi", str(tmp_path / "d" / "dev.jsonl"), "-o", str(k)]) == 0
    assert main(["data", "import-kaldi", str(k), "-o", str(tmp_path / "back.jsonl")]) == 0
    assert "wrote" in capsys.readouterr().out
    assert [u.extra["speaker"] for u in read_manifest(tmp_path / "back.jsonl")] == ["faks0", "faks0"]
    assert main(["data", "prepare-aishell", "--corpus-dir", str(tmp_path / "nope"), "--out", str(tmp_path / "x")]) == 1
    assert "corpus directory not found" in capsys.readouterr().err


def run_recipe(name, corpus, tmp_path, *extra):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["bash", str(RECIPES / name / "run.sh"), "--corpus-dir", str(corpus), "--stop-stage", "0",
                           "--data", str(tmp_path / name), *extra], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("name", ["librispeech", "aishell", "timit"])
def test_recipe_stage_0(name, tmp_path):
    corpus = tmp_path / "corpus"
    {"librispeech": make_librispeech, "aishell": make_aishell, "timit": make_timit}[name](corpus)
    r = run_recipe(name, corpus, tmp_path)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "== stage 0" in r.stdout and "== stage 1" not in r.stdout
    data = tmp_path / name
    if name == "librispeech":
        names = ["train", "train-clean-100", "dev-clean", "dev-other", "test-clean", "test-other"]
        assert len(read_manifest(data / "train.jsonl")) == 6
    else:
        names = ["train", "dev", "test"]
    for n in names:
        assert read_manifest(data / f"{n}.jsonl"), n
    # Stage 0 without a corpus says what it needs.
    r = subprocess.run(["bash", str(RECIPES / name / "run.sh"), "--stop-stage", "0", "--data", str(tmp_path / "x")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--corpus-dir" in r.stderr


def test_recipe_configs_load():
    from ctcasr.train import load_train_config

    for name in ("librispeech", "aishell", "timit"):
        model_cfg, train_cfg = load_train_config(RECIPES / name / "conf" / "blstm.yaml")
        assert model_cfg["encoder"]["kind"] == "blstm" and model_cfg["encoder"]["layers"] == 4
        assert model_cfg["encoder"]["hidden"] == 320 and train_cfg["epochs"] > 0
    assert load_train_config(RECIPES / "aishell" / "conf" / "blstm.yaml")[0]["tokenizer"]["word_delimiter"] is None


def test_score_timit_decodes_with_a_model(tmp_path, capsys):
    """--model path: an (untrained) phone model's letters come back as phones and are scored."""
    from ctcasr.model import CTCModel, save_model_dir

    make_timit(tmp_path / "corpus")
    prepare_timit(tmp_path / "corpus", tmp_path / "d")
    texts = [u.text for u in read_manifest(tmp_path / "d" / "train.jsonl")]
    tok = Tokenizer.build(texts, word_delimiter=None, lowercase=False, strip_punctuation=False)
    model = CTCModel({"encoder": {"kind": "blstm", "hidden": 8, "layers": 1, "dropout": 0.0}}, len(tok))
    save_model_dir(model, tok, tmp_path / "model")
    assert main(["data", "score-timit", "--model", str(tmp_path / "model"), "--data", str(tmp_path / "d" / "test.jsonl"),
                 "--decoder", "greedy", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "PER (61 phones)" in out and "/ 20," in out and "/ 19," in out and "utterances 2" in out


def test_evaluate_without_word_delimiter_reports_cer_and_ser_not_wer(tmp_path, capsys):
    """A model that writes no word delimiter (Chinese) has no words: each sentence would be
    one "word", so `evaluate` prints CER and the sentence error rate, and no WER line."""
    from ctcasr.model import CTCModel, save_model_dir

    make_timit(tmp_path / "corpus")
    prepare_timit(tmp_path / "corpus", tmp_path / "d")
    texts = [u.text for u in read_manifest(tmp_path / "d" / "train.jsonl")]
    tok = Tokenizer.build(texts, word_delimiter=None, lowercase=False, strip_punctuation=False)
    save_model_dir(CTCModel({"encoder": {"kind": "blstm", "hidden": 8, "layers": 1, "dropout": 0.0}}, len(tok)),
                   tok, tmp_path / "model")
    assert main(["evaluate", "--model", str(tmp_path / "model"), "--data", str(tmp_path / "d" / "test.jsonl"),
                 "--decoder", "greedy", "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("CER ") and not any(line.startswith("WER") for line in lines)
    assert any(line.startswith("SER 100.00% [2 / 2 utterances with an error] (no WER") for line in lines)


def test_librispeech_recipe_stage_3(tmp_path):
    """Stage 3's shell: the word 3-gram from the training transcripts into the model
    directory, then greedy and beam+LM scoring (an untrained model stands in for stage 2)."""
    from ctcasr.model import CTCModel, save_model_dir

    make_librispeech(tmp_path / "corpus")
    assert run_recipe("librispeech", tmp_path / "corpus", tmp_path).returncode == 0
    texts = [u.text for u in read_manifest(tmp_path / "librispeech" / "train.jsonl")]
    tok = Tokenizer.build(texts)
    save_model_dir(CTCModel({"encoder": {"kind": "blstm", "hidden": 8, "layers": 1, "dropout": 0.0}}, len(tok)), tok,
                   tmp_path / "exp")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    r = subprocess.run(["bash", str(RECIPES / "librispeech" / "run.sh"), "--stage", "3", "--data",
                        str(tmp_path / "librispeech"), "--exp", str(tmp_path / "exp"), "--eval-subsets", "dev-clean"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "-- dev-clean beam 32 + word 3-gram" in r.stdout
    assert (tmp_path / "exp" / "lm.arpa").read_text().startswith("\\data\\")
    assert "hello world" in (tmp_path / "exp" / "lm_train.txt").read_text()
    for f in ("dev-clean_greedy.txt", "dev-clean_beam_lm.txt"):
        assert (tmp_path / "exp" / f).read_text().startswith("WER ")
