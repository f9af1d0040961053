"""Back-off n-gram language models: ARPA read/write, Kneser-Ney estimation, scoring.

numpy is not even needed here; the module is pure Python so ``ctcasr.decoding`` stays
light enough to embed.

Units. ARPA files store log10 probabilities; :class:`NGramLM` converts them to *natural*
logs when it loads them (and back when it writes), so every score it returns adds up
directly with the acoustic model's ``log_softmax`` output.

Scoring follows the usual back-off rule (the one KenLM implements)::

    log p(w | h) = log p*(w | h)                      if the n-gram h w is listed
                 = bow(h) + log p(w | h[1:])           otherwise

and a word the model has never seen gets the probability of ``<unk>`` when the file lists
one (KenLM behaves the same), or :attr:`NGramLM.missing_unk_logp` when it does not.

Estimation (:meth:`NGramLM.from_text`) is interpolated modified Kneser-Ney with three
discounts per order (Chen & Goodman 1998), the method of KenLM's ``lmplz``: the highest
order uses raw counts, lower orders use continuation counts (the number of distinct
words seen to the left), except n-grams that start with ``<s>``, which keep raw counts
because nothing can precede ``<s>``. The unigram distribution is interpolated with a
uniform one over the vocabulary (which includes ``<unk>``), so ``<unk>`` receives the
left-over mass. The written ARPA loads in KenLM and pyctcdecode.
"""

from __future__ import annotations

import math
import os
import stat
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

LN10 = math.log(10.0)
BOS, EOS, UNK = "<s>", "</s>", "<unk>"

__all__ = ["LN10", "ArpaFormatError", "LMError", "NGramLM", "build_lm_cli"]


class LMError(ValueError):
    """An ARPA file or LM training text that cannot be used (missing, unreadable, empty,
    bad settings); the message names the file. A ValueError, as these errors were before;
    not a ctcasr.errors class because ctcasr.decoding depends on nothing else in ctcasr."""


class ArpaFormatError(LMError):
    """A malformed ARPA file; the message names the file and the line."""

    def __init__(self, path, lineno: int | None, msg: str):
        where = f"{path}:{lineno}" if lineno is not None else f"{path}"
        super().__init__(f"{where}: {msg}")
        self.path, self.lineno = path, lineno


class NGramLM:
    """A back-off n-gram model over words (or tokens, for a token-level model).

    ``ngrams[n]`` maps a tuple of ``n`` word ids to ``(logp, bow)`` in natural log; the
    words themselves are in ``vocab`` (id -> word) and ``word_id`` (word -> id).

    A *state* is a tuple of word ids: the last words that still matter, cut to the longest
    suffix that the model lists (as KenLM does), so equal states score equally and the
    decoder can cache on them. :meth:`begin_state` is the state after ``<s>``.
    """

    def __init__(self, order: int, vocab: Sequence[str], ngrams: list[dict[tuple, tuple[float, float]]],
                 missing_unk_logp: float = -100.0 * LN10):
        if order < 1:
            raise LMError(f"n-gram order must be >= 1, got {order}")
        self.order = int(order)
        self.vocab = list(vocab)
        self.word_id = {w: i for i, w in enumerate(self.vocab)}
        # ngrams[0] is unused so that ngrams[n] holds n-grams of length n.
        self.ngrams = ngrams
        # Same constant KenLM uses when a model has no <unk> entry (log10 -100).
        self.missing_unk_logp = float(missing_unk_logp)
        self.bos_id = self.word_id.get(BOS)
        self.eos_id = self.word_id.get(EOS)
        self.unk_id = self.word_id.get(UNK)
        self._cache: dict[tuple, tuple[float, tuple]] = {}

    # ----------------------------------------------------------------- queries
    def __contains__(self, word: str) -> bool:
        return word in self.word_id and word not in (BOS, EOS, UNK)

    @property
    def words(self) -> list[str]:
        """The ordinary words the model knows (no ``<s>``, ``</s>``, ``<unk>``)."""
        return [w for w in self.vocab if w not in (BOS, EOS, UNK)]

    def counts(self) -> list[int]:
        return [len(self.ngrams[n]) for n in range(1, self.order + 1)]

    def begin_state(self) -> tuple:
        return (self.bos_id,) if self.bos_id is not None and self.order > 1 else ()

    def unigram_logp(self, word: str) -> float:
        """log p(word) with no context (natural log); ``<unk>``'s for unknown words."""
        wid = self.word_id.get(word)
        if wid is None:
            wid = self.unk_id
        e = self.ngrams[1].get((wid,)) if wid is not None else None
        return e[0] if e is not None else self.missing_unk_logp

    def score_id(self, state: tuple, wid: int | None) -> tuple[float, tuple]:
        """``(log p(word | state), next_state)`` for a word id (None: unknown word)."""
        key = (state, wid)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        if wid is None:
            wid = self.unk_id
        ng = self.ngrams
        bow = 0.0
        logp = None
        if wid is not None:
            for start in range(len(state) + 1):
                h = state[start:]
                e = ng[len(h) + 1].get(h + (wid,))
                if e is not None:
                    logp = e[0] + bow
                    break
                if h:
                    he = ng[len(h)].get(h)
                    if he is not None:
                        bow += he[1]
        if logp is None:  # unknown word and no <unk> entry
            logp = bow + self.missing_unk_logp
            nxt: tuple = ()
        else:
            full = (state + (wid,))[-(self.order - 1):] if self.order > 1 else ()
            nxt = ()
            for start in range(len(full)):
                s = full[start:]
                if s in ng[len(s)]:
                    nxt = s
                    break
        out = (logp, nxt)
        if len(self._cache) > 2_000_000:  # bound memory on very long runs
            self._cache.clear()
        self._cache[key] = out
        return out

    def score(self, state: tuple, word: str) -> tuple[float, tuple]:
        """``(log p(word | state), next_state)``, natural log."""
        return self.score_id(state, self.word_id.get(word))

    def sentence_logp(self, words: Iterable[str], bos: bool = True, eos: bool = True) -> float:
        """Natural-log probability of a word sequence (with ``<s>``/``</s>`` by default)."""
        state = self.begin_state() if bos else ()
        total = 0.0
        for w in words:
            lp, state = self.score(state, w)
            total += lp
        if eos and self.eos_id is not None:
            lp, state = self.score_id(state, self.eos_id)
            total += lp
        return total

    # --------------------------------------------------------------- ARPA I/O
    @classmethod
    def from_arpa(cls, path) -> NGramLM:
        """Load an ARPA file (any order). Malformed files raise :class:`ArpaFormatError`."""
        path = os.fspath(path)
        try:
            # Only regular files: /dev/zero would be read until memory runs out, a FIFO
            # would block forever. stat first, so a FIFO is not even opened.
            st = os.stat(path)
            if not stat.S_ISREG(st.st_mode):
                raise LMError(f"{path}: not a regular file")
            # utf-8-sig: a byte-order mark (some editors write one) is not part of line 1
            f = open(path, "r", encoding="utf-8-sig")
        except OSError as e:
            raise LMError(f"{path}: cannot open ARPA file: {e.strerror}") from e
        with f:
            try:
                return cls._parse_arpa(f, path)
            except UnicodeDecodeError as e:
                raise ArpaFormatError(path, None, f"not UTF-8 text ({e.reason})") from e

    @classmethod
    def _parse_arpa(cls, f, path) -> NGramLM:
        declared: dict[int, int] = {}
        lineno = 0
        section = "pre"  # pre -> data -> grams -> end
        cur_n = 0
        vocab: list[str] = []
        word_id: dict[str, int] = {}
        ngrams: list[dict[tuple, tuple[float, float]]] = [{}]

        def wid(w):
            i = word_id.get(w)
            if i is None:
                i = word_id[w] = len(vocab)
                vocab.append(w)
            return i

        for raw in f:
            lineno += 1
            line = raw.strip()
            if section == "pre":
                if line == "\\data\\":
                    section = "data"
                continue  # anything before \data\ is a comment
            if not line:
                continue
            if section == "end":
                continue  # text after \end\ is ignored, as KenLM does
            if line == "\\end\\":
                if section == "data":
                    raise ArpaFormatError(path, lineno, "\\end\\ before any n-gram section")
                cls._check_count(path, lineno, cur_n, declared, ngrams)
                section = "end"
                continue
            if line.startswith("\\") and line.endswith("-grams:"):
                try:
                    n = int(line[1:-len("-grams:")])
                except ValueError:
                    raise ArpaFormatError(path, lineno, f"bad section header {line!r}") from None
                if n not in declared:
                    raise ArpaFormatError(path, lineno, f"section \\{n}-grams: was not declared in \\data\\")
                if n != cur_n + 1:
                    raise ArpaFormatError(path, lineno, f"expected \\{cur_n + 1}-grams:, found {line!r}")
                if cur_n:
                    cls._check_count(path, lineno, cur_n, declared, ngrams)
                cur_n = n
                ngrams.append({})
                section = "grams"
                continue
            if section == "data":
                if not line.startswith("ngram "):
                    raise ArpaFormatError(path, lineno, f"expected 'ngram N=COUNT' in \\data\\, found {line!r}")
                try:
                    lhs, rhs = line[6:].split("=")
                    n, c = int(lhs), int(rhs)
                except ValueError:
                    raise ArpaFormatError(path, lineno, f"bad count line {line!r}") from None
                if n < 1 or c < 0 or n in declared or (declared and n != max(declared) + 1):
                    raise ArpaFormatError(path, lineno, f"bad or out-of-order count line {line!r}")
                declared[n] = c
                continue
            # an n-gram line: logp w1 .. wn [bow]
            parts = line.split()
            if len(parts) not in (cur_n + 1, cur_n + 2):
                raise ArpaFormatError(
                    path, lineno,
                    f"a {cur_n}-gram line needs a log-prob, {cur_n} words and an optional "
                    f"back-off weight, found {len(parts)} fields: {line!r}")
            try:
                lp = float(parts[0])
                bow = float(parts[cur_n + 1]) if len(parts) == cur_n + 2 else 0.0
            except ValueError:
                raise ArpaFormatError(path, lineno, f"log-probability or back-off is not a number: {line!r}") from None
            if not (math.isfinite(lp) and math.isfinite(bow)) or lp > 1e-6:
                raise ArpaFormatError(path, lineno, f"log10 probability must be finite and <= 0: {line!r}")
            key = tuple(wid(w) for w in parts[1:cur_n + 1])
            ngrams[cur_n][key] = (lp * LN10, bow * LN10)
        if section == "pre":
            raise ArpaFormatError(path, None, "no \\data\\ header: not an ARPA file")
        if section != "end":
            raise ArpaFormatError(path, lineno, "file ends without \\end\\ (truncated?)")
        order = max(declared)
        if cur_n != order:
            raise ArpaFormatError(path, lineno, f"\\data\\ declares order {order} but only {cur_n}-gram sections follow")
        unis = ngrams[1]
        for n in range(2, order + 1):
            for key in ngrams[n]:
                for w in key:
                    if (w,) not in unis:
                        raise ArpaFormatError(path, None, f"word {vocab[w]!r} in a {n}-gram is missing from \\1-grams:")
        return cls(order, vocab, ngrams)

    @staticmethod
    def _check_count(path, lineno, n, declared, ngrams):
        if len(ngrams[n]) != declared[n]:
            raise ArpaFormatError(
                path, lineno,
                f"\\data\\ declares ngram {n}={declared[n]} but the section has {len(ngrams[n])} entries")

    def to_arpa(self, path) -> None:
        """Write the model as ARPA (log10), atomically: temp file + ``os.replace``."""
        path = os.fspath(path)
        d = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(d, exist_ok=True)  # as ctcasr.utils.atomic_open does
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".arpa", dir=d)
        except OSError as e:  # not a folder, not writable: name the file we were asked for
            raise OSError(e.errno, f"cannot write ARPA file ({e.strerror})", path) from e
        try:
            # mkstemp makes 0600 files; give the ARPA the mode a plain open() would (a
            # shipped model dir must be readable by every user). Same as ctcasr.utils'
            # atomic_open, not imported: ctcasr.decoding depends on nothing else in ctcasr.
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(fd, 0o666 & ~umask)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write("\\data\\\n")
                for n in range(1, self.order + 1):
                    f.write(f"ngram {n}={len(self.ngrams[n])}\n")
                for n in range(1, self.order + 1):
                    f.write(f"\n\\{n}-grams:\n")
                    rows = sorted(self.ngrams[n].items(), key=lambda kv: [self.vocab[i] for i in kv[0]])
                    for key, (lp, bow) in rows:
                        words = " ".join(self.vocab[i] for i in key)
                        line = f"{lp / LN10:.7g}\t{words}"
                        if n < self.order and bow != 0.0:
                            line += f"\t{bow / LN10:.7g}"
                        f.write(line + "\n")
                f.write("\n\\end\\\n")
                # On disk before the rename, or a crash could leave an empty file in its place.
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException as e:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if isinstance(e, OSError) and e.errno is not None:
                # A failed write (disk full, quota, I/O error) says nothing about which file;
                # name it, and say that the old one is still there.
                raise OSError(e.errno, f"cannot write ARPA file ({os.strerror(e.errno)}); "
                              "the previous file is unchanged", path) from e
            raise

    # -------------------------------------------------------------- estimation
    @classmethod
    def from_text(cls, lines: Iterable, order: int = 3, token_level: bool = False,
                  lowercase: bool = False, prune: Sequence[int] | None = None) -> NGramLM:
        """Estimate an interpolated modified Kneser-Ney model.

        ``lines``: an iterable of sentences, each a string (split on whitespace, or into
        characters with ``token_level=True``, whitespace dropped) or a list of words.
        ``prune``: count thresholds per order, as KenLM's ``lmplz --prune`` (e.g. ``[0, 1, 1]``
        drops the 2- and 3-grams seen once); see :meth:`_prune`.
        """
        if order < 1:
            raise LMError(f"n-gram order must be >= 1, got {order}")
        if prune is not None:
            prune = [int(x) for x in prune]
            if len(prune) > order or any(x < 0 for x in prune) or (prune and prune[0] != 0):
                raise LMError(f"prune thresholds {prune}: one per order (at most {order}), >= 0, "
                              "and 0 for unigrams (every word stays in the vocabulary)")
            if any(b < a for a, b in zip(prune, prune[1:])):
                raise LMError(f"prune thresholds {prune} must not decrease with the order (as in KenLM)")
        # One pass: the vocabulary and the raw n-gram counts grow as the lines stream in, so
        # the text itself is never held (``ctcasr lm build`` reads its file line by line).
        vocab = [BOS, EOS, UNK]
        word_id = {w: i for i, w in enumerate(vocab)}
        raw = [Counter() for _ in range(order + 1)]
        got = False
        for s in lines:
            if isinstance(s, str):
                if lowercase:
                    s = s.lower()
                words = [c for c in s if not c.isspace()] if token_level else s.split()
            else:
                words = [str(w) for w in s]
            if words:
                got = True
                cls._count_sentence(words, word_id, vocab, raw, order)
        if not got:
            raise LMError("cannot estimate a language model from empty text")
        lm = cls._estimate_from_counts(vocab, raw, order)
        if prune and any(prune):
            lm._prune(prune)
        return lm

    @staticmethod
    def _count_sentence(words, word_id: dict, vocab: list, raw: list, N: int) -> None:
        """Add one sentence's n-grams (1..N, with <s> and </s>) to ``raw``."""
        ids = [0]  # <s>
        for w in words:
            i = word_id.get(w)
            if i is None:
                i = word_id[w] = len(vocab)
                vocab.append(w)
            elif i < 3:  # <s>, </s>, <unk>
                raise LMError(f"the training text contains the reserved word {w!r}")
            ids.append(i)
        ids.append(1)  # </s>
        L = len(ids)
        for n in range(1, N + 1):
            c = raw[n]
            for i in range(L - n + 1):
                c[tuple(ids[i:i + n])] += 1

    @classmethod
    def _estimate_kn(cls, sents: list[list[str]], N: int) -> NGramLM:
        """The model of a list of tokenised sentences (see from_text)."""
        vocab = [BOS, EOS, UNK]
        word_id = {w: i for i, w in enumerate(vocab)}
        raw = [Counter() for _ in range(N + 1)]
        for words in sents:
            cls._count_sentence(words, word_id, vocab, raw, N)
        return cls._estimate_from_counts(vocab, raw, N)

    @classmethod
    def _estimate_from_counts(cls, vocab: list, raw: list, N: int) -> NGramLM:
        """Interpolated modified Kneser-Ney from raw counts ``raw[n][ids]`` (ids into ``vocab``,
        whose first three entries are <s>, </s>, <unk>)."""
        bos, unk = 0, 2  # (</s> is 1)
        # Adjusted counts: continuation counts below the top order.
        adj: list[dict[tuple, int]] = [{} for _ in range(N + 1)]
        adj[N] = dict(raw[N])
        for n in range(N - 1, 0, -1):
            cont = Counter()
            for g in raw[n + 1]:
                cont[g[1:]] += 1
            a = {}
            for g, c in raw[n].items():
                a[g] = c if g[0] == bos else cont.get(g, 0)
            adj[n] = {g: c for g, c in a.items() if c > 0}
        adj[1].pop((bos,), None)  # <s> is never predicted

        # Discounts D1, D2, D3+ per order from count-of-counts (Chen & Goodman).
        discounts = [None] * (N + 1)
        for n in range(1, N + 1):
            t = Counter(c for c in adj[n].values() if c <= 4)
            discounts[n] = cls._kn_discounts(t)

        # Interpolated probabilities, lowest order first.
        nvocab = len(vocab) - 1  # uniform over every word but <s> (includes <unk>)
        probs: list[dict[tuple, float]] = [{} for _ in range(N + 1)]
        gammas: list[dict[tuple, float]] = [{} for _ in range(N + 1)]
        for n in range(1, N + 1):
            D = discounts[n]
            denom = defaultdict(int)
            nk = defaultdict(lambda: [0, 0, 0])
            for g, c in adj[n].items():
                h = g[:-1]
                denom[h] += c
                nk[h][min(c, 3) - 1] += 1
            gamma = {h: (D[0] * k[0] + D[1] * k[1] + D[2] * k[2]) / denom[h] for h, k in nk.items()}
            gammas[n - 1] = gamma  # gamma of a context of length n-1
            p = probs[n]
            for g, c in adj[n].items():
                h = g[:-1]
                disc = max(c - D[min(c, 3) - 1], 0.0) / denom[h]
                lower = 1.0 / nvocab if n == 1 else probs[n - 1][g[1:]]
                p[g] = disc + gamma[h] * lower
            if n == 1:
                p[(unk,)] = gamma[()] / nvocab + p.get((unk,), 0.0)
        ngrams: list[dict[tuple, tuple[float, float]]] = [{}]
        for n in range(1, N + 1):
            d = {}
            for g, pr in probs[n].items():
                bow = gammas[n].get(g) if n < N else None
                d[g] = (math.log(pr), math.log(bow) if bow else 0.0)
            ngrams.append(d)
        # <s> is listed with log10 p = -99 (never predicted) and carries a back-off.
        g1 = gammas[1].get((bos,))
        ngrams[1][(bos,)] = (-99.0 * LN10, math.log(g1) if (g1 and N > 1) else 0.0)
        lm = cls(N, vocab, ngrams)
        lm._adj_counts = adj
        return lm

    def _prune(self, thresholds: Sequence[int]) -> None:
        """Drop n-grams (order >= 2) whose adjusted count (the top order's raw count, the
        lower orders' continuation count) is at most ``thresholds[n-1]``, as KenLM's
        ``--prune`` does, then recompute the back-off weights so that every context's
        distribution still sums to one. Why: an unpruned 3-gram from half a million words
        is ~17 MB of ARPA and seconds to load; most of it is n-grams seen once.

        The kept n-grams keep their interpolated probabilities; what the dropped ones had
        goes to the back-off: bow(h) = (1 - sum_kept p(w|h)) / (1 - sum_kept p_lower(w|h')),
        the standard renormalisation (for unpruned interpolated KN it equals the
        interpolation weight, so nothing changes where nothing is dropped). An n-gram that
        is the context or the suffix of a kept longer one is kept too, as ARPA requires."""
        adj = self._adj_counts
        N, ng = self.order, self.ngrams
        th = list(thresholds) + [thresholds[-1]] * (N - len(thresholds))
        keep = [set() for _ in range(N + 1)]
        for n in range(N, 1, -1):
            for g in ng[n]:
                if adj[n].get(g, 0) > th[n - 1]:
                    keep[n].add(g)
            for g in keep[n]:
                if n - 1 >= 2:
                    keep[n - 1].add(g[:-1])
                    keep[n - 1].add(g[1:])
        for n in range(2, N + 1):
            ng[n] = {g: ng[n][g] for g in ng[n] if g in keep[n]}
        # back-off weights, lowest order first: each needs the final lower-order model
        self._cache.clear()
        for n in range(1, N):
            sp, sl = defaultdict(float), defaultdict(float)
            for g, (lp, _) in ng[n + 1].items():
                h = g[:-1]
                sp[h] += math.exp(lp)
                # p_lower(w | h[1:]) by the back-off rule; it reads only orders below n + 1,
                # whose back-offs are final already, so score_id's cache stays valid
                sl[h] += math.exp(self.score_id(g[1:-1], g[-1])[0])
            table = ng[n]
            for h, (lp, _) in table.items():
                if h in sp:
                    num, den = 1.0 - sp[h], 1.0 - sl[h]
                    bow = math.log(max(num, 1e-12) / max(den, 1e-12))
                else:
                    bow = 0.0  # no longer a context of anything listed
                table[h] = (lp, bow)
        self._cache.clear()
        del self._adj_counts

    @staticmethod
    def _kn_discounts(t: Counter) -> tuple[float, float, float]:
        t1, t2, t3, t4 = (t.get(k, 0) for k in (1, 2, 3, 4))
        try:
            Y = t1 / (t1 + 2 * t2)
            D = (1 - 2 * Y * t2 / t1, 2 - 3 * Y * t3 / t2, 3 - 4 * Y * t4 / t3)
        except ZeroDivisionError:
            D = None
        # Tiny corpora give degenerate count-of-counts (KenLM refuses them); fall back to
        # fixed discounts, which keep every probability positive.
        if D is None or not all(0 < d < k + 1 for k, d in enumerate(D)):
            D = (0.5, 1.0, 1.5)
        return D


def build_lm_cli(text_path, order: int, out_path, token_level: bool = False,
                 lowercase: bool = False, prune: Sequence[int] | None = None) -> NGramLM:
    """What ``ctcasr lm build TEXT --order N -o OUT`` runs: estimate and write an ARPA.

    ``text_path``: UTF-8 text, one sentence per line (``-`` is not special). Words are
    whitespace-separated; ``token_level=True`` makes every non-space character a word
    (Chinese, or token-level LMs for ``word_delimiter=None``). The ARPA is written
    atomically to ``out_path``. Returns the model.
    """
    text_path = os.fspath(text_path)
    # Streamed line by line: only the counts are held, never the text.
    try:
        with open(text_path, "r", encoding="utf-8") as f:
            lm = NGramLM.from_text(f, order=order, token_level=token_level, lowercase=lowercase, prune=prune)
    except OSError as e:
        raise LMError(f"{text_path}: cannot read text: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise LMError(f"{text_path}: not UTF-8 text ({e.reason})") from e
    except LMError as e:  # "empty text", "reserved word <s>": say which file
        raise LMError(f"{text_path}: {e}") from None
    lm.to_arpa(out_path)
    return lm
