"""Beam search: exactness against enumeration and ctc_loss, repeats, pruning, LM fusion,
hotwords, streaming, batching, timestamps and input checks."""

import itertools
import math
import subprocess
import sys

import numpy as np
import pytest

from ctcasr.decoding import BeamSearchDecoder, GreedyDecoder, NGramLM

EXACT = {"prune_logp": None, "token_min_logp": None, "blank_skip_logp": None}
LETTERS = ["φ", " "] + [chr(c) for c in range(97, 123)] + ["'"]


def log_softmax(z):
    return z - np.logaddexp.reduce(z, axis=-1, keepdims=True)


def peaky(frames, tokens, p=0.9):
    """Log-probs where each frame puts ``p`` on the named token (rest spread evenly)."""
    V = len(tokens)
    x = np.full((len(frames), V), (1 - p) / (V - 1))
    for t, name in enumerate(frames):
        x[t, tokens.index(name)] = p
    return np.log(x)


def soft(frames, tokens, floor=1e-4):
    """Frames given as {token: prob} dicts (a string means that token with prob 1)."""
    V = len(tokens)
    x = np.full((len(frames), V), floor)
    for t, f in enumerate(frames):
        if isinstance(f, str):
            f = {f: 1.0}
        for name, p in f.items():
            x[t, tokens.index(name)] = p
    x /= x.sum(1, keepdims=True)
    return np.log(x)


def spell(text, tokens, gap=1):
    """Peaky frames spelling ``text``: each character once, ``gap`` blanks after it."""
    frames = ["φ"]
    for c in text:
        frames += [c] + ["φ"] * gap
    return frames


def enumerate_labellings(lp):
    """log P(labelling | x) for every labelling, by summing over all V^T paths."""
    T, V = lp.shape
    paths = np.array(list(itertools.product(range(V), repeat=T)))
    scores = lp[np.arange(T), paths].sum(1)
    out = {}
    for path, s in zip(paths.tolist(), scores):
        lab, prev = [], None
        for p in path:
            if p != prev and p != 0:
                lab.append(p)
            prev = p
        k = tuple(lab)
        out[k] = np.logaddexp(out.get(k, -np.inf), s)
    return out


def ctc_logp(lp, lab):
    torch = pytest.importorskip("torch")
    x = torch.tensor(lp, dtype=torch.float64)[:, None]
    if not lab:
        return float(x[:, 0, 0].sum())
    loss = torch.nn.functional.ctc_loss(
        x, torch.tensor([list(lab)]), torch.tensor([lp.shape[0]]), torch.tensor([len(lab)]),
        blank=0, reduction="sum", zero_infinity=False)
    return -float(loss)


# ------------------------------------------------------------------ exactness
def test_exact_prefix_search_matches_enumeration_and_ctc_loss():
    rng = np.random.default_rng(1234)
    for case in range(200):
        T = int(rng.integers(1, 6))
        V = int(rng.integers(2, 5))
        lp = log_softmax(rng.normal(size=(T, V)) * rng.uniform(0.3, 3.0))
        tokens = ["φ"] + [chr(97 + i) for i in range(V - 1)]
        dec = BeamSearchDecoder(tokens, beam_size=4096, word_delimiter=None, **EXACT)
        hyps = dec(lp, n_best=3)
        table = enumerate_labellings(lp)
        best_lab, best_lp = max(table.items(), key=lambda kv: kv[1])
        top = hyps[0]
        assert top.tokens == best_lab or math.isclose(table[top.tokens], best_lp, abs_tol=1e-9), case
        assert abs(top.am_score - best_lp) < 1e-4, case
        for h in hyps:  # every hypothesis carries its labelling's exact total probability
            assert abs(h.am_score - ctc_logp(lp, h.tokens)) < 1e-4, (case, h.tokens)
            assert abs(h.am_score - table[h.tokens]) < 1e-9
            assert h.score == h.am_score and h.lm_score == 0.0


def test_path_sum_beats_viterbi():
    # Best single path is φφ (0.16), but "a" has three paths: .32*.32 + 2*.32*.4 = .3584.
    tokens = ["φ", "a", "b"]
    lp = np.log(np.array([[0.4, 0.32, 0.28], [0.4, 0.32, 0.28]]))
    assert GreedyDecoder(tokens, word_delimiter=None)(lp)[0].text == ""
    h = BeamSearchDecoder(tokens, word_delimiter=None)(lp)[0]
    assert h.text == "a"
    assert abs(h.am_score - math.log(0.3584)) < 1e-12


# ------------------------------------------------------------------ repeats
ZH = ["φ", "好", "棒"]


@pytest.mark.parametrize("make", [lambda: GreedyDecoder(ZH, word_delimiter=None),
                                  lambda: BeamSearchDecoder(ZH, word_delimiter=None)])
def test_hao_bang_bang(make):
    dec = make()
    assert dec(peaky(["好", "φ", "棒", "φ", "棒"], ZH))[0].text == "好棒棒"
    assert dec(peaky(["好", "棒", "棒"], ZH))[0].text == "好棒"
    assert dec(peaky(["好", "好", "φ", "棒", "棒", "φ", "φ", "棒"], ZH))[0].text == "好棒棒"


# ------------------------------------------------------------------ pruning
def make_peaky(rng, T, tokens, noise=1.5):
    """A peaky emission like a trained model's: spikes of random tokens between blanks."""
    V = len(tokens)
    z = rng.normal(0, noise, size=(T, V))
    z[:, 0] += 14 + rng.normal(0, 1.5, size=T)
    t = 1
    while t < T - 1:
        z[t] = rng.normal(0, noise, size=V)
        z[t, rng.integers(1, V)] += rng.normal(8, 2)
        z[t, 0] = rng.normal(1.5, 2)
        z[t, rng.integers(1, V)] += rng.normal(1, 2)
        t += 2 + int(rng.integers(0, 3))
    return log_softmax(z)


def test_default_pruning_changes_no_result_on_peaky_inputs():
    rng = np.random.default_rng(7)
    for case in range(6):
        lp = make_peaky(rng, 300, LETTERS)
        fast = BeamSearchDecoder(LETTERS, beam_size=16)(lp, n_best=3)
        full = BeamSearchDecoder(LETTERS, beam_size=16, **EXACT)(lp, n_best=3)
        assert [h.tokens for h in fast] == [h.tokens for h in full], case
        assert [h.timesteps for h in fast] == [h.timesteps for h in full], case
        for a, b in zip(fast, full):
            assert abs(a.am_score - b.am_score) < 1e-4, case


def test_pruning_knobs_validated():
    with pytest.raises(ValueError, match="prune_logp"):
        BeamSearchDecoder(LETTERS, prune_logp=3.0)
    with pytest.raises(ValueError, match="beam_size"):
        BeamSearchDecoder(LETTERS, beam_size=0)


# ------------------------------------------------------------------ LM fusion
def bunny_emissions():
    # b u [n|g] [n|s] [y|φ] ' ' b u n n y, with the first word leaning to "bunny"
    f = ["φ", "b", "φ", "u", "φ", {"n": 0.55, "g": 0.45}, "φ", {"n": 0.55, "s": 0.45}, "φ",
         {"y": 0.55, "φ": 0.45}, "φ", " ", "φ"]
    f += spell("bunny", LETTERS)[1:]
    return soft(f, LETTERS)


BUNNY_TEXT = ["bugs bunny is a rabbit", "i like bugs bunny", "bugs bunny and daffy duck",
              "the rabbit is bugs bunny", "a bunny is a rabbit", "bugs bunny"]


def test_lm_flips_bunny_bunny_to_bugs_bunny():
    lp = bunny_emissions()
    plain = BeamSearchDecoder(LETTERS, beam_size=16)(lp)[0]
    assert plain.text == "bunny bunny"
    lm = NGramLM.from_text(BUNNY_TEXT, order=2)
    dec = BeamSearchDecoder(LETTERS, beam_size=16, lm=lm, lm_weight=1.0, word_score=0.5)
    h = dec(lp)[0]
    assert h.text == "bugs bunny"
    # the reported scores add up, and lm_score is the LM's own sentence log-prob
    assert abs(h.lm_score - lm.sentence_logp(["bugs", "bunny"])) < 1e-9
    assert abs(h.score - (h.am_score + 1.0 * h.lm_score + 0.5 * 2)) < 1e-9
    assert h.am_score < plain.am_score


def test_lm_from_arpa_path_and_words_timing(tmp_path):
    lm = NGramLM.from_text(BUNNY_TEXT, order=3)
    path = tmp_path / "lm.arpa"
    lm.to_arpa(path)
    h = BeamSearchDecoder(LETTERS, lm=str(path), lm_weight=1.0)(bunny_emissions())[0]
    assert h.text == "bugs bunny"
    assert [w for w, _, _ in h.words] == ["bugs", "bunny"]
    assert all(s < e for _, s, e in h.words)


def test_oov_penalty_and_unigram_list():
    # AM spells "zork" clearly; the LM does not know it: unk_score is charged once
    lp = peaky(spell("zork", LETTERS), LETTERS, p=0.95)
    lm = NGramLM.from_text(BUNNY_TEXT, order=2)
    base = BeamSearchDecoder(LETTERS, lm=lm, lm_weight=0.0, unk_score=0.0)(lp)[0]
    pen = BeamSearchDecoder(LETTERS, lm=lm, lm_weight=0.0, unk_score=-3.0)(lp)[0]
    assert base.text == pen.text == "zork"
    assert abs((base.score - pen.score) - 3.0) < 1e-9
    # with a unigram list that contains it, it is in-vocabulary: no penalty
    uni = BeamSearchDecoder(LETTERS, lm=lm, lm_weight=0.0, unk_score=-3.0,
                            unigrams=lm.words + ["zork"])(lp)[0]
    assert abs(uni.score - base.score) < 1e-9
    # a unigram list without an LM still penalises out-of-list words
    nolm = BeamSearchDecoder(LETTERS, unigrams=["bugs"], unk_score=-2.0)(lp)[0]
    assert abs(nolm.score - (nolm.am_score - 2.0)) < 1e-9


def test_token_level_lm_for_chinese():
    tokens = ["φ", "北", "京", "景", "色"]
    lp = soft(["φ", "北", "φ", {"景": 0.6, "京": 0.4}, "φ"], tokens)
    assert BeamSearchDecoder(tokens, word_delimiter=None)(lp)[0].text == "北景"
    lm = NGramLM.from_text(["北京", "北京北京", "景色", "北京景色"], order=2, token_level=True)
    h = BeamSearchDecoder(tokens, word_delimiter=None, lm=lm, lm_weight=1.0)(lp)[0]
    assert h.text == "北京"
    assert abs(h.lm_score - lm.sentence_logp(["北", "京"])) < 1e-9
    assert [w for w, _, _ in h.words] == ["北", "京"]


# ------------------------------------------------------------------ hotwords
def taipai_emissions():
    f = spell("taip", LETTERS) + [{"a": 0.6, "e": 0.4}, "φ", "i", "φ"]
    return soft(f, LETTERS)


def test_hotword_without_lm():
    lp = taipai_emissions()
    assert BeamSearchDecoder(LETTERS)(lp)[0].text == "taipai"
    h = BeamSearchDecoder(LETTERS, hotwords={"taipei": 3.0})(lp)[0]
    assert h.text == "taipei"
    assert abs(h.score - (h.am_score + 3.0)) < 1e-9


def test_hotword_with_lm_beats_oov_penalty():
    lp = taipai_emissions()
    lm = NGramLM.from_text(BUNNY_TEXT, order=2)
    h = BeamSearchDecoder(LETTERS, lm=lm, lm_weight=0.5, hotwords={"taipei": 3.0})(lp)[0]
    assert h.text == "taipei"


def test_unfinished_hotword_prefix_bonus_is_withdrawn():
    lp = peaky(spell("taipei", LETTERS), LETTERS, p=0.95)
    h = BeamSearchDecoder(LETTERS, hotwords={"taipeicity": 5.0})(lp)[0]
    assert h.text == "taipei"
    assert abs(h.score - h.am_score) < 1e-9
    # a word that diverges from the hotword keeps no bonus either
    lp2 = peaky(spell("tap", LETTERS), LETTERS, p=0.95)
    h2 = BeamSearchDecoder(LETTERS, hotwords={"taipei": 5.0})(lp2)[0]
    assert h2.text == "tap" and abs(h2.score - h2.am_score) < 1e-9


def test_hotword_token_mode():
    tokens = ["φ", "台", "北", "被", "市"]
    lp = soft(["台", "φ", {"被": 0.6, "北": 0.4}, "φ", "市"], tokens)
    assert BeamSearchDecoder(tokens, word_delimiter=None)(lp)[0].text == "台被市"
    h = BeamSearchDecoder(tokens, word_delimiter=None, hotwords={"台北": 2.0})(lp)[0]
    assert h.text == "台北市"
    assert abs(h.score - (h.am_score + 2.0)) < 1e-9


def test_token_mode_hotwords_match_anywhere_overlaps_included():
    tokens = ["φ", "好", "棒", "谢"]
    plain = BeamSearchDecoder(tokens, word_delimiter=None, beam_size=8)
    cases = [({"好好棒": 5.0}, "好好好棒", 5.0),  # a false start 好好 then 好好棒: found
             ({"好好棒": 5.0}, "棒好好棒", 5.0),
             ({"好好棒": 5.0}, "谢好好谢", 0.0),  # the prefix bonus withdrawn
             ({"好好棒": 5.0, "好棒": 2.0}, "好好棒", 7.0),  # both end at the last 棒
             ({"好棒棒": 3.0, "棒棒": 1.0}, "好棒棒棒", 5.0)]  # 好棒棒, 棒棒 and 棒棒 again
    for hot, text, bonus in cases:
        lp = soft(spell(text, tokens), tokens)
        h = BeamSearchDecoder(tokens, word_delimiter=None, beam_size=8, hotwords=hot)(lp)[0]
        assert h.text == text
        assert abs(h.score - plain(lp)[0].score - bonus) < 1e-9, (hot, text)


def test_bad_hotword():
    with pytest.raises(ValueError, match="cannot be spelt"):
        BeamSearchDecoder(LETTERS, hotwords={"Taipei!": 1.0})


# ------------------------------------------------------------------ streaming / batch
def same(a, b):
    assert [h.tokens for h in a] == [h.tokens for h in b]
    assert [h.timesteps for h in a] == [h.timesteps for h in b]
    assert [h.words for h in a] == [h.words for h in b]
    assert [h.score for h in a] == [h.score for h in b]
    assert [h.am_score for h in a] == [h.am_score for h in b]
    assert [h.lm_score for h in a] == [h.lm_score for h in b]


@pytest.mark.parametrize("with_lm", [False, True])
def test_streaming_equals_one_shot(with_lm):
    rng = np.random.default_rng(3)
    lm = NGramLM.from_text(BUNNY_TEXT, order=3) if with_lm else None
    dec = BeamSearchDecoder(LETTERS, beam_size=12, lm=lm, hotwords={"rabbit": 2.0})
    for _ in range(3):
        lp = make_peaky(rng, 240, LETTERS)
        one = dec(lp, n_best=4)
        st = dec.stream()
        t = 0
        while t < lp.shape[0]:
            n = int(rng.integers(0, 50))
            st.feed(lp[t:t + n])
            t += n
            assert st.partial().text is not None
        same(st.finish(n_best=4), one)
        with pytest.raises(ValueError, match="finished"):
            st.feed(lp[:3])


def test_streaming_equals_one_shot_without_lm_where_greedy_wins():
    # a beam of 1 prunes the labelling that greedy finds; one-shot decoding then returns
    # greedy's (more probable) labelling, and so must the stream
    p = np.array([[.10, .49, .41], [.30, .52, .18], [.73, .22, .05], [.43, .13, .44]])
    dec = BeamSearchDecoder(["_", "a", "b"], beam_size=1, word_delimiter=None)
    one = dec(p)
    assert one[0].text == "ab"
    st = dec.stream()
    st.feed(p[:1])
    st.feed(p[1:])
    same(st.finish(), one)
    rng = np.random.default_rng(11)
    dec = BeamSearchDecoder(LETTERS, beam_size=2)
    for _ in range(20):
        lp = log_softmax(rng.normal(0, 1, size=(30, len(LETTERS))))
        st = dec.stream()
        for a in range(0, 30, 7):
            st.feed(lp[a:a + 7])
        same(st.finish(n_best=2), dec(lp, n_best=2))


def test_exact_sum_of_a_long_labelling_agrees_with_ctc_loss():
    # ctc_forward gathers the states' emissions a block of frames at a time (memory
    # linear in the length); here the frames span two blocks
    torch = pytest.importorskip("torch")
    from ctcasr.decoding.beam import ctc_forward

    rng = np.random.default_rng(4)
    T, V, L = 3000, 6, 400
    lp = log_softmax(rng.normal(0, 2, size=(T, V)))
    labels = rng.integers(1, V, size=L)
    ours = ctc_forward(lp, labels.tolist())
    ref = -torch.nn.functional.ctc_loss(torch.from_numpy(lp)[:, None], torch.from_numpy(labels)[None], [T], [L],
                                        reduction="sum").item()
    assert abs(ours - ref) < 1e-6 * abs(ref)


def test_auto_input_type_takes_half_precision_and_minus_inf_log_probs():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    z = torch.from_numpy(rng.normal(0, 1, size=(40, len(LETTERS))).astype(np.float32))
    lp32 = torch.log_softmax(z, -1).numpy()
    # a log-softmax computed in bfloat16 (a model run under autocast): rows off by ~1e-2
    lp_bf16 = torch.log_softmax(z.bfloat16(), -1).float().numpy()
    assert not np.allclose(np.logaddexp.reduce(lp_bf16.astype(np.float64), axis=-1), 0.0, atol=1e-3)
    for dec in (GreedyDecoder(LETTERS), BeamSearchDecoder(LETTERS, beam_size=4)):
        dec(lp_bf16)  # (its argmax may differ: other numbers)
        dec(lp32.astype(np.float16))
        x = lp32.copy()
        x[3, x[3].argmin()] = -np.inf  # log of an underflowed softmax entry
        assert dec(x)[0].text == dec(lp32)[0].text


def test_word_pieces_carrying_the_delimiter_split_into_words():
    # SentencePiece-style vocabulary: a word starts at a token that begins with "▁"
    tokens = ["φ", "▁", "▁the", "▁cat", "s", "▁sat"]
    lp = soft(["▁the", "φ", "▁cat", "s", "φ", "▁sat", "φ"], tokens)
    for dec in (GreedyDecoder(tokens, word_delimiter="▁"), BeamSearchDecoder(tokens, word_delimiter="▁")):
        h = dec(lp)[0]
        assert h.text == "the cats sat"
        assert [w for w, _, _ in h.words] == ["the", "cats", "sat"]
        assert [(s, e) for _, s, e in h.words] == [(0, 1), (2, 4), (5, 6)]


def test_batch_equals_one_by_one():
    rng = np.random.default_rng(5)
    B, T = 4, 150
    x = np.stack([make_peaky(rng, T, LETTERS) for _ in range(B)]).astype(np.float32)
    lens = np.array([150, 90, 0, 33])
    dec = BeamSearchDecoder(LETTERS, beam_size=8)
    batch = dec(x, lens, n_best=2)
    assert len(batch) == B
    for b in range(B):
        same(batch[b], dec(x[b, : lens[b]], n_best=2))
    assert batch[2][0].text == "" and batch[2][0].score == 0.0


# ------------------------------------------------------------------ timestamps
def test_timestamps_of_hand_made_emission():
    # frame: 0 1 2 3 4 5 6 7 8 9
    #        φ a a b φ ␣ c c φ c
    frames = ["φ", "a", "a", "b", "φ", " ", "c", "c", "φ", "c"]
    lp = peaky(frames, LETTERS, p=0.97)
    for dec in (BeamSearchDecoder(LETTERS), BeamSearchDecoder(LETTERS, **EXACT, beam_size=64)):
        h = dec(lp)[0]
        assert h.text == "ab cc"
        assert h.timesteps == (1, 3, 5, 6, 9)
        assert h.words == [("ab", 1, 4), ("cc", 6, 10)]


def test_timesteps_increase_when_a_prefix_is_repointed():
    # "ar" is first reached through a weak 'r' (frame 3); the strong 'r' at frame 6 re-points
    # it there. "arr" (r at 3, blanks, r again at 6) is made in that same frame from the
    # paths of "ar" that end in blank, so its first 'r' stays at frame 3.
    lp = soft(["φ", "a", "φ", {"r": 0.45, "φ": 0.55}, "φ", "φ", "r", "φ"], LETTERS)
    hyps = {h.text: h for h in BeamSearchDecoder(LETTERS)(lp, n_best=4)}
    assert hyps["ar"].timesteps == (1, 6)
    assert hyps["arr"].timesteps == (1, 3, 6)


# ------------------------------------------------------------------ large vocabularies
def test_sparse_word_tables_agree_with_dense(monkeypatch):
    # vocabularies too large for dense [states, V] tables step the trie with searchsorted
    import ctcasr.decoding.beam as beam_module
    lm = NGramLM.from_text(BUNNY_TEXT, order=3)
    kw = {"beam_size": 12, "lm": lm, "lm_weight": 0.8, "word_score": 0.5, "hotwords": {"rabbit": 2.0}}
    dense = BeamSearchDecoder(LETTERS, **kw)
    monkeypatch.setattr(beam_module, "_DENSE_MAX", 0)
    sparse = BeamSearchDecoder(LETTERS, **kw)
    assert dense._fsa_la is not None and sparse._fsa_la is None
    rng = np.random.default_rng(8)
    for lp in [bunny_emissions(), taipai_emissions()] + [make_peaky(rng, 200, LETTERS) for _ in range(3)]:
        same(sparse(lp, n_best=3), dense(lp, n_best=3))


# ------------------------------------------------------------------ inputs
def test_probabilities_lists_and_float32_agree_with_log_probs():
    rng = np.random.default_rng(9)
    lp = make_peaky(rng, 80, LETTERS)
    dec = BeamSearchDecoder(LETTERS)
    ref = dec(lp)[0]
    assert dec(np.exp(lp))[0].tokens == ref.tokens
    assert dec(lp.astype(np.float32))[0].tokens == ref.tokens
    assert dec(lp.tolist())[0].tokens == ref.tokens
    logits = lp * 1.0 + 3.0
    assert BeamSearchDecoder(LETTERS, input_type="logits")(logits)[0].tokens == ref.tokens


def test_bad_inputs_raise_value_error():
    dec = BeamSearchDecoder(LETTERS)
    lp = np.log(np.full((5, len(LETTERS)), 1 / len(LETTERS)))
    with pytest.raises(ValueError, match="vocabulary size mismatch"):
        dec(lp[:, :-1])
    with pytest.raises(ValueError, match="shape"):
        dec(lp[0])
    bad = lp.copy()
    bad[2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        dec(bad)
    with pytest.raises(ValueError, match="neither"):
        dec(lp + 1.0)
    with pytest.raises(ValueError, match="n_best"):
        dec(lp, n_best=0)
    with pytest.raises(ValueError):
        dec.stream().feed(lp[None])
    with pytest.raises(ValueError, match="lm must be"):
        BeamSearchDecoder(LETTERS, lm=object())


def test_empty_input():
    h = BeamSearchDecoder(LETTERS)(np.zeros((0, len(LETTERS))))
    assert len(h) == 1 and h[0].text == "" and h[0].tokens == () and h[0].score == 0.0


def test_decoding_package_imports_numpy_only():
    code = ("import sys, ctcasr.decoding as d; d.BeamSearchDecoder; d.NGramLM; "
            "bad = [m for m in ('torch', 'torchaudio') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_n_best_gives_each_transcript_once_and_hypotheses_hash():
    """"a b" and "a b " (a trailing delimiter) are two CTC labellings of one transcript;
    the n-best list used to hold both. Now each text once, with its best labelling; and a
    Hypothesis can go into a set."""
    tokens = ["φ", " ", "a", "b"]
    p = np.array([
        [0.05, 0.05, 0.85, 0.05],
        [0.50, 0.45, 0.03, 0.02],
        [0.05, 0.05, 0.05, 0.85],
        [0.55, 0.40, 0.03, 0.02],
        [0.50, 0.30, 0.10, 0.10],
    ])
    dec = BeamSearchDecoder(tokens, blank=0, beam_size=16, word_delimiter=" ", prune_logp=-50.0, token_min_logp=-50.0)
    nb = dec(np.log(p), n_best=4)
    # The most probable labellings are "ab ", "a b ", "ab", "a b" (exact sums): two texts.
    assert [h.text for h in nb[:2]] == ["ab", "a b"] and nb[0].tokens == (2, 3, 1)
    texts = [h.text for h in nb]
    assert len(texts) == len(set(texts)) == 4
    assert all(a.score >= b.score for a, b in zip(nb, nb[1:]))
    assert len(set(nb)) == 4 and nb[0] in {nb[0]} and hash(nb[0]) == hash(dec(np.log(p))[0])
