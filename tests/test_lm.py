"""NGramLM: Kneser-Ney estimation, ARPA round trip, KenLM agreement, bad files."""

import math
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctcasr.decoding import ArpaFormatError, NGramLM, build_lm_cli
from ctcasr.decoding.lm import LN10

CORPUS = [
    "the cat sat on the mat", "the dog sat on the log", "a cat and a dog",
    "the cat ran", "a dog ran to the cat", "on the mat the cat sat",
    "the big dog", "the big cat sat", "a mat", "the log",
]


def total_prob(lm, state):
    """Sum of p(w | state) over every word that can follow (all but <s>)."""
    return sum(math.exp(lm.score(state, w)[0]) for w in lm.vocab if w != "<s>")


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_kneser_ney_distributions_sum_to_one(order):
    lm = NGramLM.from_text(CORPUS, order=order)
    states = [lm.begin_state(), ()]
    for ws in (["the"], ["the", "cat"], ["a", "zebra"], ["dog", "ran", "to"]):
        s = lm.begin_state()
        for w in ws:
            _, s = lm.score(s, w)
        states.append(s)
    for s in states:
        assert abs(total_prob(lm, s) - 1.0) < 1e-9, s


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(st.sampled_from("abcde"), min_size=1, max_size=6), min_size=1, max_size=12),
       st.integers(1, 3))
def test_kn_normalised_on_random_corpora(sents, order):
    lm = NGramLM.from_text(sents, order=order)
    s = lm.begin_state()
    assert abs(total_prob(lm, s) - 1.0) < 1e-9
    for w in sents[0]:
        _, s = lm.score(s, w)
        assert abs(total_prob(lm, s) - 1.0) < 1e-9


BIGGER = CORPUS * 2 + ["the cat sat on the log", "a big cat ran to the dog", "the mat sat",
                       "on a log the dog ran", "the cat and the dog sat on a big mat"]


def _states(lm):
    out = [lm.begin_state(), ()]
    for ws in (["the"], ["the", "cat"], ["a", "zebra"], ["dog", "ran", "to"], ["on", "the"], ["big", "cat", "sat"]):
        s = lm.begin_state()
        for w in ws:
            _, s = lm.score(s, w)
        out.append(s)
    return out


@pytest.mark.parametrize("order, prune", [(2, [0, 1]), (3, [0, 1, 1]), (3, [0, 0, 2]), (4, [0, 1, 2, 3]), (3, [0, 1])])
def test_pruned_model_is_smaller_normalised_and_valid_arpa(order, prune, tmp_path):
    full = NGramLM.from_text(BIGGER, order=order)
    lm = NGramLM.from_text(BIGGER, order=order, prune=prune)
    assert lm.counts()[0] == full.counts()[0]          # unigrams are never pruned
    assert sum(lm.counts()[1:]) < sum(full.counts()[1:])
    for s in _states(lm):
        assert abs(total_prob(lm, s) - 1.0) < 1e-9, s
    # ARPA's structural rule: the context and the suffix of every listed n-gram are listed
    for n in range(2, order + 1):
        for g in lm.ngrams[n]:
            assert g[:-1] in lm.ngrams[n - 1] and g[1:] in lm.ngrams[n - 1]
    # kept n-grams keep their probabilities; the round trip through ARPA keeps the model
    for n in range(2, order + 1):
        for g, (lp, _) in lm.ngrams[n].items():
            assert lp == full.ngrams[n][g][0]
    out = tmp_path / "p.arpa"
    lm.to_arpa(out)
    back = NGramLM.from_arpa(out)
    assert back.counts() == lm.counts()
    for s in _states(back):
        assert abs(total_prob(back, s) - 1.0) < 1e-6, s


def test_pruning_renormalisation_is_exact_when_nothing_is_dropped():
    """With thresholds that drop nothing, recomputing the back-offs from the kept
    probabilities gives back the interpolation weights: the formula is the right one."""
    full = NGramLM.from_text(BIGGER, order=3)
    lm = NGramLM._estimate_kn([s.split() for s in BIGGER], 3)
    lm._prune([0, 0, 0])
    for n in (1, 2):
        for g, (lp, bow) in full.ngrams[n].items():
            assert lm.ngrams[n][g][0] == lp and abs(lm.ngrams[n][g][1] - bow) < 1e-9, g


@pytest.mark.parametrize("prune, msg", [([1, 1], "0 for unigrams"), ([0, 2, 1], "must not decrease"),
                                        ([0, 1, 1, 1], "one per order"), ([0, -1], ">= 0")])
def test_bad_prune_thresholds(prune, msg):
    with pytest.raises(ValueError, match=msg):
        NGramLM.from_text(CORPUS, order=3, prune=prune)


def test_lm_build_cli_prune(tmp_path):
    import subprocess
    import sys

    text = tmp_path / "t.txt"
    text.write_text("\n".join(BIGGER) + "\n")
    r = subprocess.run([sys.executable, "-m", "ctcasr", "lm", "build", str(text), "--order", "3", "--prune", "0", "1",
                        "1", "-o", str(tmp_path / "p.arpa")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert NGramLM.from_arpa(tmp_path / "p.arpa").counts() == NGramLM.from_text(BIGGER, 3, prune=[0, 1, 1]).counts()
    r = subprocess.run([sys.executable, "-m", "ctcasr", "lm", "build", str(text), "--prune", "1", "-o",
                        str(tmp_path / "q.arpa")], capture_output=True, text=True)
    assert r.returncode == 1 and "0 for unigrams" in r.stderr and "Traceback" not in r.stderr


def test_kneser_ney_prefers_seen_continuations_and_unk_gets_mass():
    lm = NGramLM.from_text(CORPUS, order=2)
    s = lm.begin_state()
    _, s_the = lm.score(s, "the")
    assert lm.score(s_the, "cat")[0] > lm.score(s_the, "ran")[0]
    assert lm.unigram_logp("zebra") == lm.unigram_logp("<unk>") > -50
    # continuation counts: "sat" follows many different words less than "the" does
    assert "<unk>" in lm.vocab and "zebra" not in lm


def test_arpa_round_trip(tmp_path):
    lm = NGramLM.from_text(CORPUS, order=3)
    p = tmp_path / "m.arpa"
    lm.to_arpa(p)
    assert os.listdir(tmp_path) == ["m.arpa"]  # the temp file was renamed, not left behind
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(p).st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    lm2 = NGramLM.from_arpa(p)
    assert lm2.order == 3 and lm2.counts() == lm.counts()
    for sent in ["the cat sat on the mat", "a zebra ran", "dog dog dog"]:
        assert abs(lm.sentence_logp(sent.split()) - lm2.sentence_logp(sent.split())) < 1e-5


def test_loads_in_kenlm(tmp_path):
    kenlm = pytest.importorskip("kenlm")
    for order in (2, 3, 4):
        lm = NGramLM.from_text(CORPUS, order=order)
        p = tmp_path / f"o{order}.arpa"
        lm.to_arpa(p)
        km = kenlm.Model(str(p))
        assert km.order == order
        for sent in ["the cat sat on the mat", "a zebra ran to the big dog", "mat"]:
            ours = lm.sentence_logp(sent.split()) / LN10
            assert abs(ours - km.score(sent, bos=True, eos=True)) < 1e-4, (order, sent)


def test_token_level_estimation():
    lm = NGramLM.from_text(["北京景色", "北京"], order=2, token_level=True)
    assert set(lm.words) == {"北", "京", "景", "色"}
    s = lm.begin_state()
    _, s = lm.score(s, "北")
    assert lm.score(s, "京")[0] > lm.score(s, "色")[0]


def test_build_lm_cli(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("\n".join(CORPUS) + "\n", encoding="utf-8")
    out = tmp_path / "out.arpa"
    lm = build_lm_cli(text, 3, out)
    assert out.exists() and lm.order == 3
    assert NGramLM.from_arpa(out).counts() == lm.counts()
    with pytest.raises(ValueError, match="cannot read"):
        build_lm_cli(tmp_path / "missing.txt", 3, out)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(ValueError, match="empty"):
        build_lm_cli(empty, 2, out)


def test_from_text_streams_any_iterable_and_file_gives_the_same_model(tmp_path):
    """from_text takes a one-shot iterator (the CLI passes the open file: the text is never
    held, only the counts) and gives the same ARPA as from a list; reserved words and
    non-UTF-8 text are still clear errors."""
    text = tmp_path / "text.txt"
    text.write_text("\n".join(BIGGER) + "\n", encoding="utf-8")
    a, b = tmp_path / "a.arpa", tmp_path / "b.arpa"
    NGramLM.from_text(list(BIGGER), order=3).to_arpa(a)
    NGramLM.from_text((s for s in BIGGER), order=3).to_arpa(b)
    assert a.read_bytes() == b.read_bytes()
    build_lm_cli(text, 3, b)
    assert a.read_bytes() == b.read_bytes()
    with pytest.raises(ValueError, match="reserved word"):
        NGramLM.from_text(iter(["a b", "c </s> d"]), order=2)
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8"):
        build_lm_cli(bad, 2, b)


GOOD = """\\data\\
ngram 1=3
ngram 2=1

\\1-grams:
-1.0\t<s>\t-0.5
-0.5\t</s>
-0.3\thello\t-0.2

\\2-grams:
-0.1\t<s> hello

\\end\\
"""


def test_reads_hand_written_arpa(tmp_path):
    p = tmp_path / "g.arpa"
    p.write_text("some header text\n" + GOOD)
    lm = NGramLM.from_arpa(p)
    assert lm.order == 2
    # p(hello | <s>) listed; p(</s> | hello) backs off: bow(hello) + p(</s>)
    assert abs(lm.sentence_logp(["hello"]) - (-0.1 + -0.2 + -0.5) * LN10) < 1e-12
    # unknown word, no <unk> entry: KenLM's -100 (log10)
    assert lm.score((), "zzz")[0] == pytest.approx(-100 * LN10)


def test_arpa_with_a_byte_order_mark(tmp_path):
    p = tmp_path / "bom.arpa"
    p.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())  # some editors write one before \data\
    assert NGramLM.from_arpa(p).order == 2


@pytest.mark.parametrize("text, line, msg", [
    ("hello\n", None, "no \\\\data\\\\ header"),
    (GOOD.replace("ngram 2=1", "ngram 2=2"), 13, "declares ngram 2=2"),
    (GOOD.replace("-0.3\thello", "x\thello"), 8, "not a number"),
    (GOOD.replace("-0.1\t<s> hello", "-0.1\t<s> hello there now"), 11, "fields"),
    (GOOD.replace("\\end\\\n", ""), 12, "truncated"),
    (GOOD.replace("\\2-grams:", "\\3-grams:"), 10, "not declared"),
    (GOOD.replace("-0.1\t<s> hello", "-0.1\t<s> bye"), None, "missing from"),
    (GOOD.replace("ngram 1=3", "ngram one=3"), 2, "bad count line"),
    (GOOD.replace("-0.5\t</s>", "0.5\t</s>"), 7, "<= 0"),
])
def test_bad_arpa_names_file_and_line(tmp_path, text, line, msg):
    p = tmp_path / "bad.arpa"
    p.write_text(text)
    with pytest.raises(ArpaFormatError, match=msg) as ei:
        NGramLM.from_arpa(p)
    assert str(p) in str(ei.value)
    assert isinstance(ei.value, ValueError)
    if line is not None:
        assert f"{p}:{line}:" in str(ei.value)


def test_missing_or_binary_arpa(tmp_path):
    with pytest.raises(ValueError, match="cannot open"):
        NGramLM.from_arpa(tmp_path / "nope.arpa")
    p = tmp_path / "bin.arpa"
    p.write_bytes(b"\\data\\\n\xff\xfe\x00")
    with pytest.raises(ArpaFormatError, match="UTF-8"):
        NGramLM.from_arpa(p)
