#!/usr/bin/env python3
"""Digit-string texts for the digits recipe: 1-7 digits, "zero".."nine" and "oh".

Strings of three or more digits never appear in two splits, so the test set measures
recognition of unseen strings as well as unseen voices; 1-2 digit strings are too few to
keep apart and may repeat.
"""

import argparse
import random

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def digit_string(rng):
    n = rng.randint(1, 7)
    out = []
    for _ in range(n):
        d = rng.randrange(10)
        # "oh" is how people read 0 inside phone numbers; keep both.
        out.append(("oh" if rng.random() < 0.4 else "zero") if d == 0 else WORDS[d])
    return " ".join(out)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out-dir", required=True)
    p.add_argument("splits", nargs="+", help="NAME=COUNT, e.g. train=4000 dev=300 test=500")
    a = p.parse_args()
    rng = random.Random(a.seed)
    used = set()
    for spec in a.splits:
        name, count = spec.split("=")
        texts = []
        while len(texts) < int(count):
            t = digit_string(rng)
            # Strings of 3+ digits never repeat, within or across splits. Shorter ones
            # cannot all be unique (there are only 11 one-word texts), so they may repeat.
            if len(t.split()) > 2 and (t in used or t in texts):
                continue
            texts.append(t)
        used.update(texts)
        with open(f"{a.out_dir}/{name}.txt", "w") as f:
            f.write("\n".join(texts) + "\n")


if __name__ == "__main__":
    main()
