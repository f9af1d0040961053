import os

# Tests that synthesize speech need Debian's TTS engines, which the README's test command
# installs (scripts/install_tts.sh). Missing engines fail those tests rather than skip them,
# so a broken install cannot pass as green; CTCASR_REQUIRE_TTS=0 turns the failures into skips.
os.environ.setdefault("CTCASR_REQUIRE_TTS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "2")


from synth_fixtures import espeak_voices, make_corpus, synth_digits_corpus  # noqa: E402,F401  (fixtures)
