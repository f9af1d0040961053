"""ctcasr.synth: voice inventory, synthesis per engine, augmentation, corpus builder, CLI.

Real audio from the Debian TTS engines (scripts/install_tts.sh). Tests needing an engine
that is missing skip, or fail under CTCASR_REQUIRE_TTS=1 (see synth_fixtures).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from synth_fixtures import make_corpus, require_engine  # noqa: F401  (make_corpus is a fixture)

from ctcasr import synth
from ctcasr.synth import SynthError, Voice

SR = 16000
SENTENCE = "The quick brown fox jumps over the lazy dog."
REPO = Path(__file__).resolve().parents[1]


def _speechlike(seconds=2.0, sr=SR, seed=0):
    """A deterministic stand-in for speech (no engine needed): harmonics of a gliding F0,
    syllable-rate amplitude modulation, and silent edges."""
    t = np.arange(int(seconds * sr)) / sr
    f0 = 120 + 20 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 20))
    x *= np.clip(np.sin(2 * np.pi * 4 * t), 0, None)
    x[: int(0.2 * sr)] = 0
    x[-int(0.2 * sr):] = 0
    return (0.1 * x / np.abs(x).max()).astype(np.float32)


def _median_f0(x, sr=SR):
    """Median F0 (Hz) of the loud frames by autocorrelation; crude but engine-agnostic."""
    n, hop = int(0.04 * sr), int(0.01 * sr)
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[::hop]
    energy = (frames ** 2).mean(axis=1)
    frames = frames[energy > 0.1 * energy.max()]
    lo, hi = sr // 400, sr // 60
    f0s = []
    for fr in frames:
        fr = fr - fr.mean()
        ac = np.correlate(fr, fr, "full")[n - 1:]
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.4 * ac[0]:
            f0s.append(sr / lag)
    return float(np.median(f0s)) if f0s else float("nan")


# ----------------------------------------------------------------------------- voices
@pytest.mark.parametrize("s", ["espeak:en-us", "espeak:en-us+m3", "espeak:cmn-latn-pinyin+f2",
                               "flite:slt", "festival:kal_diphone", "festival:cmu_us_slt_arctic_hts",
                               "mbrola:us1", "mbrola:de1-en", "pico:en-GB", "rhvoice:evgeniy-eng"])
def test_voice_parse_round_trip(s):
    v = Voice.parse(s)
    assert str(v) == s and Voice.parse(str(v)) == v and v.id == s
    assert Voice.parse(v) is v
    assert hash(v) == hash(Voice.parse(s))


@pytest.mark.parametrize("bad", ["", "espeak", "nosuch:voice", "espeak:", "espeak:en-us+", "flite:s l t"])
def test_voice_parse_rejects_bad_ids(bad):
    with pytest.raises(SynthError):
        Voice.parse(bad)


def test_inventory_round_trips_and_is_sorted_stably():
    voices = synth.list_voices("en")
    assert voices == synth.list_voices("en")
    assert all(Voice.parse(str(v)) == v for v in voices)
    assert len({str(v) for v in voices}) == len(voices)
    sorted(voices)  # orderable (variant "" not None)


@pytest.mark.parametrize("engine", synth.ENGINES)
def test_inventory_per_engine(engine):
    require_engine(engine)
    voices = [v for v in synth.list_voices("en") if v.engine == engine]
    assert voices, f"{engine} installed but contributes no voices"
    ids = {str(v) for v in voices}
    if engine == "espeak":
        names = {v.name for v in voices}
        assert {"en-us", "en-gb"} <= names
        variants = {v.variant for v in voices}
        assert {"", "m3", "f2", "klatt", "whisper"} <= variants
        assert not variants & set(synth.EXCLUDED_ESPEAK_VARIANTS)
        assert len(voices) >= 8 * 20
        everything = synth.list_voices("en", include_excluded=True)
        assert len(everything) > len(synth.list_voices("en"))
    elif engine == "flite":
        assert "flite:awb_time" not in ids  # limited-domain clock voice
    assert all(v.language == "en" for v in voices)


def test_every_espeak_variant_changes_the_voice():
    # A variant espeak-ng does not know is silently ignored: the audio would be the plain
    # voice under another label, and a duplicate voice defeats train/test voice splits.
    require_engine("espeak")
    base = synth.synthesize("hello world", "espeak:en-us", pad=(0.1, 0.1))
    variants = {v.variant for v in synth.list_voices("en") if v.engine == "espeak" and v.variant}
    assert len(variants) > 50
    for var in sorted(variants):
        x = synth.synthesize("hello world", Voice("espeak", "en-us", var), pad=(0.1, 0.1))
        assert len(x) != len(base) or not np.allclose(x, base, atol=1e-3), f"{var} sounds like plain en-us"


def test_zh_inventory_reads_han_characters():
    require_engine("espeak")
    voices = synth.list_voices("zh")
    assert voices and all(v.name == "cmn-latn-pinyin" and v.language == "zh" for v in voices)
    # Han characters must come out as the same phonemes as their tone-numbered pinyin
    # (plain `cmn` spells 好 as English letters instead).
    assert synth.espeak_phonemes("好棒棒", voices[0]) == synth.espeak_phonemes("hao3 bang4 bang4", voices[0])
    x = synth.synthesize("我们今天去北京", Voice("espeak", "cmn-latn-pinyin", "f2"))
    assert 1.0 < len(x) / SR < 5.0


def test_select_voices_globs_and_disjoint_split():
    voices = [Voice.parse(s) for s in [
        "espeak:en-us", "espeak:en-us+m3", "espeak:en-us+f2", "espeak:en-gb+m3", "espeak:en-us-nyc+m1",
        "flite:kal", "flite:slt", "festival:kal_diphone", "flite:kal",
    ]]
    test_pats = ["flite:slt", "espeak:*+f2", "festival:*"]
    test = synth.select_voices(voices, test_pats)
    train = synth.select_voices(voices, None, exclude=test_pats)
    assert [str(v) for v in test] == ["espeak:en-us+f2", "flite:slt", "festival:kal_diphone"]
    assert not {str(v) for v in test} & {str(v) for v in train}
    assert len(test) + len(train) == len(set(voices))  # duplicates dropped, nothing lost
    assert [str(v) for v in synth.select_voices(voices, ["espeak:en-us+*"])] == ["espeak:en-us+m3", "espeak:en-us+f2"]
    assert synth.select_voices(["flite:kal", "flite:slt"], ["flite:*"], exclude=["*:kal"]) == [Voice("flite", "slt")]
    assert synth.select_voices(voices, ["nomatch:*"]) == []
    # Same recorded speaker across engines / accents.
    assert Voice.parse("flite:kal16").speaker == Voice.parse("festival:kal_diphone").speaker
    assert Voice.parse("flite:slt").speaker == Voice.parse("festival:cmu_us_slt_arctic_hts").speaker
    assert Voice.parse("espeak:en-us+m3").speaker == Voice.parse("espeak:en-gb+m3").speaker != Voice.parse("espeak:en-gb").speaker


# ----------------------------------------------------------------------------- synthesis
def _first_voice(engine):
    require_engine(engine)
    voices = [v for v in synth.list_voices("en") if v.engine == engine]
    if not voices:
        pytest.fail(f"{engine} is installed but has no voices")
    return voices[0]


@pytest.mark.parametrize("engine", synth.ENGINES)
def test_synthesize_each_engine(engine):
    voice = _first_voice(engine)
    x = synth.synthesize(SENTENCE, voice, rng=np.random.default_rng(0))
    assert x.dtype == np.float32 and x.ndim == 1
    assert np.all(np.isfinite(x))
    assert 1.5 < len(x) / SR < 6.0, len(x) / SR
    assert 0.05 < np.abs(x).max() <= 1.0
    # 0.1-0.3 s of silence at each end, speech in between.
    nz = np.flatnonzero(np.abs(x) > 1e-4)
    assert 0.08 * SR <= nz[0] <= 0.35 * SR
    assert 0.08 * SR <= len(x) - nz[-1] <= 0.35 * SR
    # Deterministic for the same arguments.
    assert np.array_equal(x, synth.synthesize(SENTENCE, voice, rng=np.random.default_rng(0)))


def test_synthesize_sample_rate_and_file(tmp_path):
    require_engine("espeak")
    x8 = synth.synthesize("hello world", "espeak:en-us", sample_rate=8000, pad=(0.2, 0.2))
    x16 = synth.synthesize("hello world", "espeak:en-us", sample_rate=16000, pad=(0.2, 0.2))
    assert abs(len(x16) / 16000 - len(x8) / 8000) < 0.02
    path = tmp_path / "a" / "hello.wav"
    dur = synth.synthesize_to_file("hello world", "espeak:en-us+f2", path)
    info = sf.info(str(path))
    assert info.samplerate == SR and info.channels == 1 and info.subtype == "PCM_16"
    assert abs(info.duration - dur) < 1e-3


@pytest.mark.parametrize("engine", synth.ENGINES)
def test_rate_and_pitch_controls(engine):
    voice = _first_voice(engine)
    kw = {"pad": (0.1, 0.1)}
    slow = synth.synthesize(SENTENCE, voice, rate=0.8, **kw)
    fast = synth.synthesize(SENTENCE, voice, rate=1.3, **kw)
    assert len(fast) < 0.85 * len(slow)
    low = _median_f0(synth.synthesize(SENTENCE, voice, pitch=0.8, **kw))
    high = _median_f0(synth.synthesize(SENTENCE, voice, pitch=1.3, **kw))
    assert high > 1.25 * low, (low, high)


def test_synthesis_errors_name_voice_and_text():
    require_engine("espeak")
    with pytest.raises(SynthError, match=r"espeak:en-us.*empty text"):
        synth.synthesize("   ", "espeak:en-us")
    with pytest.raises(SynthError, match=r"espeak:en-us\+nosuch.*variant.*'hello'"):
        synth.synthesize("hello", "espeak:en-us+nosuch")
    with pytest.raises(SynthError, match=r"espeak:xx-nope"):
        synth.synthesize("hello", "espeak:xx-nope")
    if synth.engine_available("flite"):  # flite would silently fall back to kal
        with pytest.raises(SynthError, match=r"flite:nosuch.*'hello'"):
            synth.synthesize("hello", "flite:nosuch")
    if synth.engine_available("festival"):
        with pytest.raises(SynthError, match=r"festival:kal_diphone.*non-ASCII"):
            synth.synthesize("好棒棒", "festival:kal_diphone")
        # festival's server survives a bad request and keeps working.
        assert synth._festival_server().run(["(voice_nosuch)"]) is not None
        assert len(synth.synthesize("still fine", "festival:kal_diphone")) > SR // 4


def test_festival_voices_that_draw_random_numbers_are_deterministic():
    # The Czech voices vary phone durations with festival's rand; our festival server is
    # reused, so without a seed per request an utterance came out different (10 ms shorter
    # each time) depending on what the server had said before: corpora were not reproducible.
    require_engine("festival")
    if "czech_ph" not in synth._festival_voices(all_languages=True):
        pytest.skip("festvox-czech-ph not installed (recipes/digits stage 0 installs it)")
    first = synth.synthesize("sedm osm", "festival:czech_ph", rng=1)
    synth.synthesize("jedna dva tri", "festival:czech_ph", rate=0.8, pitch=1.2, rng=1)
    synth.synthesize("one two", "festival:kal_diphone", rng=1)
    for _ in range(2):
        assert np.array_equal(synth.synthesize("sedm osm", "festival:czech_ph", rng=1), first)
    # a fresh server (another process's) says it the same way
    synth._festival_server("czech_ph").close()
    assert np.array_equal(synth.synthesize("sedm osm", "festival:czech_ph", rng=1), first)
    # and the randomness is still there across texts and rates (not one fixed draw)
    assert len(synth.synthesize("sedm osm", "festival:czech_ph", rate=0.99, rng=1)) != len(first)


def test_texts_that_look_like_options_are_spoken():
    require_engine("espeak")
    x = synth.synthesize("-v --help", "espeak:en-us")
    assert len(x) > 0.5 * SR


def _each_speaks_and_none_alike(voices):
    """Each voice says a short phrase, and no two outputs are the same audio (an engine that
    falls back to a default voice would make two ids one speaker)."""
    seen = {}
    for v in voices:
        x = synth.synthesize("one two three", v, pad=(0.1, 0.1))
        assert 0.5 < len(x) / SR < 3.0, (v, len(x) / SR)
        key = (len(x), round(float(np.abs(x).sum()), 2))
        assert key not in seen, f"{v} sounds like {seen.get(key)}"
        seen[key] = v


def test_mbrola_voices_are_recorded_people():
    # Each MBROLA database is one person, whatever espeak-ng voice drives it: de1-en (English
    # text) is the speaker de1, so a speaker-disjoint split keeps both on one side.
    assert Voice.parse("mbrola:de1-en").speaker == Voice.parse("mbrola:de1").speaker == "mbrola:de1"
    assert Voice.parse("mbrola:de1-en").speaker != Voice.parse("mbrola:de2-en").speaker
    assert Voice.parse("pico:en-US").speaker != Voice.parse("pico:en-GB").speaker
    require_engine("mbrola")
    voices = [v for v in synth.list_voices("en") if v.engine == "mbrola"]
    assert {"us1", "us2", "us3", "en1", "de1-en"} <= {v.name for v in voices}
    assert all(v.language == "en" and not v.variant for v in voices)
    # every listed voice speaks (its database is installed), and no two sound the same
    _each_speaks_and_none_alike(voices)
    with pytest.raises(SynthError, match=r"mbrola:zz9-en.*needs the package mbrola-zz9"):
        synth.synthesize("hello", "mbrola:zz9-en")


def test_pico_speaks_markup_characters_as_text():
    require_engine("pico")
    assert {"en-US", "en-GB"} <= {v.name for v in synth.list_voices("en") if v.engine == "pico"}
    # Pico reads its own markup (<speed>, <pitch>) from the text: a transcript's <, > and &
    # must be spoken, not parsed; nor may a leading '-' be taken for an option.
    plain = synth.synthesize("one two three four", "pico:en-US", pad=(0.1, 0.1))
    marked = synth.synthesize("one <two> & three four", "pico:en-US", pad=(0.1, 0.1))
    assert len(marked) > len(plain)
    assert len(synth.synthesize("-w --help", "pico:en-GB")) > 0.3 * SR
    with pytest.raises(SynthError, match=r"pico:xx-YY.*no language"):
        synth.synthesize("hello", "pico:xx-YY")


def test_rhvoice_voices_and_their_speakers():
    # alan and slt are built from the CMU ARCTIC recordings of awb and slt, who speak in
    # flite and festival too: one speaker each for speaker-disjoint splits.
    assert Voice.parse("rhvoice:alan").speaker == Voice.parse("flite:awb").speaker
    assert Voice.parse("rhvoice:slt").speaker == Voice.parse("flite:slt").speaker
    assert Voice.parse("rhvoice:bdl").speaker not in {Voice.parse(s).speaker for s in ("flite:kal", "flite:rms", "rhvoice:clb")}
    require_engine("rhvoice")
    names = {v.name for v in synth.list_voices("en") if v.engine == "rhvoice"}
    assert {"alan", "bdl", "clb", "slt"} <= names
    # RHVoice-test speaks with its default voice when the profile is unknown: we refuse.
    with pytest.raises(SynthError, match=r"rhvoice:nosuch.*no English voice"):
        synth.synthesize("hello", "rhvoice:nosuch")
    # text on stdin in plain-text mode: a word in angle brackets is spoken, not taken for a
    # tag (RHVoice says nothing for '&'), and a leading dash is not an option
    plain = synth.synthesize("one three four", "rhvoice:clb", pad=(0.1, 0.1))
    marked = synth.synthesize("one <two> & three four", "rhvoice:clb", pad=(0.1, 0.1))
    assert len(marked) > len(plain) + 0.15 * SR
    assert len(synth.synthesize("-p --help", "rhvoice:bdl")) > 0.3 * SR
    # every voice speaks, and no two sound the same
    _each_speaks_and_none_alike([f"rhvoice:{name}" for name in sorted(names)])


# ----------------------------------------------------------------------------- augmentation
@pytest.mark.parametrize("kind", synth.NOISE_KINDS)
def test_add_noise_snr_length_determinism(kind):
    x = _speechlike()
    for snr in (0.0, 10.0, 25.0):
        y = synth.add_noise(x, snr, np.random.default_rng(1), kind)
        assert y.dtype == np.float32 and len(y) == len(x)
        measured = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean((y - x).astype(np.float64) ** 2))
        assert abs(measured - snr) < 0.2, (kind, snr, measured)
    a = synth.add_noise(x, 10, np.random.default_rng(7), kind)
    b = synth.add_noise(x, 10, np.random.default_rng(7), kind)
    c = synth.add_noise(x, 10, np.random.default_rng(8), kind)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_noise_colours_and_babble():
    rng = np.random.default_rng(0)
    f = np.fft.rfftfreq(4 * SR, 1 / SR)

    def band_db(n, lo, hi):
        s = np.abs(np.fft.rfft(n)) ** 2
        return 10 * np.log10(s[(f >= lo) & (f < hi)].mean())

    for kind, slope in (("white", 0), ("pink", -3), ("brown", -6)):  # dB per octave
        n = synth.make_noise(kind, 4 * SR, rng)
        assert abs(np.sqrt(np.mean(n ** 2)) - 1) < 1e-3
        measured = (band_db(n, 3200, 6400) - band_db(n, 200, 400)) / 4
        assert abs(measured - slope) < 1.0, (kind, measured)
    b = synth.make_noise("babble", 3 * SR, rng)
    assert np.all(np.isfinite(b)) and abs(np.sqrt(np.mean(b ** 2)) - 1) < 1e-3
    fb = np.fft.rfftfreq(len(b), 1 / SR)
    sb = np.abs(np.fft.rfft(b)) ** 2
    assert sb[(fb > 100) & (fb < 4000)].sum() > 0.8 * sb.sum()  # speech band, like real babble
    b1, b2 = (synth.make_noise("babble", SR, np.random.default_rng(5)) for _ in range(2))
    assert np.array_equal(b1, b2)
    with pytest.raises(ValueError):
        synth.make_noise("purple", 100, rng)


def test_add_noise_from_array_and_silence():
    x = _speechlike()
    rec = synth.make_noise("pink", SR // 3, np.random.default_rng(3))  # shorter: gets looped
    y = synth.add_noise(x, 5.0, np.random.default_rng(0), noise=rec)
    assert len(y) == len(x)
    assert abs(10 * np.log10(np.mean(x ** 2) / np.mean((y - x) ** 2)) - 5.0) < 0.2
    z = np.zeros(1000, np.float32)
    assert np.array_equal(synth.add_noise(z, 10, np.random.default_rng(0)), z)


def test_reverberate():
    x = _speechlike()
    short = synth.reverberate(x, SR, 0.2, np.random.default_rng(0), drr_db=0)
    long_ = synth.reverberate(x, SR, 0.9, np.random.default_rng(0), drr_db=0)
    for y in (short, long_):
        assert y.dtype == np.float32 and len(y) == len(x)
        assert abs(np.sqrt(np.mean(y ** 2)) / np.sqrt(np.mean(x ** 2)) - 1) < 1e-3
    # The dry signal is silent in its last 0.2 s; a longer RT60 leaves more there.
    tail = slice(-int(0.15 * SR), None)
    assert np.mean(long_[tail] ** 2) > 3 * np.mean(short[tail] ** 2) > 0
    assert np.array_equal(short, synth.reverberate(x, SR, 0.2, np.random.default_rng(0), drr_db=0))


def test_fft_size_is_the_smallest_5_smooth_length():
    def smooth(m):
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        return m == 1

    for n in list(range(1, 2000)) + [46399, 65537, 100_003]:
        m = synth.fft_size(n)
        assert m >= n and smooth(m)
        assert not any(smooth(k) for k in range(n, m)), n
    assert synth.fft_size(46_399) == 46_656 < 65_536


def test_reverberate_is_the_linear_convolution():
    # The FFT length is no power of two: the result must still be the plain convolution
    # (no circular wrap-around of the room's tail onto the start), cut to len(x), RMS kept.
    rng = np.random.default_rng(3)
    x = rng.standard_normal(3001).astype(np.float32) * 0.1
    h = rng.standard_normal(1500) * np.exp(-np.arange(1500) / 300.0)
    h[0] = 1.0
    y = synth.reverberate(x, SR, 0.5, rng, rir=h)
    ref = np.convolve(x.astype(np.float64), h.astype(np.float32).astype(np.float64))[: len(x)]
    ref *= np.sqrt(np.mean(x.astype(np.float64) ** 2) / np.mean(ref ** 2))
    assert np.allclose(y, ref, atol=1e-6)


@pytest.mark.parametrize("factor", [0.9, 1.0, 1.1])
def test_speed_perturb_length(factor):
    x = _speechlike(seconds=1.7)
    y = synth.speed_perturb(x, SR, factor)
    assert y.dtype == np.float32 and len(y) == round(len(x) / factor)
    if factor == 1.0:
        assert np.array_equal(x, y)
    else:  # pitch moves with speed, like Kaldi's sox speed
        assert abs(_median_f0(y) / _median_f0(x) - factor) < 0.05


def test_telephone_band_limit():
    x = synth.add_noise(_speechlike(), 20, np.random.default_rng(0), "white")
    y = synth.telephone(x, SR)
    assert y.dtype == np.float32 and len(y) == len(x)
    s = np.abs(np.fft.rfft(y)) ** 2
    f = np.fft.rfftfreq(len(y), 1 / SR)
    assert s[f > 4000].sum() < 1e-4 * s.sum()
    assert s[f < 150].sum() < 0.01 * s.sum()
    assert np.array_equal(y, synth.telephone(x, SR))


def test_random_augment_and_normalize():
    x = _speechlike()
    cfg = synth.AugmentConfig(noise_prob=1, reverb_prob=1, telephone_prob=1, speeds=(1.1,), level_range_dbfs=(-20, -20))
    y, info = synth.random_augment(x, SR, np.random.default_rng(0), cfg)
    assert set(info) >= {"speed", "reverb_rt60", "noise", "telephone", "level_dbfs"}
    assert len(y) == round(len(x) / 1.1)
    assert abs(10 * np.log10(np.mean(y.astype(np.float64) ** 2)) + 20) < 0.1
    y2, info2 = synth.random_augment(x, SR, np.random.default_rng(0), cfg)
    assert np.array_equal(y, y2) and info == info2


# ----------------------------------------------------------------------------- corpus
def _read_manifest(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_build_corpus_manifest_and_failures(tmp_path):
    require_engine("espeak")
    texts = ["one two three", "hello world", "seven bananas", "good morning", "turn left", "nine"]
    good = ["espeak:en-us", "espeak:en-gb+f2", "espeak:en-us+m3"]
    voices = good + ["espeak:en-us+nosuch"]  # fails every time: must be counted, not crash
    out, manifest = tmp_path / "audio", tmp_path / "lists" / "train.jsonl"
    stats = synth.build_corpus(texts, voices, out, manifest, seed=3, jobs=2, utts_per_text=2,
                               noise_prob=0.5, reverb_prob=0.5, speeds=(0.9, 1.0, 1.1), progress=False)
    assert stats.count + stats.failures == 12
    assert stats.failures == stats.failed_per_voice.get("espeak:en-us+nosuch") == 3  # 12 slots / 4 voices
    assert set(stats.per_voice) == set(good) and all(c == 3 for c in stats.per_voice.values())
    assert stats.failure_examples and "nosuch" in stats.failure_examples[0]
    rows = _read_manifest(manifest)
    assert len(rows) == stats.count
    assert not list(manifest.parent.glob("*.tmp*"))
    for r in rows:
        assert set(r) >= {"audio_filepath", "duration", "text", "voice", "aug"}
        assert not os.path.isabs(r["audio_filepath"]) and r["audio_filepath"].startswith("../audio/")
        wav = manifest.parent / r["audio_filepath"]
        info = sf.info(str(wav))
        assert info.samplerate == SR and info.channels == 1 and info.subtype == "PCM_16"
        assert abs(info.duration - r["duration"]) < 2e-3
        assert r["text"] in texts and r["voice"] in good
        assert 0.85 <= r["aug"]["rate"] <= 1.2
    assert abs(stats.seconds - sum(r["duration"] for r in rows)) < 0.05
    assert stats.hours == pytest.approx(stats.seconds / 3600)

    # Same seed -> same corpus, whatever the number of jobs.
    m2 = tmp_path / "again.jsonl"
    synth.build_corpus(texts, voices, tmp_path / "audio2", m2, seed=3, jobs=1, utts_per_text=2,
                       noise_prob=0.5, reverb_prob=0.5, speeds=(0.9, 1.0, 1.1), progress=False)
    rows2 = _read_manifest(m2)
    def strip(rs):
        return [{k: v for k, v in r.items() if k != "audio_filepath"} for r in rs]
    assert strip(rows) == strip(rows2)
    for a, b in zip(rows, rows2):
        assert (manifest.parent / a["audio_filepath"]).read_bytes() == (m2.parent / b["audio_filepath"]).read_bytes()


def test_build_corpus_all_failing_never_raises(make_corpus):  # noqa: F811
    manifest, stats = make_corpus(["a", "b"], voices=["espeak:en-us+nosuch"], name="bad")
    assert stats.count == 0 and stats.failures == 2
    assert _read_manifest(manifest) == []


def test_build_corpus_mixed_engines(make_corpus):  # noqa: F811
    require_engine("espeak")
    # One voice of each installed engine, each in its own worker-process round.
    inventory = synth.list_voices("en")
    voices = [str(next(v for v in inventory if v.engine == e)) for e in synth.ENGINES if synth.engine_available(e)]
    _manifest, stats = make_corpus(["testing one two", "another short one", "last"], voices=voices, jobs=2)
    assert stats.failures == 0 and stats.count == 3


def test_build_corpus_respell_speaks_the_spelling_and_keeps_the_words(tmp_path, monkeypatch):
    require_engine("espeak")
    spoken = []
    real = synth.synthesize

    def spy(text, voice, *a, **kw):
        spoken.append((str(voice), text))
        return real(text, voice, *a, **kw)

    monkeypatch.setattr(synth, "synthesize", spy)
    # en-gb+m3 "has an accent": it only knows two words, and says them differently.
    respell = {"espeak:en-gb+m3": {"one": "wun", "two": "too"}}
    texts = ["one two", "two one", "three", "one", "two two", "three one"]
    voices = ["espeak:en-us", "espeak:en-gb+m3"]
    stats = synth.build_corpus(texts, voices, tmp_path / "w", tmp_path / "m.jsonl", seed=1, jobs=1,
                               noise_prob=0, reverb_prob=0, progress=False, respell=respell)
    rows = _read_manifest(tmp_path / "m.jsonl")
    assert stats.failures == 0 and [r["text"] for r in rows] == texts  # labels are the words
    by_voice = {}
    for v, t in spoken:
        by_voice.setdefault(v, []).append(t)
    assert set(by_voice["espeak:en-gb+m3"]) <= {"wun too", "too wun", "wun", "too too"}  # only what it can say
    assert len(by_voice["espeak:en-gb+m3"]) >= 2                                       # and it is still used
    assert all(r["voice"] == "espeak:en-us" for r in rows if "three" in r["text"])

    # A text no selected voice can say is skipped, counted and logged; the rest is built.
    stats = synth.build_corpus(["three", "one"], ["espeak:en-gb+m3"], tmp_path / "w2", tmp_path / "m2.jsonl", seed=1,
                               jobs=1, noise_prob=0, reverb_prob=0, progress=False, respell=respell)
    assert stats.count == 1 and stats.failures == 1 and "no selected voice" in stats.failure_examples[0]
    assert [r["text"] for r in _read_manifest(tmp_path / "m2.jsonl")] == ["one"]


def test_cli_respell_file_errors(tmp_path, capsys):
    require_engine("espeak")
    texts = tmp_path / "t.txt"
    texts.write_text("one\n")
    args = ["--texts", str(texts), "--out", str(tmp_path / "w"), "--manifest", str(tmp_path / "m.jsonl"), "--quiet"]
    for content, match in [("{not json", "cannot read"), ('{"espeak:en-us": {"one": ""}}', "non-empty"),
                           ('{"festival:no_such_voice": {"one": "wun"}}', "not installed")]:
        (tmp_path / "r.json").write_text(content)
        assert synth.main(args + ["--respell", str(tmp_path / "r.json")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("ctcasr synth: error:") and match in err and "Traceback" not in err


# ----------------------------------------------------------------------------- command line
def test_cli_list_and_errors(capsys):
    require_engine("espeak")
    assert synth.main(["--list-voices", "--voices", "espeak:en-us+m*"]) == 0
    out, err = capsys.readouterr()
    lines = out.split()
    assert "espeak:en-us+m3" in lines and all(v.startswith("espeak:en-us+m") for v in lines)
    assert synth.main(["--texts", "/nonexistent/t.txt", "--out", "o", "--manifest", "m.jsonl"]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("ctcasr synth: error:") and err.count("\n") == 1 and "Traceback" not in err
    assert synth.main(["--voices", "nomatch:*", "--list-voices"]) == 0
    assert synth.main(["--voices", "nomatch:*", "--texts", "t", "--out", "o", "--manifest", "m"]) == 2


def test_cli_builds_corpus(tmp_path, capsys):
    require_engine("espeak")
    texts = tmp_path / "texts.txt"
    texts.write_text("hello there\n\nsecond line\n", encoding="utf-8")
    rc = synth.main(["--texts", str(texts), "--out", str(tmp_path / "wav"), "--manifest", str(tmp_path / "m.jsonl"),
                     "--voices", "espeak:en-us+*", "--seed", "1", "--jobs", "1", "--quiet",
                     "--speeds", "0.9", "1.1", "--telephone-prob", "0.5", "--noise-prob", "1"])
    assert rc == 0
    rows = _read_manifest(tmp_path / "m.jsonl")
    assert [r["text"] for r in rows] == ["hello there", "second line"]
    assert all(r["aug"]["noise"]["kind"] in synth.NOISE_KINDS for r in rows)


def test_python_dash_m_and_no_torch_import():
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    code = "import sys, ctcasr.synth; assert 'torch' not in sys.modules, 'synth imported torch'"
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=REPO)
    cp = subprocess.run([sys.executable, "-m", "ctcasr.synth", "--sample-rate", "nope"],
                        check=False, capture_output=True, text=True, env=env, cwd=REPO)
    assert cp.returncode == 2 and "Traceback" not in cp.stderr


def test_install_script_syntax():
    script = REPO / "scripts" / "install_tts.sh"
    assert os.access(script, os.X_OK)
    subprocess.run(["bash", "-n", str(script)], check=True)


def test_install_script_enables_non_free_for_the_same_mirrors(tmp_path):
    # What install_tts.sh writes to /etc/apt/sources.list.d when the MBROLA/Pico packages
    # have no candidate: the "main" entries' mirrors and suites with other components.
    script = REPO / "scripts" / "install_tts.sh"
    deb822 = tmp_path / "debian.sources"
    deb822.write_text(
        "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb-src\nURIs: http://x.org/other\nSuites: sid\nComponents: universe\n")
    out = subprocess.run(["bash", str(script), "--show-non-free-sources", str(deb822)],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == ("Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n"
                           "Components: contrib non-free\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg")
    one_line = tmp_path / "sources.list"
    one_line.write_text("deb http://deb.debian.org/debian bookworm main\n# deb http://x y main\n"
                        "deb [arch=amd64 signed-by=/k.gpg] http://archive.ubuntu.com/ubuntu jammy main restricted\n"
                        "deb-src http://deb.debian.org/debian bookworm main\ndeb http://x.org/u jammy universe\n")
    out = subprocess.run(["bash", str(script), "--show-non-free-sources", str(one_line), "multiverse"],
                         capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["deb http://deb.debian.org/debian bookworm multiverse",
                                "deb [arch=amd64 signed-by=/k.gpg] http://archive.ubuntu.com/ubuntu jammy multiverse"]


def test_festival_text_folds_latin_and_keeps_other_scripts():
    # Latin accents and typographic quotes fold to ASCII (English/Italian/Czech voices) ...
    assert synth._festival_text("Café “naïve” don’t Čapek") == 'Cafe "naive" don\'t Capek'
    assert synth._festival_text("уан 好 a→b ✓ ß") == "  ab  "
    # ... and a voice of a non-Latin language keeps the letters of other scripts, their
    # combining marks included; symbols without an ASCII form still go.
    assert synth._festival_text("уан фри йод", own_script=True) == "уан фри йод"
    assert synth._festival_text("सिक्स", own_script=True) == "सिक्स"
    assert synth._festival_text("a→b ✓ ß", own_script=True) == "ab  "


def test_festival_voices_keep_their_state_to_themselves(tmp_path):
    # Each festival voice gets its own server process: the Russian voice after a Finnish
    # one (and the Finnish after the Russian) failed when they shared one.
    require_engine("festival")
    installed = synth._festival_voices(all_languages=True)
    voices = [v for v in ("msu_ru_nsh_clunits", "hy_fi_mv_diphone", "kal_diphone") if v in installed]
    if "msu_ru_nsh_clunits" not in voices:
        pytest.skip("festvox-ru not installed (the digits recipe installs it)")
    texts = {"msu_ru_nsh_clunits": "уан туу фри", "hy_fi_mv_diphone": "nain faiv seven", "kal_diphone": "one two three"}
    for _ in range(2):
        for v in voices:
            x = synth.synthesize(texts[v], f"festival:{v}", pad=(0, 0))
            assert np.isfinite(x).all() and len(x) > 16000 // 2, v  # three words, not an empty utterance
    assert {v for v in voices} <= set(synth._FESTIVAL)
    assert len({synth._FESTIVAL[v].proc.pid for v in voices}) == len(voices)
