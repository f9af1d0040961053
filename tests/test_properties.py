"""Property-based tests (hypothesis): random inputs never crash the audio loader, the
tokenizer, the manifest parser or the decoders; what they return is well formed.

Each property states what must hold for *every* input of its kind: an input is either
accepted (and the output checked) or refused with our own exception type naming the file.
Example counts are kept moderate so that the file runs in well under a minute on 2 cores.
"""

from __future__ import annotations

import json
import math
import os
import tempfile

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ctcasr.audio import load_audio, prepare_waveform
from ctcasr.data import Utterance, read_manifest, write_manifest
from ctcasr.decoding import BeamSearchDecoder, DecodingError, GreedyDecoder
from ctcasr.decoding.types import join_text
from ctcasr.errors import AudioError, DataError, TokenizerError
from ctcasr.tokenizer import Tokenizer

SR = 16000
NO_PRUNING = {"prune_logp": None, "token_min_logp": None, "blank_skip_logp": None}


def props(n):
    return settings(max_examples=n, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                    print_blob=True)


# --------------------------------------------------------------------------- audio
SUBTYPES = {"WAV": ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"],
            "FLAC": ["PCM_S8", "PCM_16", "PCM_24"]}
QUANT = {"PCM_U8": 1 / 64, "PCM_S8": 1 / 64, "PCM_16": 1e-4, "PCM_24": 1e-6, "PCM_32": 1e-6, "FLOAT": 1e-6,
         "DOUBLE": 1e-6}


@props(80)
@given(fmt=st.sampled_from(["WAV", "FLAC"]), data=st.data(), n=st.integers(1, 3000), channels=st.integers(1, 6),
       sr=st.sampled_from([8000, 11025, 16000, 22050, 44100, 48000]), seed=st.integers(0, 2**32 - 1))
def test_load_audio_reads_every_format_to_mono_16k(fmt, data, n, channels, sr, seed):
    subtype = data.draw(st.sampled_from(SUBTYPES[fmt]), label="subtype")
    x = np.random.default_rng(seed).uniform(-0.9, 0.9, (n, channels))
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "a." + fmt.lower())
        sf.write(p, x, sr, format=fmt, subtype=subtype)
        y = load_audio(p, SR)
    assert y.dtype == np.float32 and y.ndim == 1 and np.isfinite(y).all()
    assert len(y) == math.ceil(n * SR / sr)
    if sr == SR:
        np.testing.assert_allclose(y, x.mean(axis=1), atol=QUANT[subtype] * 2)
    else:
        assert np.abs(y).max() < 4.0  # resampling rings, it does not blow up


def _good_wav() -> bytes:
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "g.wav")
        sf.write(p, 0.3 * np.sin(np.arange(400) / 5.0), SR, subtype="PCM_16")
        with open(p, "rb") as f:
            return f.read()


GOOD_WAV = _good_wav()


def _load_or_audio_error(content: bytes, name: str = "f.wav"):
    """load_audio of a file holding ``content``: either a well-formed waveform, with no more
    samples than the bytes can hold, or an AudioError naming the file."""
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, name)
        with open(p, "wb") as f:
            f.write(content)
        try:
            y = load_audio(p, SR)
        except AudioError as e:
            assert str(e).startswith(p + ": "), str(e)
            return None
    assert y.dtype == np.float32 and y.ndim == 1 and len(y) >= 1 and np.isfinite(y).all()
    # No amplification: a byte holds at most a few samples (ADPCM, GSM), and a header may
    # claim a rate down to 1 kHz (x16 at 16 kHz). Gigabytes from a small file would fail here.
    assert len(y) <= 100 * len(content) + 16
    return y


@props(120)
@given(mutations=st.lists(st.tuples(st.integers(0, 59), st.integers(0, 255)), min_size=1, max_size=6),
       cut=st.none() | st.integers(0, len(GOOD_WAV)))
def test_load_audio_survives_corrupted_headers(mutations, cut):
    b = bytearray(GOOD_WAV)
    for pos, val in mutations:
        b[pos] = val
    _load_or_audio_error(bytes(b[:cut] if cut is not None else b))


@props(80)
@given(prefix=st.sampled_from([b"", b"RIFF", b"RIFF\x00\x01\x00\x00WAVEfmt ", b"fLaC", b"OggS", b"ID3", b"\xff\xfb"]),
       body=st.binary(max_size=2000), ext=st.sampled_from(["wav", "flac", "mp3", "ogg", "bin"]))
def test_load_audio_survives_arbitrary_bytes(prefix, body, ext):
    _load_or_audio_error(prefix + body, "f." + ext)


ARRAY_DTYPES = st.sampled_from([np.int16, np.int32, np.uint8, np.uint16, np.float32, np.float64])
ARRAY_SHAPES = st.one_of(st.tuples(st.integers(0, 300)), st.tuples(st.integers(0, 300), st.integers(1, 6)),
                         st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)))


@props(150)
@given(x=arrays(ARRAY_DTYPES, ARRAY_SHAPES), sr=st.sampled_from([8000, 16000, 44100]))
def test_prepare_waveform_any_array(x, sr):
    try:
        y = prepare_waveform(x, sr, SR, name="mic")
    except AudioError as e:
        assert str(e).startswith("mic: ")
        bad_shape = x.ndim > 2
        with np.errstate(over="ignore"):
            not_finite = x.dtype.kind == "f" and not np.isfinite(x.astype(np.float32)).all()
        too_large = x.dtype.kind == "f" and np.abs(x).max(initial=0) > 1e30
        assert x.size == 0 or bad_shape or not_finite or too_large, str(e)
        return
    assert y.dtype == np.float32 and y.ndim == 1 and np.isfinite(y).all()
    n = x.shape[0]  # [n] or [n, channels] (channels <= 6 here, so never read as [channels, n])
    assert len(y) == (n if sr == SR else math.ceil(n * SR / sr))
    if x.dtype.kind in "iu" and sr == SR:
        assert np.abs(y).max() <= 1.0  # integer PCM lands in [-1, 1]


# --------------------------------------------------------------------------- tokenizer
TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=30)


@props(200)
@given(texts=st.lists(TEXT, min_size=1, max_size=4), delimiter=st.sampled_from([" ", None]),
       lowercase=st.booleans(), strip=st.booleans())
def test_tokenizer_round_trip(texts, delimiter, lowercase, strip):
    norm = {"lowercase": lowercase, "strip_punctuation": strip}
    try:
        tok = Tokenizer.build(texts, word_delimiter=delimiter, **norm)
    except TokenizerError:
        # Only when there is nothing to build a vocabulary from.
        assert delimiter is None
        assert all(Tokenizer(["φ", "x"], word_delimiter=None, **norm).normalize(t) == "" for t in texts)
        return
    for t in texts:
        ids = tok.encode(t)
        assert all(0 < i < len(tok) for i in ids)
        assert tok.decode(ids) == tok.normalize(t)
    with tempfile.TemporaryDirectory() as d:
        tok.save(os.path.join(d, "tokens.txt"))
        back = Tokenizer.load(os.path.join(d, "tokens.txt"), **tok.config())
    assert back.tokens == tok.tokens
    assert [back.encode(t) for t in texts] == [tok.encode(t) for t in texts]


@props(150)
@given(vocab_text=TEXT, text=TEXT)
def test_tokenizer_other_text_encodes_or_names_the_characters(vocab_text, text):
    tok = Tokenizer.build([vocab_text + "a"])
    try:
        ids = tok.encode(text)
    except TokenizerError as e:
        bad = tok.unknown_chars(text)
        assert bad and repr("".join(bad)) in str(e)
        return
    assert tok.decode(ids) == tok.normalize(text)


# --------------------------------------------------------------------------- manifests
JSON_SCALARS = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True) | TEXT
JSON_VALUES = st.recursive(JSON_SCALARS, lambda ch: st.lists(ch, max_size=3) | st.dictionaries(TEXT, ch, max_size=3),
                           max_leaves=6)
PATHS = st.sampled_from(["a.wav", "sub/../a.wav", "missing.wav", "", " ", "/nonexistent/x.wav", "."])
RECORDS = st.fixed_dictionaries({}, optional={
    "audio_filepath": PATHS | JSON_VALUES,
    "text": TEXT | JSON_VALUES,
    "duration": st.floats(0, 100) | JSON_VALUES,
    "offset": st.floats(0, 10) | JSON_VALUES,
    "id": TEXT | st.integers(0, 5) | JSON_VALUES,
})
LINES = st.lists(st.one_of(RECORDS.map(lambda r: json.dumps(r)), JSON_VALUES.map(json.dumps), TEXT), max_size=5)


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("manifests")
    sf.write(d / "a.wav", np.zeros(800), SR)
    (d / "sub").mkdir()
    return d


@props(250)
@given(lines=LINES)
def test_manifest_parser_accepts_or_names_the_line(corpus_dir, lines):
    p = corpus_dir / "m.jsonl"
    p.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    try:
        utts = read_manifest(p)
    except DataError as e:
        assert str(e).startswith(f"{p}:") or str(e).startswith(f"{p}: "), str(e)
        return
    ids = [u.id for u in utts]
    assert len(ids) == len(set(ids))
    for u in utts:
        assert isinstance(u.text, str) and os.path.isabs(u.audio_filepath)
        assert u.duration >= 0 and math.isfinite(u.duration) and u.offset >= 0 and math.isfinite(u.offset)


UTTERANCES = st.lists(
    st.builds(lambda text, dur, off, voice: (text, round(dur, 4), off, voice), TEXT,
              st.floats(0, 1000, allow_nan=False), st.sampled_from([0.0, 0.5, 12.25]),
              st.none() | TEXT),
    max_size=6)


@props(120)
@given(items=UTTERANCES)
def test_manifest_write_read_round_trip(corpus_dir, items):
    utts = [Utterance(f"u{i}", str(corpus_dir / "sub" / f"{i}.wav"), dur, text, off,
                      {} if voice is None else {"voice": voice})
            for i, (text, dur, off, voice) in enumerate(items)]
    p = corpus_dir / "rt.jsonl"
    write_manifest(utts, p)
    back = read_manifest(p)
    assert [(u.id, u.audio_filepath, u.text, u.offset, u.extra) for u in back] == \
           [(u.id, u.audio_filepath, u.text, u.offset, u.extra) for u in utts]
    assert [u.duration for u in back] == pytest.approx([u.duration for u in utts], abs=1e-4)


# --------------------------------------------------------------------------- decoders
def ctc_log_prob(lp: np.ndarray, labels) -> float:
    """log P(labels | lp) by the CTC forward algorithm (blank 0), the reference."""
    T = lp.shape[0]
    ext = [0]
    for c in labels:
        ext += [int(c), 0]
    S = len(ext)
    if T == 0:
        return 0.0 if not labels else -np.inf
    ext = np.array(ext)
    skip = np.zeros(S, bool)
    skip[2:] = (ext[2:] != 0) & (ext[2:] != ext[:-2])
    a = np.full(S, -np.inf)
    a[:2] = lp[0, ext[:2]]
    for t in range(1, T):
        prev1 = np.r_[-np.inf, a[:-1]]
        prev2 = np.full(S, -np.inf)
        prev2[2:] = np.where(skip[2:], a[:-2], -np.inf)
        a = np.logaddexp(np.logaddexp(a, prev1), prev2) + lp[t, ext]
    return float(np.logaddexp(a[-1], a[-2])) if S > 1 else float(a[-1])


def _tokens(V):
    return ["φ", " "] + [chr(ord("a") + k) for k in range(V - 2)]


@st.composite
def emissions(draw, min_b=0, max_b=3, min_t=0, max_t=12, max_v=6):
    """Random log-softmax outputs [B, T, V] with lengths; flat to very peaky."""
    V = draw(st.integers(2, max_v))
    B = draw(st.integers(min_b, max_b))
    T = draw(st.integers(min_t, max_t))
    scale = draw(st.sampled_from([0.1, 1.0, 4.0, 20.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    z = np.random.default_rng(seed).normal(size=(B, T, V)) * scale
    lp = z - np.logaddexp.reduce(z, axis=-1, keepdims=True) if T and B else z
    lengths = draw(st.lists(st.integers(0, T), min_size=B, max_size=B))
    return lp, np.array(lengths, np.int64), V


def _check_hypothesis(h, T, V, tokens, delim):
    assert isinstance(h.tokens, tuple) and all(isinstance(t, int) and 0 < t < V for t in h.tokens)
    assert len(h.timesteps) == len(h.tokens)
    assert all(0 <= t < T for t in h.timesteps)
    assert list(h.timesteps) == sorted(set(h.timesteps))  # strictly increasing
    assert h.text == join_text(h.tokens, tokens, delim)
    assert h.text == h.text.strip() and "  " not in h.text
    for word, start, end in h.words:
        assert word and " " not in word and 0 <= start < end <= T
    assert [w for w, _, _ in h.words] == h.text.split()
    assert math.isfinite(h.score) and h.am_score <= 1e-6 and h.lm_score == 0.0


@props(200)
@given(e=emissions(), n_best=st.integers(1, 4), beam_size=st.integers(1, 12), prune=st.booleans(),
       batched=st.booleans())
def test_decoders_never_crash_and_return_well_formed_hypotheses(e, n_best, beam_size, prune, batched):
    lp, lengths, V = e
    tokens = _tokens(V)
    greedy = GreedyDecoder(tokens)
    beam = BeamSearchDecoder(tokens, beam_size=beam_size, **({} if prune else NO_PRUNING))
    for b in range(lp.shape[0]):
        if batched:
            continue
        T = int(lengths[b])
        x = lp[b, :T]
        (g,) = greedy(x)
        hyps = beam(x, n_best=n_best)
        _check_hypothesis(g, T, V, tokens, " ")
        assert g.score == pytest.approx(float(np.max(x, axis=1).sum()) if T else 0.0, abs=1e-4)
        assert 1 <= len(hyps) <= n_best
        assert len({h.tokens for h in hyps}) == len(hyps)  # distinct labellings
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
        for h in hyps:
            _check_hypothesis(h, T, V, tokens, " ")
            # A beam's score is the sum over the alignments it kept: never above the exact one.
            assert h.am_score <= ctc_log_prob(x, h.tokens) + 1e-6
    if batched:
        gs, bs = greedy(lp, lengths), beam(lp, lengths, n_best=n_best)
        assert len(gs) == len(bs) == lp.shape[0]
        for b in range(lp.shape[0]):
            assert gs[b] == greedy(lp[b, : lengths[b]])
            assert bs[b] == beam(lp[b, : lengths[b]], n_best=n_best)


@props(120)
@given(e=emissions(min_b=1, max_b=1, min_t=1), shift=st.floats(-50, 50))
def test_probabilities_and_logits_decode_like_log_probs(e, shift):
    lp, _, V = e
    x = lp[0]
    tokens = _tokens(V)
    ref = GreedyDecoder(tokens)(x)[0]
    assert GreedyDecoder(tokens, input_type="probs")(np.exp(x))[0].tokens == ref.tokens
    assert GreedyDecoder(tokens, input_type="logits")(x + shift)[0].tokens == ref.tokens


@st.composite
def peaky(draw, min_peak=0.9, max_t=14, max_v=6):
    """Log-probs whose best token has probability >= min_peak in every frame: the regime of
    a trained CTC model, where the best path carries most of the mass."""
    V = draw(st.integers(2, max_v))
    T = draw(st.integers(0, max_t))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    labels = draw(st.lists(st.integers(0, V - 1), min_size=T, max_size=T))
    peak = rng.uniform(min_peak, 1.0 - 1e-6, size=T)
    p = rng.dirichlet(np.ones(V), size=T) if T else np.zeros((0, V))
    p[np.arange(T), labels] = 0.0
    p *= ((1 - peak) / np.maximum(p.sum(axis=1), 1e-300))[:, None] if T else 1.0
    p[np.arange(T), labels] = peak
    return np.log(np.maximum(p, 1e-300)), V


@props(200)
@given(e=peaky())
def test_greedy_equals_beam_size_one_on_the_best_path(e):
    lp, V = e
    tokens = _tokens(V)
    g = GreedyDecoder(tokens)(lp)[0]
    b = BeamSearchDecoder(tokens, beam_size=1, **NO_PRUNING)(lp)[0]
    assert b.tokens == g.tokens and b.text == g.text
    # Beam sums the alignments of the labelling; greedy scores the best one (in float32).
    assert b.am_score >= g.score - 1e-5


@props(200)
@given(e=peaky(min_peak=0.8))
def test_beam_is_never_worse_than_greedy_on_peaky_outputs(e):
    lp, V = e
    tokens = _tokens(V)
    g = GreedyDecoder(tokens)(lp)[0]
    b = BeamSearchDecoder(tokens)(lp)[0]  # default beam and pruning
    assert ctc_log_prob(lp, b.tokens) >= ctc_log_prob(lp, g.tokens) - 1e-9


@props(120)
@given(e=emissions(min_b=1, max_b=1, max_t=5, max_v=4))
def test_exhaustive_beam_finds_a_labelling_at_least_as_likely_as_greedy(e):
    """With room for every prefix and no pruning, prefix beam search is exact: its best
    labelling is the most probable one and its am_score is that labelling's exact log-prob,
    so it is never worse than greedy's, whatever the input (flat ones included)."""
    lp, _, V = e
    x = lp[0]
    tokens = _tokens(V)
    room = sum((V - 1) ** k for k in range(x.shape[0] + 1))
    g = GreedyDecoder(tokens)(x)[0]
    b = BeamSearchDecoder(tokens, beam_size=room, **NO_PRUNING)(x)[0]
    assert b.am_score == pytest.approx(ctc_log_prob(x, b.tokens), abs=1e-9)
    assert ctc_log_prob(x, b.tokens) >= ctc_log_prob(x, g.tokens) - 1e-9


@props(120)
@given(V=st.integers(2, 6), data=st.data())
def test_bad_shapes_raise_decoding_error_only(V, data):
    shape = data.draw(st.lists(st.integers(0, 4), min_size=0, max_size=4).map(tuple), label="shape")
    x = np.zeros(shape) + np.log(1.0 / max(1, shape[-1] if shape else 1))
    lengths = data.draw(st.none() | st.lists(st.integers(-2, 6), max_size=3), label="lengths")
    for dec in (GreedyDecoder(_tokens(V)), BeamSearchDecoder(_tokens(V))):
        try:
            dec(x, lengths)
        except DecodingError:
            pass


@props(300)
@given(e=emissions(min_b=1, max_b=1, min_t=1, max_t=40, max_v=6), beam=st.sampled_from([1, 2, 4, 8, 32]))
def test_beam_is_never_worse_than_greedy_on_any_output(e, beam):
    """Any input, flat ones included, any beam: the beam decoder (no LM) returns a labelling
    at least as probable as greedy's; it rescores greedy's exactly when the beam lost it."""
    from ctcasr.decoding.beam import ctc_forward

    lp, _, V = e
    x = lp[0]
    tokens = _tokens(V)
    g = GreedyDecoder(tokens)(x)[0]
    hyps = BeamSearchDecoder(tokens, beam_size=beam)(x, n_best=3)
    assert ctc_log_prob(x, hyps[0].tokens) >= ctc_log_prob(x, g.tokens) - 1e-9
    assert ctc_forward(x, g.tokens) == pytest.approx(ctc_log_prob(x, g.tokens), abs=1e-9)
    assert len({h.tokens for h in hyps}) == len(hyps)  # n-best stays distinct
    for h in hyps:
        _check_hypothesis(h, x.shape[0], V, tokens, " " if " " in tokens else None)
