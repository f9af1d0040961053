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

Speed: the work of one frame is a fixed number of numpy operations on ``[beams, tokens]``
arrays, so the Python-level cost per frame does not grow with the vocabulary. Prefixes are
identified by a 64-bit hash that is updated per appended token (a multiply-xorshift
of ``hash(parent) + R[token]`` with a random odd ``R`` per token), so merging an
extension with an existing beam is a sorted search instead of a dict of strings; two
different live prefixes would have to share a 64-bit hash to be merged by mistake
(probability about beams^2 * frames / 2^64). The token sequence of a prefix lives in a
tree of nodes (parent, token, frame) that is only walked at the end.

Pruning (all on by default, all can be switched off with ``None``):

* ``token_min_logp`` (default -6): in each frame only tokens with log-prob at least this
  (plus the frame's best token) may *start* a new prefix. The repeat of a prefix's own
  last token is always scored, so pruning never breaks an existing prefix's path sum.
* ``blank_skip_logp`` (default log 0.999): a frame whose blank probability is at least
  this starts no new prefix at all and costs four array operations. On a peaky CTC model
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
``word_delimiter=None`` a hotword is any token sequence, matched anywhere.

Timesteps: ``timesteps[i]`` is the frame at which token ``i`` was appended to its prefix;
when a later extension into an existing prefix brings more probability than the prefix had
gathered until then (it was first reached through a stray low-probability frame), the
later frame is taken. On a peaky model this is the first frame of the token's spike
(the greedy decoder reports the peak frame of the run instead). ``words`` are
``(word, start, end)`` with ``end`` one past the frame of the word's last token.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from .lm import NGramLM
from .types import Hypothesis, check_emissions, check_tokens, join_text, split_words

__all__ = ["BeamSearchDecoder", "BeamSearchStream"]

_NEG_INF = -np.inf
_M1 = np.uint64(0xBF58476D1CE4E5B9)  # odd: multiplication is a bijection mod 2^64
_S31 = np.uint64(31)
_ROOT_HASH = np.uint64(0x243F6A8885A308D3)


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

    def freeze(self) -> _Trie:
        S, V = len(self.children), self.V
        if (S + 1) * V <= (1 << 22):
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

    A decoder keeps LM caches that are not locked: give each thread its own decoder.
    Streams (``dec.stream()``) are independent of each other.
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
        if int(beam_size) < 1:
            raise ValueError(f"beam_size must be >= 1, got {beam_size}")
        self.beam_size = int(beam_size)
        for name, v in (("prune_logp", prune_logp), ("token_min_logp", token_min_logp),
                        ("blank_skip_logp", blank_skip_logp)):
            if v is not None and not (v <= 0 and math.isfinite(v)):
                raise ValueError(f"{name} must be a finite log-probability <= 0 or None, got {v}")
        self.prune_logp = prune_logp
        self.token_min_logp = token_min_logp
        self.blank_skip_logp = blank_skip_logp
        self.input_type = input_type
        if isinstance(lm, (str, bytes)) or hasattr(lm, "__fspath__"):
            lm = NGramLM.from_arpa(lm)
        if lm is not None and not isinstance(lm, NGramLM):
            raise ValueError(f"lm must be an NGramLM or a path to an ARPA file, got {type(lm).__name__}")
        self.lm = lm
        self.lm_weight = float(lm_weight) if lm is not None else 0.0
        self.word_score = float(word_score)
        self.unk_score = float(unk_score)
        self.lm_eos = bool(lm_eos)
        self.delim_id = self.tokens.index(word_delimiter) if word_delimiter is not None else -1
        # Random 64-bit code per token for the prefix hashes (fixed seed: reproducible).
        self._R = np.random.default_rng(0x5EED).integers(0, 2**63, size=V, dtype=np.int64).astype(np.uint64) * np.uint64(2) + np.uint64(1)

        # LM state interning: the arrays hold an int per hypothesis.
        self._lm_states: list[tuple] = []
        self._lm_state_id: dict[tuple, int] = {}
        self._lm_cache: dict[tuple, tuple] = {}
        self._lm_begin = self._intern(lm.begin_state()) if lm is not None else 0
        if lm is not None:
            self._tok_wid = np.array([lm.word_id.get(t, -1) for t in self.tokens], np.int64)
            # token mode: a token the LM does not know is an OOV word
            self._tok_unk = np.where(self._tok_wid < 0, self.unk_score, 0.0)

        self.hotwords = {str(w): float(s) for w, s in (hotwords or {}).items()}
        unigram_list = None if unigrams is None else [str(u) for u in unigrams]
        self._build_hot_trie()
        self._build_vocab_trie(unigram_list, lm_lookahead)
        self._ninf = np.full(self.beam_size, _NEG_INF)
        self._arange = np.arange(self.beam_size * V + 1)
        # most a completing word can add besides its LM score (which is <= 0)
        self._max_word_gain = (max(0.0, self.word_score) + max(0.0, self.unk_score)
                               + max([0.0] + [abs(w) for w in self.hotwords.values()]))
        self._extras = bool(self.hot is not None or self.vocab is not None or lm is not None
                            or self.word_score != 0.0)

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
                raise ValueError(f"hotword {w!r} cannot be spelt with the decoder's tokens")
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
        is_full = np.zeros(trie.size, bool)
        is_full[list(full)] = True
        # token mode: bonus at a full node is committed, so withdrawing it costs nothing
        self.hot_prov = trie.node_array(np.where(is_full, 0.0, hb))

    def _build_vocab_trie(self, unigrams, lookahead):
        """Trie of the in-vocabulary words (word mode with an LM or a unigram list)."""
        self.vocab = None
        if self.word_delimiter is None or (self.lm is None and unigrams is None):
            return
        lm = self.lm
        words = unigrams if unigrams is not None else lm.words
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
        trie.freeze()
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

    def _intern(self, state: tuple) -> int:
        i = self._lm_state_id.get(state)
        if i is None:
            i = self._lm_state_id[state] = len(self._lm_states)
            self._lm_states.append(state)
        return i

    def _lm_score(self, sid: int, wid: int):
        """(natural log p, next state id) for LM word id ``wid`` (-1: unknown word)."""
        key = (sid, wid)
        hit = self._lm_cache.get(key)
        if hit is None:
            if len(self._lm_cache) > 4_000_000:  # bound memory in long-running servers
                self._lm_cache.clear()
            lp, ns = self.lm.score_id(self._lm_states[sid], None if wid < 0 else wid)
            hit = self._lm_cache[key] = (lp, self._intern(ns))
        return hit

    # ------------------------------------------------------------------- API
    def stream(self) -> BeamSearchStream:
        """Chunked decoding: ``feed([t, V])`` any number of times, then ``finish()``."""
        return BeamSearchStream(self)

    def __call__(self, log_probs, lengths=None, n_best: int = 1):
        """``[T, V]`` -> ``[Hypothesis]`` (best first, at most ``n_best``);
        ``[B, T, V]`` (+ ``lengths``) -> one such list per utterance."""
        if int(n_best) < 1:
            raise ValueError(f"n_best must be >= 1, got {n_best}")
        x, lens, batched = check_emissions(log_probs, self.V, lengths, self.input_type, dtype=np.float64)
        out = []
        for b in range(x.shape[0]):
            s = BeamSearchStream(self)
            s._advance(x[b, : lens[b]])
            out.append(s.finish(n_best))
        return out if batched else out[0]


# Columns of the packed integer state (one row per hypothesis).
_NODE, _LAST, _LMS, _VT, _HT, _WLEN = range(6)


class BeamSearchStream:
    """Decoding state of one utterance; one-shot decoding is ``feed(all); finish()``.

    Per hypothesis: ``h`` (prefix hash), ``pb``/``pnb`` (log-probs ending in blank /
    non-blank), ``ext`` (all non-acoustic score terms, weighted), ``raw`` (committed LM
    log-prob, unweighted) and ``I``, packed ints: node of the last token, last token
    (-1: empty), LM state id, vocabulary-trie node, hotword-trie node, length of the
    partial word. Packing keeps the per-frame bookkeeping to a few array operations.
    """

    def __init__(self, dec: BeamSearchDecoder):
        self.d = dec
        self.t = 0
        self.done = False
        # node store: the prefix tree. Each batch of new nodes appends its parents and
        # tokens arrays, its frame and its size to lists (no array operation per frame);
        # _nodes() flattens them when a hypothesis is read out.
        self._cp: list = []
        self._ct: list = []
        self._cf: list = []
        self._cn: list = []
        self.n_len = 0
        e = np.zeros(0, np.int64)
        self._flat = (e, e, e)
        self.h = np.array([_ROOT_HASH], np.uint64)
        self.pb = np.zeros(1)
        self.pnb = np.full(1, _NEG_INF)
        self.ext = np.zeros(1)
        self.raw = np.zeros(1)
        self.I = np.array([[-1, -1, dec._lm_begin, 0, 0, 0]], np.int64)

    # ----------------------------------------------------------------- public
    def feed(self, chunk) -> None:
        """Decode more frames, ``[t, V]`` (log-probs or probs, as the decoder's input_type)."""
        if self.done:
            raise ValueError("this stream is finished; start a new one with dec.stream()")
        if np.ndim(chunk) != 2:
            raise ValueError(f"feed() takes one utterance's chunk [t, V], got shape {np.shape(chunk)}")
        x, _, _ = check_emissions(chunk, self.d.V, None, self.d.input_type, dtype=np.float64)
        self._advance(x[0])

    def partial(self) -> Hypothesis:
        """The best hypothesis so far (its last word scored as if the utterance ended)."""
        return self._final(1)[0]

    def finish(self, n_best: int = 1) -> list[Hypothesis]:
        """End the utterance: the ``n_best`` best hypotheses, best first."""
        if int(n_best) < 1:
            raise ValueError(f"n_best must be >= 1, got {n_best}")
        out = self._final(int(n_best))
        self.done = True
        return out

    # --------------------------------------------------------------- internals
    def _new_nodes(self, parents, toks, frame) -> np.ndarray:
        n = parents.shape[0]
        s = self.n_len
        self._cp.append(parents)
        self._ct.append(toks)
        self._cf.append(frame)
        self._cn.append(n)
        self.n_len = s + n
        return self.d._arange[:n] + s

    def _nodes(self):
        """Flat (parent, token, frame) arrays of every node created so far."""
        if self._cn:
            p, t, f = self._flat
            self._flat = (np.concatenate([p] + self._cp), np.concatenate([t] + self._ct),
                          np.concatenate([f, np.repeat(np.array(self._cf, np.int64), self._cn)]))
            self._cp, self._ct, self._cf, self._cn = [], [], [], []
        return self._flat

    def _advance(self, x: np.ndarray) -> None:
        T, V = x.shape
        if T == 0:
            return
        d = self.d
        blank = d.blank
        # log-probs with a trailing -inf column, so lp[last] with last == -1 is -inf
        lpx = np.empty((T, V + 1))
        lpx[:, :V] = x
        lpx[:, V] = _NEG_INF
        # Which tokens may start a new prefix in each frame (see module docstring).
        if d.token_min_logp is None:
            m = np.ones((T, V), bool)
        else:
            m = x >= d.token_min_logp
            m |= x >= x.max(axis=1, keepdims=True)
        m[:, blank] = False
        if d.blank_skip_logp is not None:
            m[x[:, blank] >= d.blank_skip_logp] = False
        rows, cols = np.nonzero(m)
        bounds = np.searchsorted(rows, np.arange(T + 1)).tolist()
        lpb_all = x[:, blank].tolist()
        for i in range(T):
            lo, hi = bounds[i], bounds[i + 1]
            lp = lpx[i]
            if lo == hi:
                # Blank frame: no new prefix, only the exact stay update.
                pnb = self.pnb
                ptot = np.logaddexp(self.pb, pnb)
                ptot += lpb_all[i]
                self.pb = ptot
                self.pnb = pnb + lp[self.I[:, _LAST]]
            else:
                self._full_frame(lp, cols[lo:hi], lpb_all[i])
            self.t += 1

    def _full_frame(self, lp: np.ndarray, C: np.ndarray, lpb: float) -> None:
        d = self.d
        pb, pnb, ext, h, I = self.pb, self.pnb, self.ext, self.h, self.I
        last = I[:, _LAST]
        K, nc = pb.shape[0], C.shape[0]
        ptot = np.logaddexp(pb, pnb)
        spb = ptot + lpb
        spnb = pnb + lp[last]
        # Extensions of every beam by every candidate token, [K, nc].
        cam = np.where(last[:, None] == C, pb[:, None], ptot[:, None])
        cam += lp[C]
        # prefix hash of each extension: multiply-xorshift of hash(parent) + R[token]
        ch = h[:, None] + d._R[C]
        ch *= _M1
        ch ^= ch >> _S31
        camf = cam.ravel()
        chf = ch.ravel()
        # Merge extensions that land on a prefix already in the beam (at most one
        # extension can hit each beam: its parent and last token are fixed).
        order = np.argsort(h)
        hs = h[order]
        pos = hs.searchsorted(chf)
        np.minimum(pos, K - 1, out=pos)
        hit = hs[pos] == chf
        node = I[:, _NODE]
        ni = None
        if hit.any():
            mi = hit.nonzero()[0]
            j = order[pos[mi]]
            camh = camf[mi]
            # a re-point when this extension brings more than the prefix had in all
            # before this frame (it was created early by a stray low-probability frame)
            better = camh > ptot[j]
            spnb[j] = np.logaddexp(spnb[j], camh)
            if better.any():
                # the token's main entry is now at this frame: re-point the beam to a
                # node with this frame (the old node stays for other descendants)
                mb = mi[better]
                I = I.copy()
                I[j[better], _NODE] = self._new_nodes(node[mb // nc], C[mb % nc], self.t)
                node = I[:, _NODE]
            ni = (~hit).nonzero()[0]
        stay_score = np.logaddexp(spb, spnb)
        stay_score += ext
        cs = cam + ext[:, None]
        if d._extras:
            # extensions that cannot reach the pruning threshold even before their
            # (never positive) LM score need no LM look-up
            floor = stay_score.max() + d.prune_logp if d.prune_logp is not None else -np.inf
            g = self._grid_terms(C, K, nc, cs, floor)
            dextf = g[0].ravel()
            cs += g[0]
        csf = cs.ravel()
        if ni is not None:
            csf = csf[ni]
        allscore = np.concatenate((stay_score, csf))
        best = allscore.max()
        if not best > -np.inf:
            sel = np.arange(1)  # nothing is possible any more; keep one hypothesis
        else:
            thr = best + d.prune_logp if d.prune_logp is not None else -np.inf
            sel = ((allscore >= thr) if thr > -np.inf else (allscore > -np.inf)).nonzero()[0]
            B = d.beam_size
            if sel.shape[0] > B:
                sel = sel[np.argpartition(allscore[sel], -B)[-B:]]
        sel.sort()
        split = int(sel.searchsorted(K))
        s_sel = sel[:split]
        c_sel = sel[split:] - K
        if ni is not None:
            c_sel = ni[c_sel]
        kk = c_sel // nc
        cc = c_sel % nc
        ntok = C[cc]
        In = I[kk]
        In[:, _NODE] = self._new_nodes(node[kk], ntok, self.t)
        In[:, _LAST] = ntok
        cat = np.concatenate
        self.h = cat((h[s_sel], chf[c_sel]))
        self.pb = cat((spb[s_sel], d._ninf[: c_sel.shape[0]]))
        self.pnb = cat((spnb[s_sel], camf[c_sel]))
        if d._extras:
            self.ext = cat((ext[s_sel], ext[kk] + dextf[c_sel]))
            raw = self._new_rows(g, In, kk, cc, c_sel, nc)
            self.raw = cat((self.raw[s_sel], raw))
        else:
            self.ext = cat((ext[s_sel], ext[kk]))
        self.I = cat((I[s_sel], In))

    def _grid_terms(self, C, K, nc, cs, floor):
        """Score change of every extension (beam k, token C[j]) and what is needed to
        build the new hypotheses' state: ``(dext, vt_grid, ht_grid, completion, lm)``.

        ``cs``: the extensions' scores so far; ``floor``: a score below which an
        extension is certainly pruned (its LM look-up is skipped, its score set -inf)."""
        d = self.d
        I = self.I
        dext = np.zeros((K, nc))
        gvt = ght = comp = glm = None
        if d.word_delimiter is not None:
            if d.vocab is not None:
                vt = I[:, _VT]
                gvt = d.vocab.step(vt[:, None], C)
                dext += d.vocab_look[gvt]
                dext -= d.vocab_look[vt][:, None]
            if d.hot is not None:
                ht = I[:, _HT]
                ght = d.hot.step(ht[:, None], C)
                dext += d.hot_bonus[ght]
                dext -= d.hot_bonus[ht][:, None]
            q = (C == d.delim_id).nonzero()[0]
            if q.size:
                q = int(q[0])
                comp = (q,) + self._complete_words(cs[:, q] - d.vocab_look[I[:, _VT]] + d._max_word_gain
                                                   if d.vocab is not None else None, floor)
                dext[:, q] = comp[1]
            return dext, gvt, ght, comp, None
        # Token mode: every token is an LM word.
        if d.word_score != 0.0:
            dext += d.word_score
        if d.lm is not None:
            score = d._lm_score
            wids = d._tok_wid[C].tolist()  # token id -> LM word id (-1: unknown)
            res = [score(s, w) for s in I[:, _LMS].tolist() for w in wids]
            glp = np.array([r[0] for r in res]).reshape(K, nc)
            glm = (glp, np.array([r[1] for r in res], np.int64))
            dext += d.lm_weight * glp
            if d.unk_score != 0.0:
                dext += d._tok_unk[C]
        if d.hot is not None:
            ht = I[:, _HT]
            ght = d.hot.step(ht[:, None], C)
            restart = d.hot.step(np.zeros_like(ght), np.broadcast_to(C, ght.shape))
            ght = np.where(ght < 0, restart, ght)
            dext += d.hot_bonus[ght]
            dext -= d.hot_prov[ht][:, None]
        return dext, gvt, ght, None, glm

    def _new_rows(self, g, In, kk, cc, c_sel, nc):
        """Fill the LM/trie columns of new hypotheses ``In`` in place; return their raw LM."""
        _, gvt, ght, comp, glm = g
        raw = self.raw[kk]
        if gvt is not None:
            In[:, _VT] = gvt.ravel()[c_sel]
        if ght is not None:
            In[:, _HT] = ght.ravel()[c_sel]
        if glm is not None:
            raw += glm[0].ravel()[c_sel]
            In[:, _LMS] = glm[1][c_sel]
        if self.d.word_delimiter is not None:
            In[:, _WLEN] += 1
            if comp is not None:
                r = np.flatnonzero(cc == comp[0])
                if r.size:
                    kd = kk[r]
                    In[r, _LMS] = comp[2][kd]
                    In[r, _VT:] = 0  # vocab node, hotword node, word length: a fresh word
                    raw[r] = comp[3][kd]
        return raw

    def _complete_words(self, bound=None, floor=-np.inf):
        """Per beam: score change, LM state and raw LM total after the partial word
        completes. Beams whose partial word is empty are unchanged. Where ``bound`` (an
        upper bound of the completed score before the LM term) is below ``floor`` the
        LM is not consulted and the change is -inf (that extension would be pruned)."""
        d = self.d
        I = self.I
        has = I[:, _WLEN] > 0
        delta = np.zeros(has.shape[0])
        n_lms, n_raw = I[:, _LMS].copy(), self.raw.copy()
        if bound is not None and floor > -np.inf and d.lm_weight >= 0:
            skip = has & (bound < floor)
            delta[skip] = _NEG_INF
            has &= ~skip
        ks = has.nonzero()[0]
        if not ks.size:
            return delta, n_lms, n_raw
        dk = np.full(ks.shape[0], d.word_score)
        vt, ht = I[ks, _VT], I[ks, _HT]
        if d.hot is not None:
            # keep the bonus of a finished hotword, withdraw a half-spelt one
            dk += d.hot_full[ht]
            dk -= d.hot_bonus[ht]
        if d.vocab is not None:
            # withdraw the look-ahead (or an already charged unk_score), then charge
            # unk_score for a word that is not in the vocabulary
            dk += d.vocab_unk_done[vt]
            dk -= d.vocab_look[vt]
            if d.lm is not None:
                wids = np.where(d.vocab_is_word[vt], d.vocab_word_id[vt], -1)
                score = d._lm_score
                res = [score(s, w) for s, w in zip(n_lms[ks].tolist(), wids.tolist())]
                lps = np.array([r[0] for r in res])
                dk += d.lm_weight * lps
                n_lms[ks] = [r[1] for r in res]
                n_raw[ks] += lps
        delta[ks] = dk
        return delta, n_lms, n_raw

    def _final(self, n_best: int) -> list[Hypothesis]:
        d = self.d
        am = np.logaddexp(self.pb, self.pnb)
        score = am + self.ext
        # without extras only the acoustic arrays are kept in step with the beam
        raw = self.raw.copy() if d._extras else np.zeros_like(am)
        lms = self.I[:, _LMS]
        if d.word_delimiter is not None:
            if d._extras:
                delta, lms, raw = self._complete_words()
                score = score + delta
        elif d.hot is not None:
            score = score - d.hot_prov[self.I[:, _HT]]
        if d.lm is not None and d.lm_eos and d.lm.eos_id is not None:
            eos = np.array([d._lm_score(s, d.lm.eos_id)[0] for s in lms.tolist()])
            score = score + d.lm_weight * eos
            raw = raw + eos
        order = np.argsort(-score, kind="stable")[:n_best]
        n_parent, n_tok, n_frame = (a.tolist() for a in self._nodes())
        out = []
        for k in order.tolist():
            toks, frames = [], []
            n = int(self.I[k, _NODE])
            while n >= 0:
                toks.append(n_tok[n])
                frames.append(n_frame[n])
                n = n_parent[n]
            toks.reverse()
            frames.reverse()
            out.append(Hypothesis(
                tokens=tuple(toks),
                text=join_text(toks, d.tokens, d.word_delimiter),
                timesteps=tuple(frames),
                words=split_words(toks, frames, d.tokens, d.word_delimiter),
                score=float(score[k]),
                am_score=float(am[k]),
                lm_score=float(raw[k]),
            ))
        return out
