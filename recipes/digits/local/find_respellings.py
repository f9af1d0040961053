#!/usr/bin/env python3
"""How conf/respell.json was made: for each non-English festival voice and digit word, try
a few respellings (Italian/Finnish/Czech/Catalan orthography of the English sound), have
an English-only digits model transcribe the voice reading each one, and keep the spellings
it hears as exactly that word. Words with no accepted spelling are left out of the voice's
table, so that voice never gets a text containing them (ctcasr synth --respell).

    python local/find_respellings.py --model exp/blstm --out conf/respell.json festival:lp_diphone ...

The table in conf/ came from this procedure (run with text2wave directly, at the voices' own
sample rates) with a model trained without these voices (the recipe
before they were added) and was then trimmed to voices missing at most two words; the Czech
voices krb (a child; three, four and oh not accepted) and ph were added on 2026-11-26, found
with the shipped digits model, which had not heard them. The Russian voice msu_ru_nsh_clunits
(festvox-ru) reads Cyrillic (CANDIDATES_CYRILLIC); it was added on 2026-11-27 with
spellings that the shipped model (which had not heard the voice) heard as the word said
alone and twice without a pause. This script, run afterwards with the same model, picks the
same spelling for every word but "oh" ("оо"; the table keeps "о").
"""

import argparse
import json

from ctcasr import synth
from ctcasr.transcribe import Transcriber

CANDIDATES = {
    "one": ["uan", "wan", "vann", "uann", "wann"], "two": ["tu", "tuu", "tuh"],
    "three": ["tri", "thri", "trii", "srii"], "four": ["for", "foor", "foo", "fohr"],
    "five": ["faiv", "fajv", "faif", "faiiv"], "six": ["sics", "siks", "sikks"],
    "seven": ["seven", "sevn", "sevven", "sevenn", "sehven"], "eight": ["eit", "ejt", "eyt", "eitt"],
    "nine": ["nain", "najn", "naain"], "zero": ["ziro", "siirou", "zirou", "ziiro", "siro", "ziroo"],
    "oh": ["ou", "oou", "oo", "o"],
}
# For voices of languages written in Cyrillic (festival's Russian voice reads no Latin).
CANDIDATES_CYRILLIC = {
    "one": ["уан", "уон", "уанн"], "two": ["ту", "туу", "тью"], "three": ["сри", "фри", "срии"],
    "four": ["фо", "фор", "фоо", "фоур"], "five": ["файв", "файф"], "six": ["сикс", "сыкс"],
    "seven": ["севен", "севн", "сэвэн"], "eight": ["эйт", "ейт", "эйтт"], "nine": ["найн", "наайн"],
    "zero": ["зиро", "зироу"], "oh": ["о", "оу", "оо"],
}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="an English digits model directory (with lm.arpa)")
    p.add_argument("--out", required=True)
    p.add_argument("voices", nargs="+")
    a = p.parse_args()
    asr = Transcriber.load(a.model, device="cpu", decoder="beam", beam_size=16)
    table = {}
    for v in a.voices:
        table[v] = {}
        cyrillic = synth._festival_voice_language(synth.Voice.parse(v).name) == "russian"
        for word, cands in (CANDIDATES_CYRILLIC if cyrillic else CANDIDATES).items():
            for c in cands:
                x = synth.synthesize(f"{c}. {c}.", v)  # said twice: a word alone is too short a test
                heard = asr.transcribe(x, sample_rate=16000).text.split()
                if heard and set(heard) == {word}:
                    table[v][word] = c
                    break
        print(v, f"{len(table[v])}/{len(CANDIDATES)} words:", table[v])
    with open(a.out, "w", encoding="utf-8") as f:
        f.write("{\n" + ",\n".join(f"  {json.dumps(k)}: {json.dumps(t, ensure_ascii=False)}" for k, t in table.items()) + "\n}\n")


if __name__ == "__main__":
    main()
