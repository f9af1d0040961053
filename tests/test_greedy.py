"""Greedy CTC decoding: the 好棒 / 好棒棒 cases, timings, batching, input checks."""

import numpy as np
import pytest

from ctcasr.decoding import GreedyDecoder

TOKENS = ["φ", "好", "棒"]
IDX = {t: i for i, t in enumerate(TOKENS)}


def peaky(frames, tokens=TOKENS, p=0.9):
    """Log-probs where each frame puts ``p`` on the named token."""
    V = len(tokens)
    x = np.full((len(frames), V), (1 - p) / (V - 1))
    for t, name in enumerate(frames):
        x[t, tokens.index(name)] = p
    return np.log(x)


def test_blank_separates_repeated_characters():
    dec = GreedyDecoder(TOKENS, blank=0, word_delimiter=None)
    h = dec(peaky("好 φ φ 棒 φ 棒 φ φ".split()))[0]
    assert h.text == "好棒棒"
    assert h.tokens == (1, 2, 2)


def test_repeated_frames_collapse():
    dec = GreedyDecoder(TOKENS, blank=0, word_delimiter=None)
    h = dec(peaky("好 φ φ 棒 棒 棒 φ φ".split()))[0]
    assert h.text == "好棒"
    assert h.tokens == (1, 2)


def test_timesteps_and_words_are_frame_exact():
    dec = GreedyDecoder(TOKENS, blank=0, word_delimiter=None)
    lp = peaky("φ 好 φ 棒 棒 φ 棒 φ".split())
    lp[4] = np.log([0.025, 0.025, 0.95])  # the second frame of the 棒 run is its peak
    h = dec(lp)[0]
    assert h.timesteps == (1, 4, 6)
    assert h.words == [("好", 1, 2), ("棒", 4, 5), ("棒", 6, 7)]
    best = lp.max(axis=1).sum()
    assert h.score == pytest.approx(best) and h.am_score == pytest.approx(best)


def test_english_words_with_space_delimiter():
    toks = ["φ", " ", "a", "b", "c"]
    dec = GreedyDecoder(toks, blank=0, word_delimiter=" ")
    frames = ["φ", "a", "b", "φ", " ", " ", "c", "c", "φ", " ", "a"]
    h = dec(peaky(frames, toks))[0]
    assert h.text == "ab c a"
    assert h.words == [("ab", 1, 3), ("c", 6, 7), ("a", 10, 11)]


def test_edge_delimiters_are_not_words():
    toks = ["φ", " ", "a"]
    dec = GreedyDecoder(toks, word_delimiter=" ")
    h = dec(peaky([" ", "a", " ", "φ", " "], toks))[0]
    assert h.text == "a" and h.words == [("a", 1, 2)]


def test_batch_with_lengths_equals_one_by_one():
    rng = np.random.default_rng(0)
    dec = GreedyDecoder(TOKENS, word_delimiter=None)
    x = np.log(rng.dirichlet(np.ones(3) * 0.3, size=(4, 12)))
    lens = [12, 7, 0, 3]
    batch = dec(x, lens)
    assert len(batch) == 4
    for b, L in enumerate(lens):
        assert batch[b][0] == dec(x[b, :L])[0]
    assert batch[2][0].text == "" and batch[2][0].score == 0.0


def test_probabilities_are_detected_and_accepted():
    dec = GreedyDecoder(TOKENS, word_delimiter=None)
    lp = peaky("好 φ 棒 φ 棒".split())
    assert dec(np.exp(lp))[0].text == dec(lp)[0].text == "好棒棒"
    assert dec(lp.tolist())[0].text == "好棒棒"  # anything np.asarray takes


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((2, 3, 4, 5)), "shape"),
        (np.zeros((5, 4)), "vocabulary size mismatch"),
        (np.full((5, 3), np.nan), "NaN"),
        (np.random.default_rng(0).normal(size=(5, 3)) + 3, "logits"),
        (np.array([["a", "b", "c"]]), "numeric"),
    ],
)
def test_bad_input_raises_value_error(bad, match):
    dec = GreedyDecoder(TOKENS, word_delimiter=None)
    with pytest.raises(ValueError, match=match):
        dec(bad)


def test_bad_lengths_and_tokens():
    dec = GreedyDecoder(TOKENS, word_delimiter=None)
    with pytest.raises(ValueError, match="lengths"):
        dec(np.log(np.full((2, 4, 3), 1 / 3)), [5, 1])
    with pytest.raises(ValueError, match="word_delimiter"):
        GreedyDecoder(TOKENS, word_delimiter=" ")
    with pytest.raises(ValueError, match="blank"):
        GreedyDecoder(TOKENS, blank=5, word_delimiter=None)


def test_logits_input_type():
    dec = GreedyDecoder(TOKENS, word_delimiter=None, input_type="logits")
    logits = peaky("好 φ 棒 φ 棒".split()) * 3 + 7
    assert dec(logits)[0].text == "好棒棒"
