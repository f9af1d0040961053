"""CTC prefix beam search with exact path sums, n-gram LM fusion and hotwords.

numpy only. Every live hypothesis is a distinct *prefix* (label sequence) with two
numbers: ``pb``, the log-probability of all alignments of the frames so far that spell
the prefix and end in blank, and ``pnb``, those that end in the prefix's last token.
One frame with log-probs ``lp`` updates them exactly (Graves 2012; Hannun et al. 2014)::

    stay:   pb'  = logaddexp(pb, pnb) + lp[blank]
            pnb' = pnb + lp[last]                   # the last token repeats
    extend: pnb'(prefix + c) = logaddexp(pb, pnb) + lp[c]      if c != last
                             = pb + lp[c]                      if c == last (needs a blank)

and an extension that lands on a prefix already in the beam is *added* to it
(log-sum-exp), never maxed: the result is the total probability of the labelling, not its
best path. With a beam wide enough, pruning off, and no LM, the top hypothesis is the most
probable labelling and its ``am_score`` equals ``-ctc_loss`` of that labelling.

Speed: the work of one frame is a fixed number of numpy operations on arrays of
``beams x candidate tokens`` candidates, so the Python-level cost per frame does not grow
with the vocabulary; on small arrays each operation costs its call overhead, so the
design counts operations. The hypotheses are the columns of one float and one int array;
every candidate of a frame (a beam staying, or a beam extended by a token) starts as a
copy of its beam's column (one ``take`` per array), the extensions' entries are rewritten
in place, and the survivors are again one ``take``. Prefixes are identified by a 64-bit
hash that is updated per appended token (a multiply-xorshift of ``hash(parent) +
R[token]`` with a random odd ``R`` per token), so merging an extension with an existing
beam is a sorted search instead of a dict of strings; two different live prefixes would
have to share a 64-bit hash to be merged by mistake (probability about beams^2 * frames /
2^64). The token sequence of a prefix lives in a tree of nodes (parent, token, frame) that
is only walked at the end. With word-level extras (LM, unigrams, hotwords, word score)
the partial word is one automaton state per hypothesis, whose step and score change per
token are precomputed tables (one gather per frame); the n-gram LM is consulted only in
frames where the word delimiter is a candidate, only for hypotheses whose completed word
could survive the pruning, through a dict cache keyed by one int per (LM state, word).

Pruning (all on by default, all can be switched off with ``None``):

* ``token_min_logp`` (default -6): in each frame only tokens with log-prob at least this
  (plus the frame's best token) may *start* a new prefix. The repeat of a prefix's own
  last token is always scored, so pruning never breaks an existing prefix's path sum.
* ``blank_skip_logp`` (default log 0.999): a frame whose blank probability is at least
  this starts no new prefix at all and costs three array operations. On a peaky CTC model
  most frames are such blank frames.
* ``prune_logp`` (default -10): after each frame, hypotheses scoring more than
  ``-prune_logp`` below the best are dropped (on top of keeping ``beam_size``).

They drop paths worth less than e^-6 of a frame's mass, which on peaky models changes
neither the ranking nor the scores beyond ~1e-4 (tests check this); on flat, untrained
outputs switch them off.

Scores (natural log throughout)::

    score = am_score + lm_weight * lm_score + word_score * n_words
            + hotword bonuses + unk_score * n_oov_words

``lm_score`` is the LM log-prob of the words (ARPA log10 converted to natural log),
including ``</s>`` when ``lm_eos`` is true. With ``word_delimiter`` set the LM is a word
model, applied when the delimiter completes a word and to the last, partial word at the end
of the utterance; with ``word_delimiter=None`` every token is scored as an LM word (a
character-level model for Chinese). During the search a partial word carries a
provisional *look-ahead* (``lm_weight`` times the best unigram log-prob of any vocabulary
word it can still become), replaced by the real n-gram score when the word completes, so
hypotheses that just paid for a word do not lose against ones that have not yet.

OOV words: a word that is not in the LM (or in ``unigrams`` when given) is scored with
the LM's ``<unk>`` probability plus ``unk_score`` (default -10), charged as soon as the
partial word leaves the vocabulary. Hotwords count as in-vocabulary.

Hotwords: ``{word: weight}``. Completing the word adds ``weight``; while a prefix of it is
being spelt the hypothesis carries ``weight * len(prefix)/len(word)``, withdrawn if the
word goes elsewhere, so a hotword is not pruned before it is finished. With
``word_delimiter=None`` a hotword is any token sequence, matched anywhere, overlapping
occurrences included (an Aho-Corasick matcher; see ``_build_hot_matcher``).

Timesteps: ``timesteps[i]`` is the frame at which token ``i`` was appended to its prefix;
when a later extension into an existing prefix brings more probability than the prefix had
gathered until then (it was first reached through a stray low-probability frame), the
later frame is taken (for the prefix itself: extensions of it made in the same frame keep
the earlier frame, so timesteps always increase). On a peaky model this is the first
frame of the token's spike (the greedy decoder reports the peak frame of the run instead). ``words`` are
``(word, start, end)`` with ``end`` one past the frame of the word's last token.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence

import numpy as np

from .lm import NGramLM
from .types import (
    DecodingError,
    Hypothesis,
    check_count,
    check_emissions,
    check_input_type,
    check_n_best,
    check_tokens,
    join_text,
    split_words,
)

__all__ = ["BeamSearchDecoder", "BeamSearchStream"]

_NEG_INF = -np.inf
_M1 = np.uint64(0xBF58476D1CE4E5B9)  # odd: multiplication is a bijection mod 2^64
_S31 = np.uint64(31)
_ROOT_HASH = np.uint64(0x243F6A8885A308D3)
_DENSE_MAX = 1 << 22  # largest [states, V] table built dense (else sorted keys + searchsorted)


def _finite_number(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float, np.integer, np.floating)) and math.isfinite(v)


class _Trie:
    """A token-id trie whose ``step(nodes, toks)`` is one vectorised lookup.

    Node 0 is the root; ``-1`` means "not in the trie" and stays ``-1``. Small tries use a
    dense ``[nodes + 1, V]`` table whose last row is all ``-1`` (so index -1 works
    unchanged); large ones a sorted key array and ``searchsorted``.
    """

    def __init__(self, V: int):
        self.V = V
        self.children: list[dict[int, int]] = [{}]
        self.depth = [0]

    def insert(self, seq: Sequence[int]) -> int:
        n = 0
        for tok in seq:
            nxt = self.children[n].get(tok)
            if nxt is None:
                nxt = len(self.children)
                self.children[n][tok] = nxt
                self.children.append({})
                self.depth.append(self.depth[n] + 1)
            n = nxt
        return n

    def freeze(self, dense: bool = True) -> _Trie:
        S, V = len(self.children), self.V
        if dense and (S + 1) * V <= _DENSE_MAX:
            table = np.full((S + 1, V), -1, dtype=np.int64)
            for n, ch in enumerate(self.children):
                for tok, c in ch.items():
                    table[n, tok] = c
            self.table, self.keys = table, None
        else:
            pairs = sorted((n * V + tok, c) for n, ch in enumerate(self.children) for tok, c in ch.items())
            self.keys = np.array([p[0] for p in pairs], dtype=np.int64)
            self.vals = np.array([p[1] for p in pairs], dtype=np.int64)
            self.table = None
        self.size = S
        return self

    def step(self, nodes: np.ndarray, toks: np.ndarray) -> np.ndarray:
        if self.table is not None:
            return self.table[nodes, toks]
        if not len(self.keys):
            return np.full(np.broadcast_shapes(np.shape(nodes), np.shape(toks)), -1, np.int64)
        q = nodes * self.V + toks
        q = np.where(nodes < 0, -1, q)
        pos = np.minimum(np.searchsorted(self.keys, q), len(self.keys) - 1)
        return np.where(self.keys[pos] == q, self.vals[pos], -1)

    def node_array(self, values, fill=0.0, dtype=np.float64) -> np.ndarray:
        """A per-node array with one extra trailing slot (read by node -1) set to ``fill``."""
        a = np.full(self.size + 1, fill, dtype=dtype)
        a[: self.size] = values
        return a


class BeamSearchDecoder:
    """CTC prefix beam search; ``dec(log_probs, n_best=5)`` -> ``[Hypothesis]``, best first.

    ``tokens``: the model's output symbols in order (index = class id). ``blank``: the
    blank's index. ``word_delimiter``: the token that separates words (``" "`` or ``"|"``),
    or ``None`` when every token is a word. ``lm``: an :class:`NGramLM` (or a path to an
    ARPA file). See the module docstring for the scores, pruning and hotwords.

    A decoder keeps LM caches and per-frame work arrays that are not locked: give each
    thread its own decoder. Streams (``dec.stream()``) of one decoder are independent of
    each other (one thread may interleave them).
    """

    def __init__(
        self,
        tokens: Sequence[str],
        blank: int = 0,
        beam_size: int = 32,
        word_delimiter: str | None = " ",
        lm=None,
        lm_weight: float = 0.5,
        word_score: float = 0.0,
        unk_score: float = -10.0,
        unigrams: Iterable[str] | None = None,
        hotwords: dict[str, float] | None = None,
        prune_logp: float | None = -10.0,
        token_min_logp: float | None = -6.0,
        blank_skip_logp: float | None = math.log(0.999),
        lm_lookahead: bool = True,
        lm_eos: bool = True,
        input_type: str = "auto",
    ):
        self.tokens = check_tokens(tokens, blank, word_delimiter)
        V = self.V = len(self.tokens)
        self.blank = int(blank)
        self.word_delimiter = word_delimiter
        self.beam_size = check_count(beam_size, "beam_size")
        for name, v in (("prune_logp", prune_logp), ("token_min_logp", token_min_logp),
                        ("blank_skip_logp", blank_skip_logp)):
            if v is not None and not (v <= 0 and math.isfinite(v)):
                raise DecodingError(f"{name} must be a finite log-probability <= 0 or None, got {v}")
        self.prune_logp = prune_logp
        self.token_min_logp = token_min_logp
        self.blank_skip_logp = blank_skip_logp
        self.input_type = check_input_type(input_type)
        for name, v in (("lm_weight", lm_weight), ("word_score", word_score), ("unk_score", unk_score)):
            if not _finite_number(v):
                raise DecodingError(f"{name} must be a finite number, got {v!r}")
        if hotwords is not None and not isinstance(hotwords, dict):
            raise DecodingError(f"hotwords must be a dict {{word: weight}}, got {type(hotwords).__name__}")
        for w, v in (hotwords or {}).items():
            if not _finite_number(v):
                raise DecodingError(f"hotword {w!r}: weight must be a finite number, got {v!r}")
        if isinstance(unigrams, (str, bytes)):
            raise DecodingError("unigrams must be a list of words, not one string")
        if isinstance(lm, (str, bytes)) or hasattr(lm, "__fspath__"):
            lm = NGramLM.from_arpa(lm)
        if lm is not None and not isinstance(lm, NGramLM):
            raise DecodingError(f"lm must be an NGramLM or a path to an ARPA file, got {type(lm).__name__}")
        self.lm = lm
        self.lm_weight = float(lm_weight) if lm is not None else 0.0
        self.word_score = float(word_score)
        self.unk_score = float(unk_score)
        self.lm_eos = bool(lm_eos)
        self.delim_id = self.tokens.index(word_delimiter) if word_delimiter is not None else -1
        # Random 64-bit code per token for the prefix hashes (fixed seed: reproducible).
        rnd = np.random.default_rng(0x5EED).integers(0, 2**63, size=V, dtype=np.int64).astype(np.uint64)
        self._R = rnd * np.uint64(2) + np.uint64(1)

        # LM state interning: a hypothesis holds its LM state as the int state id * nw1,
        # so that adding (word id + 1) gives the key of the (state, word) pair under which
        # the LM score and next state are cached (see _lm_key, _lm_batch).
        self._lm_states: list[tuple] = []
        self._lm_state_id: dict[tuple, int] = {}
        self._lm_cache: dict[int, tuple[float, int]] = {}  # key -> (log p, next key base)
        self._nw1 = len(lm.vocab) + 1 if lm is not None else 1
        self._lm_begin = self._intern(lm.begin_state()) * self._nw1 if lm is not None else 0
        if lm is not None:
            tok_wid = np.array([lm.word_id.get(t, -1) for t in self.tokens], np.int64)
            self._tok_wk = tok_wid + 1  # token mode: a token's part of the LM cache key
            # token mode: a token the LM does not know is an OOV word
            self._tok_unk = np.where(tok_wid < 0, self.unk_score, 0.0)

        self.hotwords = {str(w): float(s) for w, s in (hotwords or {}).items()}
        unigram_list = None if unigrams is None else [str(u) for u in unigrams]
        if word_delimiter is not None and (self.hotwords or lm is not None or unigram_list is not None
                                           or self.word_score != 0.0):
            inner = [t for i, t in enumerate(self.tokens) if i != self.delim_id and word_delimiter in t]
            if inner:
                raise DecodingError(
                    f"tokens such as {inner[0]!r} carry the word delimiter {word_delimiter!r} inside them "
                    "(word pieces): that works with greedy and plain beam search, but an LM, unigrams, "
                    "hotwords or word_score need the delimiter as a token of its own")
        self._build_hot_trie()
        self._build_vocab_trie(unigram_list, lm_lookahead)
        self._extras = bool(self.hot is not None or self.vocab is not None or lm is not None
                            or self.word_score != 0.0)
        # word mode with extras: one automaton over the partial word (see _build_word_fsa)
        self._fsa = self._extras and word_delimiter is not None
        if self._fsa:
            self._build_word_fsa()
        # per (beams, candidates): index arrays of the candidate grid and views (see _grid)
        self._ix: dict[tuple, tuple] = {}
        self._ix_size = 0
        self._cap = 0
        self._ids = np.arange(self.beam_size + 1)  # ids of a frame's new nodes (at most B)

    # ------------------------------------------------------------ construction
    def _spell(self, word: str) -> list[int] | None:
        """Token ids spelling ``word`` (longest match first), or None if impossible."""
        if not hasattr(self, "_tok_map"):
            self._tok_map = {}
            for i, s in enumerate(self.tokens):
                if i != self.blank and i != self.delim_id and s and s not in self._tok_map:
                    self._tok_map[s] = i
            self._tok_maxlen = max((len(s) for s in self._tok_map), default=1)
        out, i = [], 0
        while i < len(word):
            for L in range(min(self._tok_maxlen, len(word) - i), 0, -1):
                tid = self._tok_map.get(word[i:i + L])
                if tid is not None:
                    out.append(tid)
                    i += L
                    break
            else:
                return None
        return out or None

    def _build_hot_trie(self):
        self.hot = None
        if not self.hotwords:
            return
        trie = _Trie(self.V)
        bonus, full = {0: 0.0}, {}
        for w, weight in self.hotwords.items():
            seq = self._spell(w)
            if seq is None:
                raise DecodingError(f"hotword {w!r} cannot be spelt with the decoder's tokens")
            n = 0
            for i, tok in enumerate(seq):
                n = trie.insert(seq[: i + 1])
                bonus[n] = max(bonus.get(n, -math.inf), weight * (i + 1) / len(seq))
            full[n] = max(full.get(n, -math.inf), weight)
        trie.freeze()
        hb = [0.0] * trie.size
        fw = [0.0] * trie.size
        for n, b in bonus.items():
            hb[n] = b
        for n, w in full.items():
            fw[n] = w
            hb[n] = max(hb[n], w)
        self.hot = trie
        self.hot_bonus = trie.node_array(hb)      # provisional bonus while spelling
        self.hot_full = trie.node_array(fw)       # weight of a hotword ending here
        if self.word_delimiter is None:
            self._build_hot_matcher(trie, full)

    def _build_hot_matcher(self, trie: _Trie, full: dict):
        """Token mode: hotwords match anywhere, overlaps included (Aho-Corasick).

        A hypothesis holds the trie node of the longest suffix of its tokens that is a
        hotword prefix. A token that leaves the trie continues from the node's failure
        link (its longest proper suffix in the trie), so in 好好好棒 the hotword 好好棒 is
        found although the first 好好 led nowhere. Entering a node adds the weights of
        every hotword ending there, its suffixes' too (committed), plus the provisional
        bonus of the longest hotword it is a proper prefix of (withdrawn when it is left,
        and at the end of the utterance)."""
        S = trie.size
        prov = [0.0] * S
        for w, weight in self.hotwords.items():
            seq = self._spell(w)
            n = 0
            for i, tok in enumerate(seq[:-1]):
                n = trie.children[n][tok]
                prov[n] = max(prov[n], weight * (i + 1) / len(seq))
        fail = [0] * S
        commit = [0.0] * S
        queue = list(trie.children[0].values())  # depth 1: fail to the root
        for n in queue:  # (breadth first: the list grows while it is walked)
            commit[n] = full.get(n, 0.0) + commit[fail[n]]
            for tok, c in trie.children[n].items():
                f = fail[n]
                while f and tok not in trie.children[f]:
                    f = fail[f]
                fail[c] = trie.children[f].get(tok, 0)
                queue.append(c)
        self.hot_fail = np.array(fail + [0], np.int64)       # (node -1 -> root)
        self.hot_prov = trie.node_array(prov)
        self.hot_enter = trie.node_array(np.add(prov, commit))

    def _hot_next(self, nodes: np.ndarray, toks: np.ndarray) -> np.ndarray:
        """Token mode: the matcher's node after ``toks`` (vectorised; the failure links
        are followed only for the few hypotheses whose token leaves the trie mid-word)."""
        nxt = self.hot.step(nodes, toks)
        pend = ((nxt < 0) & (nodes > 0)).nonzero()[0]
        nxt[nxt < 0] = 0
        cur, tk = nodes[pend], toks[pend]
        while pend.shape[0]:
            cur = self.hot_fail[cur]
            s = self.hot.step(cur, tk)
            hit = s >= 0
            nxt[pend[hit]] = s[hit]
            keep = ~hit & (cur > 0)
            pend, cur, tk = pend[keep], cur[keep], tk[keep]
        return nxt

    def _build_vocab_trie(self, unigrams, lookahead):
        """Trie of the in-vocabulary words (word mode with an LM or a unigram list)."""
        self.vocab = None
        if self.word_delimiter is None or (self.lm is None and unigrams is None):
            return
        lm = self.lm
        words = unigrams if unigrams is not None else lm.words
        given = [w for w in dict.fromkeys(words) if w not in ("<s>", "</s>", "<unk>")]
        spelt = sum(self._spell(w) is not None for w in given)
        # A vocabulary the tokens cannot spell makes every word out-of-vocabulary, and
        # unk_score then pays for fewer words: "the cat sat" comes out as "thecatsat".
        # Usually a case mismatch (upper-case wav2vec2 tokens, a lower-case LM).
        what = "unigram list" if unigrams is not None else "LM"
        if not given or not spelt:
            raise DecodingError(
                f"none of the {len(given)} words of the {what} can be spelt with the decoder's tokens"
                + (f" (e.g. {given[0]!r}; check upper/lower case)" if given else ""))
        if lm is not None and unigrams is None and len(given) >= 10:
            single = sum(len(self._spell(w) or ()) == 1 for w in given)
            if single >= 0.9 * len(given):
                warnings.warn(f"{single} of the LM's {len(given)} words are single tokens: it looks like a "
                              "token-level LM (ctcasr lm build --token-level), but the decoder is in word mode "
                              f"(word_delimiter={self.word_delimiter!r}) and will score whole words with it",
                              stacklevel=3)
        if spelt < 0.5 * len(given):
            warnings.warn(f"only {spelt} of the {len(given)} words of the {what} can be spelt with the decoder's "
                          "tokens; the others can never be written (upper/lower case?)", stacklevel=3)
        words = list(dict.fromkeys(list(words) + list(self.hotwords)))
        trie = _Trie(self.V)
        term: dict[int, int] = {}
        best: dict[int, float] = {}
        for w in words:
            seq = self._spell(w)
            if seq is None:
                continue
            end = trie.insert(seq)
            wid = lm.word_id.get(w, -1) if lm is not None else -1
            if wid is None:
                wid = -1
            term[end] = wid if lm is not None else -1
            if lm is not None and lookahead:
                u = lm.unigram_logp(w)
                n = 0
                for tok in seq:
                    n = trie.children[n][tok]
                    if u > best.get(n, -math.inf):
                        best[n] = u
        trie.freeze(dense=False)
        is_word = np.zeros(trie.size, bool)
        is_word[list(term)] = True
        word_id = np.full(trie.size, -1, np.int64)
        for n, wid in term.items():
            word_id[n] = wid
        look = np.zeros(trie.size)
        for n, u in best.items():
            look[n] = self.lm_weight * u
        self.vocab = trie
        self.vocab_is_word = trie.node_array(is_word, False, bool)
        self.vocab_word_id = trie.node_array(word_id, -1, np.int64)
        # Provisional score of a partial word at each node: the weighted look-ahead, and
        # in the extra slot (node -1, "left the vocabulary") unk_score, so that stepping
        # out of the trie charges unk_score exactly once.
        self.vocab_look = trie.node_array(look, self.unk_score)
        # What completing the word at a node adds besides its LM score: unk_score unless
        # the node ends a vocabulary word (node -1 too: its provisional score already
        # holds the unk_score, withdrawn and re-added, so it is charged once).
        self.vocab_unk_done = trie.node_array(np.where(is_word, 0.0, self.unk_score), self.unk_score)

    def _build_word_fsa(self):
        """The partial word of a hypothesis as one automaton state (word mode).

        States are the nodes of the vocabulary trie (or of the hotword trie when there is
        no vocabulary; just the root when there is neither), plus a last state ``oov``:
        the partial word left the trie. State 0 is the empty word. Per (state, token):
        the next state ``CH`` and the score change ``LA`` (look-ahead and hotword bonus
        replaced by the next state's; for the delimiter, everything completing the word
        adds except its LM score, and the next state 0). Small automata get dense
        ``[states, V]`` tables (one gather per frame); large ones step the trie with
        ``searchsorted`` and score the step with the same floating-point operations, so
        both give the same scores to the last bit.
        """
        V, vocab, hot = self.V, self.vocab, self.hot
        base = vocab if vocab is not None else hot
        S0 = base.size if base is not None else 1
        S = S0 + 1
        oov = S0
        children = base.children if base is not None else [{}]
        # vocabulary-trie node and hotword-trie node of each state (-1: none)
        vt = np.append(np.arange(S0), -1) if vocab is not None else None
        ht = None
        if hot is not None:
            if base is hot:
                ht = np.append(np.arange(S0), -1)
            else:
                ht = np.full(S, -1, np.int64)
                ht[0] = 0
                for n in range(S0):  # parents come before children
                    h = ht[n]
                    if h >= 0:
                        hch = hot.children[h]
                        for tok, c in children[n].items():
                            ht[c] = hch.get(tok, -1)
        lv = self.vocab_look[vt] if vocab is not None else None
        hb = self.hot_bonus[ht] if hot is not None else None
        done = np.full(S, self.word_score)
        if hot is not None:
            done += self.hot_full[ht]
            done -= self.hot_bonus[ht]
        if vocab is not None:
            done += self.vocab_unk_done[vt]
            done -= self.vocab_look[vt]
        done[0] = 0.0  # an empty word completes nothing
        # A hypothesis holds its state s as s * V, so that s * V + token indexes the tables.
        self._fsa_oov = oov
        self._fsa_done = done
        self._fsa_lv, self._fsa_hb = lv, hb
        # the completed word's part of the LM cache key (word id + 1; 0: unknown word)
        self._fsa_wk = (np.where(self.vocab_is_word[vt], self.vocab_word_id[vt], -1) + 1
                        if self.lm is not None else None)
        self._fsa_wk_list = self._fsa_wk.tolist() if self.lm is not None else None  # (Python lookups)
        self._fsa_base = base
        if base is None or S * V <= _DENSE_MAX:
            ch = np.full((S, V), oov, np.int64)
            for n, chn in enumerate(children):
                for tok, c in chn.items():
                    ch[n, tok] = c
            ch[:, self.delim_id] = 0
            la = self._fsa_delta(np.arange(S)[:, None], ch)
            la[:, self.delim_id] = done
            self._fsa_ch, self._fsa_la = (ch * V).ravel(), la.ravel()
        else:
            self._fsa_ch = self._fsa_la = None

    def _fsa_delta(self, s, c):
        """Score change of the step from states ``s`` to states ``c`` (not the delimiter)."""
        out = np.zeros(np.broadcast_shapes(np.shape(s), np.shape(c)))
        if self._fsa_lv is not None:
            out += self._fsa_lv[c]
            out -= self._fsa_lv[s]
        if self._fsa_hb is not None:
            out += self._fsa_hb[c]
            out -= self._fsa_hb[s]
        return out

    def _intern(self, state: tuple) -> int:
        i = self._lm_state_id.get(state)
        if i is None:
            i = self._lm_state_id[state] = len(self._lm_states)
            self._lm_states.append(state)
        return i

    def _lm_key(self, key: int) -> tuple[float, int]:
        """(natural log p, next LM key base) for ``key = state id * nw1 + word id + 1``
        (word id -1: unknown word); a hypothesis holds its LM state as ``state id * nw1``."""
        e = self._lm_cache.get(key)
        if e is None:
            if len(self._lm_cache) > 4_000_000:  # bound memory in long-running servers
                self._lm_cache.clear()
            sid, w = divmod(key, self._nw1)
            lp, ns = self.lm.score_id(self._lm_states[sid], None if w == 0 else w - 1)
            e = self._lm_cache[key] = (lp, self._intern(ns) * self._nw1)
        return e

    def _lm_batch(self, keys: np.ndarray):
        """``_lm_key`` of many keys: (log-probs array, next key bases list)."""
        get = self._lm_cache.get
        res = [get(k) or self._lm_key(k) for k in keys.tolist()]
        return np.array([e[0] for e in res]), [e[1] for e in res]

    def _grid(self, K: int, nc: int) -> tuple:
        """The candidate grid of ``K`` beams and ``nc`` tokens: candidate ``i < K`` is beam
        ``i`` staying, candidate ``K + k * nc + j`` is beam ``k`` extended by the ``j``-th
        token. Returns the beam of each candidate, the same for the extensions only, the
        token column of each extension, and the work arrays for the candidates' float and
        int columns with views of their rows (views of one buffer that every frame reuses:
        a frame reads them only until it has taken its survivors out)."""
        n = K * (nc + 1)
        nF, nN = (4, 5) if self._extras else (2, 3)
        if n > self._cap:  # grow the work arrays (and drop the views of the old ones)
            self._cap = max(n, 2 * self._cap)
            self._fbuf = np.empty(nF * self._cap)
            self._nbuf = np.empty(nN * self._cap, np.int64)
            self._sbuf = np.empty(self._cap)
            self._ix.clear()
            self._ix_size = 0
        if self._ix_size > 4_000_000:  # bound memory (index arrays: 24 bytes a candidate)
            self._ix.clear()
            self._ix_size = 0
        ek = np.repeat(np.arange(K), nc)
        FA = self._fbuf[: nF * n].reshape(nF, n)
        NA = self._nbuf[: nN * n].reshape(nN, n)
        fpb, fpnb = FA[_PB], FA[_PNB]
        g = (np.concatenate((np.arange(K), ek)), ek, np.tile(np.arange(nc), K), FA, NA, fpnb,
             fpb[:K], fpnb[:K], fpb[K:], fpnb[K:], NA[_LAST, K:], NA.view(np.uint64)[_H, K:], NA[_H, K:])
        sc = self._sbuf[:n]  # the candidates' scores
        g += (sc, sc[:K], sc[K:])
        if self._extras:
            g += (FA[_EXT], FA[_RAW, K:], NA[_LMK, K:], NA[_WS, K:], FA[_EXT, K:])
        self._ix[(K, nc)] = g
        self._ix_size += 3 * n
        return g

    # ------------------------------------------------------------------- API
    def stream(self) -> BeamSearchStream:
        """Chunked decoding: ``feed([t, V])`` any number of times, then ``finish()``."""
        return BeamSearchStream(self)

    def __call__(self, log_probs, lengths=None, n_best: int = 1):
        """``[T, V]`` -> ``[Hypothesis]`` (best first, at most ``n_best``);
        ``[B, T, V]`` (+ ``lengths``) -> one such list per utterance."""
        n_best = check_n_best(n_best)
        x, lens, batched = check_emissions(log_probs, self.V, lengths, self.input_type, dtype=np.float64)
        out = []
        for b in range(x.shape[0]):
            s = BeamSearchStream(self, keep_frames=False)
            s._advance(x[b, : lens[b]])
            hyps = s.finish(n_best)
            if not self._extras:
                hyps = self._not_worse_than_greedy(x[b, : lens[b]], hyps, n_best)
            out.append(hyps)
        return out if batched else out[0]

    def _not_worse_than_greedy(self, lp: np.ndarray, hyps: list, n_best: int) -> list:
        """Guarantee (without LM/hotwords/word score) that the answer is at least as probable
        as greedy's labelling. A finite beam can prune the prefix that would have become the
        greedy labelling on flat, uncertain outputs (measured: beam 32 lost to greedy in 12
        of 4000 random near-uniform inputs); rescoring the greedy labelling exactly costs one
        CTC forward pass, and only when it differs from the beam's best, which on a trained
        model's peaky outputs it almost never does."""
        if lp.shape[0] == 0:
            return hyps
        g = lp.argmax(axis=1)
        starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
        keep = g[starts] != self.blank
        labels = tuple(int(t) for t in g[starts][keep])
        if hyps and hyps[0].tokens == labels:
            return hyps
        # The beam's am_score is exact for what it kept but pruning may have dropped some of
        # its alignments, so compare exact sums on both sides (else a pruned-low but truly
        # better beam answer would be swapped for greedy's: measured, CER got worse).
        lp_g, lp_b = ctc_forward_many(lp, [labels, hyps[0].tokens if hyps else ()], self.blank)
        if hyps and lp_g <= lp_b:
            return hyps
        # peak frame of each kept run, as GreedyDecoder reports it
        ends = np.r_[starts[1:], lp.shape[0]][keep]
        best = lp[np.arange(lp.shape[0]), g]
        frames = [int(a + np.argmax(best[a:e])) for a, e in zip(starts[keep], ends)]
        h = Hypothesis(tokens=labels, text=join_text(labels, self.tokens, self.word_delimiter),
                       timesteps=tuple(frames), words=split_words(labels, frames, self.tokens, self.word_delimiter),
                       score=lp_g, am_score=lp_g, lm_score=0.0)
        return ([h] + [x for x in hyps if x.text != h.text])[:n_best]


def ctc_forward(log_probs: np.ndarray, labels, blank: int = 0) -> float:
    """log P(labels | log_probs) summed over every CTC alignment (the forward algorithm),
    ``log_probs [T, V]``; -inf when the labelling cannot fit in T frames."""
    return ctc_forward_many(log_probs, [labels], blank)[0]


def ctc_forward_many(log_probs: np.ndarray, labellings, blank: int = 0) -> list:
    """``ctc_forward`` of several labellings in one pass over the frames: their state
    sequences sit side by side in one array (transitions never cross from one to the next),
    so the per-frame cost, which is numpy's call overhead rather than arithmetic for
    labellings of a few hundred states, is paid once."""
    T = log_probs.shape[0]
    exts, first, last = [], [], []
    n = 0
    for labels in labellings:
        ext = np.full(2 * len(labels) + 1, blank, np.int64)
        ext[1::2] = labels
        exts.append(ext)
        first.append(n)
        n += ext.size
        last.append(n - 1)
    ext = np.concatenate(exts)
    first = np.array(first)
    # From s-1: not into a segment's first state. From s-2: only into a label state whose
    # label differs from the one two states back, inside the same segment.
    can1 = np.ones(n, bool)
    can1[first] = False
    can2 = np.zeros(n, bool)
    for f, e in zip(first, exts):
        m = np.zeros(e.size, bool)
        m[3::2] = e[3::2] != e[1:-2:2]
        can2[f: f + e.size] = m
    # Probability domain with one common scale per frame: adds and multiplies instead of
    # logaddexp (3x faster). The labellings share the scale, so one whose probability is
    # below ~1e-300 of the largest underflows to -inf: harmless where the caller only asks
    # which is larger. The emissions of the states are gathered a block of frames at a
    # time: the state count grows with the utterance, so [T, states] at once would be
    # quadratic in its length (3.7 GB for 10,000 frames of flat output).
    m1 = can1[1:].astype(np.float64)
    m2 = can2[2:].astype(np.float64)
    second = first[np.array([x.size > 1 for x in exts])] + 1
    alpha = np.zeros(n)
    tmp = np.empty(n)
    log_scale = 0.0
    block = max(1, min(T, (1 << 21) // max(n, 1)))  # ~16 MB of float64 a block
    for t in range(T):
        if t % block == 0:
            lp = log_probs[t:t + block, ext]
            shift = lp.max(axis=1, keepdims=True)
            shift[~np.isfinite(shift)] = 0.0  # a frame where none of the states is possible
            e = np.exp(lp - shift)
            log_scale += float(shift.sum())
        et = e[t % block]
        if t == 0:
            alpha[first] = et[first]
            alpha[second] = et[second]
            continue
        c = alpha.sum()
        if c <= 0:
            break  # nothing possible any more: every labelling -inf
        log_scale += math.log(c)
        alpha /= c
        tmp[:] = alpha
        tmp[1:] += alpha[:-1] * m1
        tmp[2:] += alpha[:-2] * m2
        np.multiply(tmp, et, out=alpha)
    out = []
    for f, b in zip(first, last):
        p_end = alpha[b] + (alpha[b - 1] if b > f else 0.0)
        out.append(math.log(p_end) + log_scale if p_end > 0 else -math.inf)
    return out


# Rows of the per-hypothesis state arrays. Floats F: log-prob ending in blank, in the last
# token (both less the stream's offset, see BeamSearchStream), all non-acoustic score
# terms (weighted), committed LM log-prob (unweighted). Ints N: prefix hash (uint64 bits),
# prefix-tree node, last token (-1: empty prefix), LM state (state id * (LM words + 1)),
# partial-word state (word mode: automaton state * V; token mode: hotword node).
_PB, _PNB, _EXT, _RAW = range(4)
_H, _NODE, _LAST, _LMK, _WS = range(5)


class BeamSearchStream:
    """Decoding state of one utterance; one-shot decoding is ``feed(all); finish()``.

    The hypotheses are the columns of two arrays, floats ``F`` and ints ``N`` (rows named
    above; without LM, hotwords or word score only the first two / three rows), so that
    carrying the survivors of a frame over is one ``take`` per array.

    Each frame's log-probs are used less the frame's largest one, ``r``, and ``off`` sums
    the ``r`` (the acoustic log-probs of every hypothesis are ``off`` + the stored ones):
    rankings do not change, and a blank frame, whose largest log-prob is the blank's, then
    needs no addition for the blank.
    """

    def __init__(self, dec: BeamSearchDecoder, keep_frames: bool = True):
        self.d = dec
        self.t = 0
        # Without LM, hotwords or word score, finish() gives the same guarantee as one-shot
        # decoding (never less probable than greedy's labelling), which needs the frames:
        # they are kept (float64, T x V) until then.
        self._kept: list | None = [] if keep_frames and not dec._extras else None
        self.off = 0.0
        self.done = False
        # node store: the prefix tree. Each batch of new nodes appends a [2, n] array of
        # parents and tokens, its frame and its size to lists; _nodes() flattens them
        # when a hypothesis is read out.
        self._cb: list = []
        self._cf: list = []
        self._cn: list = []
        self.n_len = 0
        e = np.zeros(0, np.int64)
        self._flat = (e, e, e)
        if dec._extras:
            self.F = np.array([[0.0], [_NEG_INF], [0.0], [0.0]])
            self.N = np.array([[int(_ROOT_HASH)], [-1], [-1], [dec._lm_begin], [0]], np.int64)
        else:
            self.F = np.array([[0.0], [_NEG_INF]])
            self.N = np.array([[int(_ROOT_HASH)], [-1], [-1]], np.int64)

    # ----------------------------------------------------------------- public
    def feed(self, chunk) -> None:
        """Decode more frames, ``[t, V]`` (log-probs or probs, as the decoder's input_type)."""
        if self.done:
            raise DecodingError("this stream is finished; start a new one with dec.stream()")
        if np.ndim(chunk) != 2:
            raise DecodingError(f"feed() takes one utterance's chunk [t, V], got shape {np.shape(chunk)}")
        x, _, _ = check_emissions(chunk, self.d.V, None, self.d.input_type, dtype=np.float64)
        if self._kept is not None and x.shape[1]:
            self._kept.append(np.array(x[0]))  # a copy: the caller may reuse its buffer
        self._advance(x[0])

    def partial(self) -> Hypothesis:
        """The best hypothesis so far (its last word scored as if the utterance ended;
        without the greedy check that ``finish`` makes)."""
        return self._final(1)[0]

    def finish(self, n_best: int = 1) -> list[Hypothesis]:
        """End the utterance: the ``n_best`` best hypotheses, best first (the same as
        one-shot decoding of all the frames fed)."""
        n_best = check_n_best(n_best)
        out = self._final(n_best)
        if self._kept is not None:
            lp = np.concatenate(self._kept) if self._kept else np.zeros((0, self.d.V))
            out = self.d._not_worse_than_greedy(lp, out, n_best)
            self._kept = None
        self.done = True
        return out

    # --------------------------------------------------------------- internals
    def _new_nodes(self, pt: np.ndarray, frame: int) -> np.ndarray:
        """Add nodes (``pt``: [2, n], parents and tokens) made at ``frame``; their ids."""
        n = pt.shape[1]
        s = self.n_len
        self._cb.append(pt)
        self._cf.append(frame)
        self._cn.append(n)
        self.n_len = s + n
        return self.d._ids[:n] + s

    def _nodes(self):
        """Flat (parent, token, frame) arrays of every node created so far."""
        if self._cn:
            p, t, f = self._flat
            blk = np.concatenate(self._cb, axis=1)
            self._flat = (np.concatenate((p, blk[0])), np.concatenate((t, blk[1])),
                          np.concatenate([f, np.repeat(np.array(self._cf, np.int64), self._cn)]))
            self._cb, self._cf, self._cn = [], [], []
        return self._flat

    def _advance(self, x: np.ndarray) -> None:
        T, V = x.shape
        if T == 0:
            return
        d = self.d
        blank = d.blank
        xmax = x.max(axis=1, keepdims=True)
        r = np.where(xmax > -np.inf, xmax, 0.0)  # (a frame with nothing possible: 0)
        # log-probs less the frame's largest, with a trailing -inf column (lp[-1] = -inf)
        lpx = np.empty((T, V + 1))
        np.subtract(x, r, out=lpx[:, :V])
        lpx[:, V] = _NEG_INF
        # Which tokens may start a new prefix in each frame (see module docstring).
        if d.token_min_logp is None:
            m = np.ones((T, V), bool)
        else:
            m = x >= d.token_min_logp
            m |= x >= xmax
        m[:, blank] = False
        if d.blank_skip_logp is not None:
            m[x[:, blank] >= d.blank_skip_logp] = False
        rows, cols = np.nonzero(m)
        bounds = np.searchsorted(rows, np.arange(T + 1)).tolist()
        lpb_all = lpx[:, blank].tolist()
        r_all = r[:, 0].tolist()
        # column of the word delimiter among each frame's candidates (-1: not one)
        if d._fsa:
            q = d.delim_id
            qcol = np.where(m[:, q], np.count_nonzero(m[:, :q], axis=1), -1).tolist()
        else:
            qcol = None
        full = self._full_frame
        F, N = self.F, self.N
        pb, pnb, last = F[_PB], F[_PNB], N[_LAST]
        off, t = self.off, self.t
        logaddexp = np.logaddexp
        for i in range(T):
            lo, hi = bounds[i], bounds[i + 1]
            off += r_all[i]
            if lo == hi:
                # Blank frame: no new prefix, only the exact stay update (the blank is
                # the frame's largest log-prob, so its relative log-prob is 0).
                logaddexp(pb, pnb, pb)
                if lpb_all[i] != 0.0:
                    pb += lpb_all[i]
                pnb += lpx[i][last]
            else:
                self.t = t
                full(lpx[i], cols[lo:hi], lpb_all[i], r_all[i], qcol[i] if qcol is not None else -1)
                F, N = self.F, self.N
                pb, pnb, last = F[_PB], F[_PNB], N[_LAST]
            t += 1
        self.off, self.t = off, t

    def _full_frame(self, lp: np.ndarray, C: np.ndarray, lpb: float, r: float, q: int) -> None:
        """One frame in which the tokens ``C`` may start new prefixes (``lp``, ``lpb``:
        log-probs less ``r``, the frame's largest; ``q``: the column of the word delimiter
        in ``C``, or -1).

        Every candidate (a beam staying, or a beam extended by a token of ``C``; see
        ``_grid``) starts as a copy of its beam's columns, and the extensions'
        entries are then rewritten in place, so survivors are picked with one ``take``."""
        d = self.d
        F, N = self.F, self.N
        K, nc = F.shape[1], C.shape[0]
        g = d._ix.get((K, nc)) or d._grid(K, nc)
        pk, ek, ej, FA, NA, fpnb, spb, spnb, xpb, cam, xlast, xh, xhi = g[:13]
        F.take(pk, 1, FA, "clip")
        N.take(pk, 1, NA, "clip")
        ct = C[ej]
        add = np.add
        # stays: pb' = logaddexp(pb, pnb) + lp[blank], pnb' = pnb + lp[last]
        ptot = np.logaddexp(F[_PB], F[_PNB])
        add(ptot, lpb, spb)
        spnb += lp[N[_LAST]]
        # extensions: pb' = -inf, pnb' = (pb if the token repeats the last one, else
        # logaddexp(pb, pnb)) + lp[token]
        base = ptot[ek]
        np.putmask(base, xlast == ct, xpb)
        add(base, lp[ct], cam)
        xpb.fill(_NEG_INF)
        xlast[:] = ct
        # prefix hash of each extension: multiply-xorshift of hash(parent) + R[token]
        xh += d._R[ct]
        xh *= _M1
        xh ^= xh >> _S31
        # Merge extensions that land on a prefix already in the beam (at most one
        # extension can hit each beam: its parent and last token are fixed).
        h = N[_H]
        order = h.argsort()
        hs = h[order]
        pos = hs.searchsorted(xhi)
        hit = hs.take(pos, None, None, "clip") == xhi  # (pos == K: above all, no hit)
        mi = hit.nonzero()[0]
        if mi.shape[0]:
            j = order[pos[mi]]
            camh = cam[mi]
            # a re-point when this extension brings more than the prefix had in all
            # before this frame (it was created early by a stray low-probability frame);
            # ptot is relative to the offset before this frame, camh after it
            better = camh + r > ptot[j]
            spnb[j] = np.logaddexp(spnb[j], camh)
            cam[mi] = _NEG_INF  # no longer a candidate of its own
            if np.count_nonzero(better):
                # the token's main entry is now at this frame: re-point the beam to a
                # node with this frame (the old node stays, also as the parent of this
                # frame's extensions of the beam)
                mb = mi[better] + K
                NA[_NODE, j[better]] = self._new_nodes(NA[_NODE:_LAST + 1, mb], self.t)
        # scores: stays logaddexp(pb', pnb'), extensions pnb' (+ the non-acoustic terms)
        sc, s0, scx = g[13:16]
        np.logaddexp(spb, spnb, s0)
        scx[...] = cam
        if d._extras:
            fext, xraw, xlmk, xws, fextx = g[16:]
            add(sc, fext, sc)
            if q < 0 and d._fsa and d._fsa_la is not None:
                # (the common case inlined: a dense automaton and no word completes)
                fi = xws + ct
                dext = d._fsa_la[fi]
                d._fsa_ch.take(fi, None, xws, "clip")
            elif d._fsa:
                dext = self._word_steps(xraw, xlmk, xws, N[_WS], ct, K, nc, q, sc)
            else:
                dext = self._token_steps(xraw, xlmk, xws, ct)
            scx += dext
            fextx += dext
        best = sc[sc.argmax()]
        if not best > _NEG_INF:
            sel = np.arange(1)  # nothing is possible any more; keep one hypothesis
        else:
            if d.prune_logp is not None:
                sel = (sc >= best + d.prune_logp).nonzero()[0]
            else:
                sel = (sc > _NEG_INF).nonzero()[0]
            B = d.beam_size
            if sel.shape[0] > B:
                sel = sel[sc[sel].argpartition(-B)[-B:]]
                sel.sort()
        F = self.F = FA.take(sel, 1)
        N = self.N = NA.take(sel, 1)  # (fresh arrays: FA and NA are reused)
        split = int(sel.searchsorted(K))
        n = sel.shape[0] - split
        if n:
            # new prefixes: their node column holds the parent's node until here
            s = self.n_len
            self._cb.append(N[_NODE:_LAST + 1, split:].copy())
            self._cf.append(self.t)
            self._cn.append(n)
            self.n_len = s + n
            add(d._ids[:n], s, N[_NODE, split:])

    def _word_steps(self, xraw, xlmk, xs, ws, ct, K, nc, q, sc):
        """Word mode: score change of every extension and its next automaton state
        (written to ``xs``) and, for the delimiter, the completed word's LM score and
        state (``xraw``, ``xlmk``: the extensions' raw LM and LM state; ``ws``: the
        beams' automaton states)."""
        d = self.d
        if d._fsa_la is not None:
            fi = xs + ct
            dext = d._fsa_la[fi]
            d._fsa_ch.take(fi, None, xs, "clip")
        else:
            V = d.V
            s = xs // V
            ch = d._fsa_base.step(s, ct)
            ch[ch < 0] = d._fsa_oov
            dext = d._fsa_delta(s, ch)
            if q >= 0:
                ch[q::nc] = 0
                dext[q::nc] = d._fsa_done[s[q::nc]]
            np.multiply(ch, V, out=xs)
        if q < 0 or d.lm is None:
            return dext
        # The delimiter completes each beam's partial word: add its LM score (cached per
        # LM state and word). An extension that is pruned even with the best LM score
        # (0) skips the look-up: it keeps a score below the pruning threshold.
        #
        # At most one delimiter extension per beam: few enough that a Python loop over
        # them (with element writes) costs less than the dozen numpy calls of the
        # vectorised form; the float operations are the same, so are the results.
        dq = dext[q::nc]
        if d.prune_logp is not None and d.lm_weight >= 0:
            s0 = sc[:K]
            floor = float(s0[s0.argmax()]) + d.prune_logp
            cand = (sc[K + q::nc] + dq).tolist()
        else:
            floor, cand = None, None
        lmk = xlmk[q::nc]
        raw = xraw[q::nc]
        lml = None
        wk, V = d._fsa_wk_list, d.V
        get = d._lm_cache.get
        lw = d.lm_weight
        for k, w in enumerate(ws.tolist()):
            if w and (floor is None or cand[k] >= floor):
                if lml is None:
                    lml = lmk.tolist()
                key = lml[k] + wk[w // V]
                lp, ns = get(key) or d._lm_key(key)
                dq[k] += lw * lp
                lmk[k] = ns
                raw[k] += lp
        return dext

    def _token_steps(self, xraw, xlmk, xht, ct):
        """Token mode (every token is a word): score change of every extension, and its
        raw LM, LM state and hotword node (written to ``xraw``, ``xlmk``, ``xht``)."""
        d = self.d
        dext = np.zeros(ct.shape[0])
        if d.word_score != 0.0:
            dext += d.word_score
        if d.lm is not None:
            glp, nss = d._lm_batch(xlmk + d._tok_wk[ct])
            dext += d.lm_weight * glp
            if d.unk_score != 0.0:
                dext += d._tok_unk[ct]
            xraw += glp
            xlmk[:] = nss
        if d.hot is not None:
            ght = d._hot_next(xht, ct)
            dext += d.hot_enter[ght]
            dext -= d.hot_prov[xht]
            xht[:] = ght
        return dext

    def _complete_words(self):
        """Per beam: score change, LM state and raw LM total after the partial word
        completes (word mode). Beams whose partial word is empty are unchanged."""
        d = self.d
        F, N = self.F, self.N
        ws = N[_WS]
        delta = np.zeros(ws.shape[0])
        n_lmk, n_raw = N[_LMK].copy(), F[_RAW].copy()
        ks = (ws != 0).nonzero()[0]
        if ks.size:
            s = ws[ks] // d.V
            dk = d._fsa_done[s]
            if d.lm is not None:
                lps, nss = d._lm_batch(n_lmk[ks] + d._fsa_wk[s])
                dk = dk + d.lm_weight * lps
                n_lmk[ks] = nss
                n_raw[ks] += lps
            delta[ks] = dk
        return delta, n_lmk, n_raw

    def _final(self, n_best: int) -> list[Hypothesis]:
        d = self.d
        F, N = self.F, self.N
        am = np.logaddexp(F[_PB], F[_PNB])
        am += self.off
        if d._extras:
            score = am + F[_EXT]
            raw = F[_RAW].copy()
            lmk = N[_LMK]
        else:
            # without extras only the acoustic rows are kept
            score, raw, lmk = am, np.zeros_like(am), None
        if d._fsa:
            delta, lmk, raw = self._complete_words()
            score = score + delta
        elif d._extras and d.hot is not None:
            score = score - d.hot_prov[N[_WS]]
        if d.lm is not None and d.lm_eos and d.lm.eos_id is not None:
            eos, _ = d._lm_batch(lmk + (d.lm.eos_id + 1))
            score = score + d.lm_weight * eos
            raw = raw + eos
        order = np.argsort(-score, kind="stable")
        n_parent, n_tok, n_frame = (a.tolist() for a in self._nodes())
        out, texts = [], set()
        for k in order.tolist():
            if len(out) == n_best:
                break
            toks, frames = [], []
            n = int(N[_NODE, k])
            while n >= 0:
                toks.append(n_tok[n])
                frames.append(n_frame[n])
                n = n_parent[n]
            toks.reverse()
            frames.reverse()
            text = join_text(toks, d.tokens, d.word_delimiter)
            if text in texts:
                # Labellings that differ only in where word delimiters stand ("one two" and
                # "one two " are two CTC labellings) are one transcript: the n-best list
                # gives each transcript once, with its best-scoring labelling.
                continue
            texts.add(text)
            out.append(Hypothesis(
                tokens=tuple(toks),
                text=text,
                timesteps=tuple(frames),
                words=split_words(toks, frames, d.tokens, d.word_delimiter),
                score=float(score[k]),
                am_score=float(am[k]),
                lm_score=float(raw[k]),
            ))
        return out
