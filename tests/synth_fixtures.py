"""Fixtures for tests that need synthesized speech (imported by tests/conftest.py).

Audio comes from the Debian TTS engines via ctcasr.synth, never from the network.
A test that needs an engine which is not installed is skipped with a pointer to
scripts/install_tts.sh -- unless CTCASR_REQUIRE_TTS=1 (set in CI, which installs the
engines), where a missing engine is a failure: a broken install must not turn the
audio tests into silent skips.

    def test_x(make_corpus):
        manifest, stats = make_corpus(["one two", "three"], voices=["espeak:en-us+m3"])

    def test_y(synth_digits_corpus):          # built once per session
        manifest = synth_digits_corpus["manifest"]
"""

from __future__ import annotations

import os

import pytest

from ctcasr import synth

__all__ = [
    "espeak_voices",
    "make_corpus",
    "require_engine",
    "require_tts_strict",
    "synth_digits_corpus",
]


def require_tts_strict() -> bool:
    """True when missing TTS engines must fail the test run (CTCASR_REQUIRE_TTS=1)."""
    return os.environ.get("CTCASR_REQUIRE_TTS", "").strip() == "1"


def require_engine(engine: str) -> None:
    """Skip (or, with CTCASR_REQUIRE_TTS=1, fail) the calling test if ``engine``
    (one of synth.ENGINES: "espeak", "flite", "festival", "mbrola", "pico", "rhvoice") is not installed."""
    if synth.engine_available(engine):
        return
    msg = f"TTS engine {engine!r} is not installed; run scripts/install_tts.sh"
    if require_tts_strict():
        pytest.fail(msg + " (CTCASR_REQUIRE_TTS=1 makes this a failure)")
    pytest.skip(msg)


@pytest.fixture(scope="session")
def espeak_voices():
    """The installed English espeak-ng voices (skips/fails without espeak-ng)."""
    require_engine("espeak")
    voices = [v for v in synth.list_voices("en") if v.engine == "espeak"]
    assert voices, "espeak-ng is installed but lists no English voices"
    return voices


@pytest.fixture
def make_corpus(tmp_path):
    """Factory: make_corpus(texts, voices=None, name="corpus", **build_corpus_kwargs)
    -> (manifest path, CorpusStats). Default voices: four espeak en-us variants; default
    augmentation off and jobs=1 so tests are quick and exact."""

    def _make(texts, voices=None, name="corpus", **kw):
        if voices is None:
            require_engine("espeak")
            voices = ["espeak:en-us", "espeak:en-us+m3", "espeak:en-gb+f2", "espeak:en-us+klatt"]
        for v in voices:
            require_engine(synth.Voice.parse(v).engine)
        opts = {"seed": 0, "jobs": 1, "noise_prob": 0.0, "reverb_prob": 0.0, "progress": False}
        opts.update(kw)
        out = tmp_path / name
        manifest = out / "manifest.jsonl"
        stats = synth.build_corpus(list(texts), voices, out / "wav", manifest, **opts)
        return manifest, stats

    return _make


DIGIT_TEXTS = [
    "one two three", "four five six", "seven eight nine", "zero one two",
    "three four five", "six seven eight", "nine zero one", "two four six",
    "eight zero two", "five seven nine", "one three five", "seven nine zero",
]


@pytest.fixture(scope="session")
def synth_digits_corpus(tmp_path_factory):
    """A small clean digits corpus (12 utterances, 4 espeak voices), built once per
    session: {"manifest": Path, "stats": CorpusStats, "texts": list[str]}."""
    require_engine("espeak")
    out = tmp_path_factory.mktemp("synth_digits")
    manifest = out / "manifest.jsonl"
    voices = ["espeak:en-us", "espeak:en-us+m3", "espeak:en-gb+f2", "espeak:en-us+klatt"]
    stats = synth.build_corpus(DIGIT_TEXTS, voices, out / "wav", manifest, seed=0, jobs=1,
                               noise_prob=0.0, reverb_prob=0.0, progress=False)
    assert stats.failures == 0, stats.failure_examples
    return {"manifest": manifest, "stats": stats, "texts": list(DIGIT_TEXTS)}
