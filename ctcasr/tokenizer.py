"""Character tokens for CTC: ``tokens.txt`` <-> ids, text normalisation.

tokens.txt holds one token a line; line 0 is the blank "φ" (id 0, the CTC blank). The word
delimiter (a space) is written as ``<space>`` so that no line of the file is blank or
depends on trailing whitespace (the ESPnet/Kaldi convention). Chinese and other scripts
without spaces use ``word_delimiter=None``: every character is a token and a word.

Normalisation (``Tokenizer.normalize``), applied to training transcripts and references:
  1. Unicode NFKC (full-width letters/digits become ASCII, compatibility forms fold);
  2. lower-casing when ``lowercase`` is set (English models);
  3. typographic apostrophes (’ ‘ ʼ) become ``'``;
  4. when ``strip_punctuation`` is set, punctuation and symbols (Unicode categories P*, S*)
     are removed, except an apostrophe between letters ("don't");
  5. runs of whitespace become one space and the ends are stripped; with
     ``word_delimiter=None`` all whitespace is removed.
It is reversible for display in the sense that matters to users: ``decode(encode(t)) ==
normalize(t)`` for every text the vocabulary covers, and a model's output needs no further
processing to show (spaces between words; none between CJK characters).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from pathlib import Path
from typing import Iterable, Optional

from .errors import TokenizerError

log = logging.getLogger(__name__)

BLANK = "φ"
SPACE_SYMBOL = "<space>"
# Other spellings of the blank that tokens.txt files from peers use on line 0.
_BLANK_ALIASES = {BLANK, "<blank>", "<blk>", "<b>", "<pad>", "_"}
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'"})
_WS = re.compile(r"\s+")


class Tokenizer:
    def __init__(
        self,
        tokens: list,
        word_delimiter: Optional[str] = " ",
        lowercase: bool = True,
        strip_punctuation: bool = True,
    ):
        tokens = list(tokens)
        if len(tokens) < 2:
            raise TokenizerError("a vocabulary needs the blank and at least one token")
        self.tokens = tokens
        self.word_delimiter = word_delimiter
        self.lowercase = lowercase
        self.strip_punctuation = strip_punctuation
        self.blank_id = 0
        # Id 0 is the blank whatever its spelling; it is never the id of a character.
        self._ids = {}
        for i, t in enumerate(tokens[1:], start=1):
            if t in self._ids:
                raise TokenizerError(f"token {t!r} appears twice in the vocabulary (ids {self._ids[t]} and {i})")
            self._ids[t] = i

    # ----------------------------------------------------------------- construction
    @classmethod
    def build(cls, texts: Iterable[str], word_delimiter: Optional[str] = " ", **norm) -> "Tokenizer":
        """Vocabulary of every character in the normalised ``texts`` (sorted, blank first)."""
        probe = cls([BLANK, "x"], word_delimiter=word_delimiter, **norm)
        chars = set()
        for t in texts:
            chars.update(probe.normalize(t))
        chars.discard("")
        if word_delimiter is not None:
            chars.discard(" ")
            ordered = [word_delimiter] + sorted(chars)
        else:
            chars.discard(" ")
            ordered = sorted(chars)
        if not ordered:
            raise TokenizerError("no characters found in the training texts")
        return cls([BLANK] + ordered, word_delimiter=word_delimiter, **norm)

    @classmethod
    def load(cls, path, word_delimiter: Optional[str] = " ", **norm) -> "Tokenizer":
        path = Path(path)
        if not path.is_file():
            raise TokenizerError(f"{path}: tokens file not found")
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as e:
            raise TokenizerError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
        if not lines:
            raise TokenizerError(f"{path}: empty tokens file")
        def field(line):
            # "token id" pairs (Kaldi/icefall tokens.txt): drop the numeric last field.
            parts = line.rstrip("\r\n").split(" ")
            return parts[0] if len(parts) == 2 and parts[1].isdigit() else line.rstrip("\r\n")

        if field(lines[0]).strip() not in _BLANK_ALIASES:
            raise TokenizerError(
                f"{path}:1: line 0 must be the blank {BLANK!r}, found {lines[0]!r}"
            )
        tokens, seen = [BLANK], set()
        for n, line in enumerate(lines[1:], start=2):
            tok = field(line)
            if tok == "":
                raise TokenizerError(f"{path}:{n}: empty token line (write the space as {SPACE_SYMBOL})")
            tok = " " if tok == SPACE_SYMBOL else tok
            if tok in seen:
                raise TokenizerError(f"{path}:{n}: token {tok!r} appears twice")
            seen.add(tok)
            tokens.append(tok)
        if word_delimiter is not None and word_delimiter not in tokens:
            raise TokenizerError(
                f"{path}: the word delimiter {word_delimiter!r} (written {SPACE_SYMBOL}) is not a token; "
                "set tokenizer.word_delimiter: null in config.yaml for languages without spaces"
            )
        return cls(tokens, word_delimiter=word_delimiter, **norm)

    def save(self, path) -> None:
        from .utils import atomic_write_text

        atomic_write_text(path, self.file_text())

    def file_text(self) -> str:
        """The contents of tokens.txt for this vocabulary."""
        return "\n".join(SPACE_SYMBOL if t == " " else t for t in self.tokens) + "\n"

    # ----------------------------------------------------------------- text <-> ids
    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def decoder_tokens(self) -> list:
        """Token strings as the decoders want them (the delimiter as the literal string)."""
        return list(self.tokens)

    def normalize(self, text: str) -> str:
        t = unicodedata.normalize("NFKC", str(text))
        if self.lowercase:
            t = t.lower()
        t = t.translate(_APOSTROPHES)
        if self.strip_punctuation:
            out = []
            n = len(t)
            for i, ch in enumerate(t):
                cat = unicodedata.category(ch)
                if cat[0] in "PS":
                    if ch == "'" and 0 < i < n - 1 and t[i - 1].isalnum() and t[i + 1].isalnum():
                        out.append(ch)
                    else:
                        out.append(" ")
                else:
                    out.append(ch)
            t = "".join(out)
        if self.word_delimiter is None:
            return _WS.sub("", t)
        return _WS.sub(" ", t).strip()

    def unknown_chars(self, text: str) -> list:
        """Characters of the normalised ``text`` that are not tokens (sorted, unique)."""
        return sorted({ch for ch in self.normalize(text) if ch not in self._ids})

    def encode(self, text: str) -> list:
        norm = self.normalize(text)
        try:
            return [self._ids[ch] for ch in norm]
        except KeyError:
            bad = self.unknown_chars(text)
            raise TokenizerError(
                f"text {text[:60]!r} has characters outside the vocabulary: {''.join(bad)!r}"
            ) from None

    def decode(self, ids) -> str:
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < len(self.tokens)]
        if bad:
            # A negative id would silently index from the end of the list; a large one
            # would raise a bare IndexError. Both mean ids from another vocabulary.
            raise TokenizerError(f"token id(s) {bad[:5]} outside the vocabulary of {len(self.tokens)} tokens")
        text = "".join(self.tokens[i] for i in ids if i != self.blank_id)
        if self.word_delimiter is not None:
            text = " ".join(text.replace(self.word_delimiter, " ").split())
        return text

    def config(self) -> dict:
        return {
            "word_delimiter": self.word_delimiter,
            "lowercase": self.lowercase,
            "strip_punctuation": self.strip_punctuation,
        }

