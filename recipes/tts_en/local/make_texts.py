#!/usr/bin/env python3
"""English sentences for the tts_en recipe, from text that Debian installs.

Sources (both plain text, both real English written by people):
  * fortune-mod's `fortunes` package (/usr/share/games/fortunes): quotations, jokes,
    literature, science, law ... (the art/ascii-art/debian/linux/perl files are left out:
    pictures, code and shell commands are not speech);
  * WordNet 3.0's example sentences (`wordnet-base`, /usr/share/wordnet/data.*): the
    quoted usage examples after each gloss ("she choked with emotion when ...").

Normalisation, which is what the model learns to write: lowercase a-z, apostrophe and
single spaces. A sentence is dropped rather than guessed at when the TTS would read it in a
way its letters do not say: digits and symbols (%, $, &, @ ...), acronyms and other
all-caps words (IBM is read "i b m"), abbreviations (mr., dr., etc.), non-ASCII letters.
Hyphens and dashes become spaces; other punctuation is removed. Only sentences of 3-20
words are kept.

Splits are disjoint in text: every normalised sentence is used at most once, so test
sentences are never heard in training (nor are they in the LM's training text). The
output files hold one sentence a line; NAME=COUNT on the command line picks how many.
"""

import argparse
import glob
import os
import random
import re

FORTUNE_DIR = "/usr/share/games/fortunes"
WORDNET_DIR = "/usr/share/wordnet"
# Not prose: pictures, code, shell commands, machine names, or not English.
SKIP_FORTUNES = {"art", "ascii-art", "debian", "linux", "linuxcookie", "perl", "computers",
                 "translate-me", "zippy", "knghtbrd", "startrek"}
ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "etc", "eg", "ie", "prof",
                 "gen", "col", "capt", "lt", "sgt", "rev", "hon", "co", "inc", "ltd", "no",
                 "vol", "ch", "pp", "ft", "oz", "lb", "lbs", "mt", "ave", "esq"}
BAD_CHARS = re.compile(r"[0-9%$&@#/\\*_=+<>|~^\[\]{}`]")
SENT_END = re.compile(r"(?<=[.!?])\s+")


def fortune_paragraphs():
    for path in sorted(glob.glob(os.path.join(FORTUNE_DIR, "*"))):
        name = os.path.basename(path)
        if "." in name or name in SKIP_FORTUNES or not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            raw = f.read()
        for entry in raw.split("\n%\n"):
            lines = []
            for ln in entry.splitlines():
                s = ln.strip()
                # Attribution lines ("-- Mark Twain") are names, not speech.
                if not s or s.startswith("--") or s.startswith("\u2014"):
                    continue
                # Dialogue prefixes ("Q:", "A:", "Mike: ...") are not read.
                s = re.sub(r"^[A-Z][A-Za-z]{0,10}:\s+", "", s)
                lines.append(s)
            yield " ".join(lines)


def wordnet_examples():
    for pos in ("noun", "verb", "adj", "adv"):
        path = os.path.join(WORDNET_DIR, f"data.{pos}")
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            for ln in f:
                if ln.startswith("  ") or "|" not in ln:
                    continue      # licence header
                gloss = ln.split("|", 1)[1]
                for ex in re.findall(r'"([^"]+)"', gloss):
                    yield ex


def normalise(sentence):
    """The sentence as the model should write it, or None when it cannot be said safely."""
    s = sentence.strip()
    if not s or BAD_CHARS.search(s) or any(ord(c) > 127 for c in s):
        return None
    if re.search(r"\b[A-Z]{2,}\b", s) or re.search(r"\b[A-Za-z]\.[A-Za-z]\.", s):
        return None       # acronyms, all-caps shouting, initials: read letter by letter
    s = s.replace("`", "'").replace("''", " ")
    s = re.sub(r"[-\u2013\u2014]+", " ", s)
    s = s.lower()
    s = re.sub(r"[^a-z' ]", " ", s)
    # Quotes ('like this') are punctuation; apostrophes inside words (don't, o'clock) stay.
    words = [w.strip("'") for w in s.split()]
    words = [w for w in words if w]
    if not 3 <= len(words) <= 20:
        return None
    if any(w in ABBREVIATIONS for w in words):
        return None
    # Single letters other than "a", "i" and "o" are spelled-out names or list labels.
    if any(len(w) == 1 and w not in ("a", "i", "o") for w in words):
        return None
    return " ".join(words)


def sentences():
    for para in fortune_paragraphs():
        for sent in SENT_END.split(para):
            yield sent
    yield from wordnet_examples()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--min-words", type=int, default=3)
    p.add_argument("splits", nargs="+", help="NAME=COUNT, e.g. train=5000 dev=200 test=400; "
                   "COUNT 'rest' takes every sentence left (use it last)")
    a = p.parse_args()
    seen, pool = set(), []
    for raw in sentences():
        t = normalise(raw)
        if t is None or t in seen or len(t.split()) < a.min_words:
            continue
        seen.add(t)
        pool.append(t)
    if not pool:
        raise SystemExit("no sentences found: install the 'fortunes' and 'wordnet-base' packages")
    random.Random(a.seed).shuffle(pool)
    start = 0
    for spec in a.splits:
        name, count = spec.split("=")
        n = len(pool) - start if count == "rest" else int(count)
        if start + n > len(pool):
            raise SystemExit(f"only {len(pool)} usable sentences; asked for more at {name}")
        with open(os.path.join(a.out_dir, f"{name}.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(pool[start:start + n]) + "\n")
        start += n
    print(f"{len(pool)} usable sentences, {start} written")


if __name__ == "__main__":
    main()
