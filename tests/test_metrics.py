"""WER/CER agree with jiwer, operation counts included."""

import random

import pytest

from ctcasr.metrics import cer, char_errors, corpus_errors, wer, word_errors

jiwer = pytest.importorskip("jiwer")


def _random_pairs(n, seed, vocab="abcde", max_len=12):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        ref = " ".join(rng.choice(vocab) for _ in range(rng.randint(1, max_len)))
        hyp = " ".join(rng.choice(vocab) for _ in range(rng.randint(0, max_len)))
        out.append((ref, hyp))
    return out


def test_word_counts_match_jiwer_on_random_strings():
    for ref, hyp in _random_pairs(2000, 0):
        o = jiwer.process_words(ref, hyp)
        c = word_errors(ref, hyp)
        assert (c.substitutions, c.deletions, c.insertions, c.hits) == (
            o.substitutions, o.deletions, o.insertions, o.hits), (ref, hyp)


def test_char_counts_match_jiwer():
    for ref, hyp in _random_pairs(500, 1, vocab=["ab", "c", "de", "f"]):
        o = jiwer.process_characters(ref, hyp)
        c = char_errors(ref, hyp)
        assert (c.substitutions, c.deletions, c.insertions) == (o.substitutions, o.deletions, o.insertions)


def test_corpus_rates_match_jiwer_on_sentences():
    refs = ["one two three four", "oh five six", "nine nine nine", "seven eight"]
    hyps = ["one two tree four five", "five six", "nine nine", "seven eight"]
    assert wer(refs, hyps) == pytest.approx(jiwer.wer(refs, hyps))
    assert cer(refs, hyps) == pytest.approx(jiwer.cer(refs, hyps))
    w, c = corpus_errors(refs, hyps)
    assert (w.substitutions, w.deletions, w.insertions) == (1, 2, 1)
    assert w.ref_len == 12 and "WER 33.33%" in w.summary("WER")


def test_chinese_characters():
    assert cer("好棒棒", "好棒") == pytest.approx(jiwer.cer("好棒棒", "好棒"))
    assert cer("好棒棒", "好棒") == pytest.approx(1 / 3)


def test_empty_reference():
    assert word_errors("", "").rate == 0.0
    assert word_errors("", "a").rate == float("inf")
    with pytest.raises(ValueError):
        corpus_errors(["a"], [])
