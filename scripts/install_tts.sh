#!/usr/bin/env bash
# Install the Debian TTS engines ctcasr's corpus synthesizer (ctcasr/synth.py) uses:
# espeak-ng, flite, festival with three English voices, sox, and (from Debian's
# contrib/non-free sections, Ubuntu's multiverse) MBROLA with 20 diphone voices that
# speak English, SVOX Pico's pico2wave, RHVoice's six English voices and festival's
# British diphone voices rab and don: recorded speakers the recipes train and test on.
#
# Idempotent and silent when everything is already installed (CI and recipes call it
# before every run); otherwise apt-get update + install, noninteractively, with sudo when
# not root. When the non-free packages are not found, the sections they are in are
# enabled for the distribution's own mirror (written to
# /etc/apt/sources.list.d/ctcasr-non-free.*, said on stderr). The MBROLA voices may be
# used and copied freely but not sold (see /usr/share/doc/mbrola-*/copyright).
#
#   scripts/install_tts.sh              install what is missing
#   scripts/install_tts.sh --check      only report; exit 1 if something is missing
#   scripts/install_tts.sh --main-only  leave out the contrib/non-free voices (MBROLA, Pico,
#                                       RHVoice, festival rab/don);
#                                       tests of those engines then need CTCASR_REQUIRE_TTS=0
#   scripts/install_tts.sh PKG...       also these packages (a recipe's extra festival voices)
#   scripts/install_tts.sh --show-non-free-sources FILE [COMPONENTS]
#                                       print what would be written for apt source FILE
set -euo pipefail

# fonts-wqy-microhei: Han characters in posteriorgram labels (recipes/tts_zh, tests).
# fortunes, wordnet-base: English text for recipes/tts_en to speak (and its tests).
PACKAGES=(espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts sox fonts-wqy-microhei
          fortunes wordnet-base)
# Non-free and contrib: MBROLA (espeak-ng's mb-* voices: US/UK English and English read by
# German, French, Dutch, ... speakers), Pico (en-US, en-GB), RHVoice (alan, bdl, clb, slt:
# the CMU ARCTIC speakers; evgeniy-eng, lyubov: Russian speakers of English) and festival's
# rab and don (British men).
NONFREE=(mbrola mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1 mbrola-de1 mbrola-de2 mbrola-de3 mbrola-de4
         mbrola-de5 mbrola-de6 mbrola-fr1 mbrola-fr4 mbrola-nl2 mbrola-hu1 mbrola-pl1 mbrola-sw1 mbrola-sw2
         mbrola-ro1 mbrola-af1 mbrola-gr2 libttspico-utils rhvoice rhvoice-english festvox-rablpc16k festvox-don)
# The entries of apt source file $1 (deb822 *.sources, or one-line sources.list) that have
# the "main" component, with their components replaced by $2: the same mirrors and suites.
nonfree_entries() {
    case "$1" in
        *.sources)
            awk -v comps="$2" 'BEGIN { RS = ""; ORS = "\n\n" }
                /(^|\n)Components:[^\n]*main/ { gsub(/(^|\n)Components:[^\n]*/, "\nComponents: " comps); sub(/^\n/, ""); print }' "$1" ;;
        *)
            # deb [options] URI SUITE COMPONENT...: keep up to the suite
            grep -hE '^deb[[:space:]][^#]*[[:space:]]main([[:space:]]|$)' "$1" 2>/dev/null |
                sed -E "s/^(deb([[:space:]]+\[[^]]*\])?[[:space:]]+[^[:space:]]+[[:space:]]+[^[:space:]]+).*/\1 $2/" || true ;;
    esac
}

check=false
main_only=false
if [ "${1:-}" = --show-non-free-sources ]; then
    # for tests: what would be written for apt source file $2
    nonfree_entries "$2" "${3:-contrib non-free}"
    exit 0
fi
for a in "$@"; do
    case "$a" in
        --check) check=true ;;
        --main-only) main_only=true ;;
        -*) echo "install_tts.sh: unknown option $a" >&2; exit 2 ;;
        *) PACKAGES+=("$a") ;;
    esac
done

[ "$main_only" = true ] || PACKAGES+=("${NONFREE[@]}")
missing=()
for p in "${PACKAGES[@]}"; do
    # dpkg-query status "install ok installed" is the only state that means usable.
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

if [ "$check" = true ]; then
    echo "install_tts.sh: missing: ${missing[*]}" >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_tts.sh: apt-get not found; install these packages by hand: ${missing[*]}" >&2
    exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo -n)  # -n: fail rather than hang on a password prompt in CI
    else
        echo "install_tts.sh: not root and no sudo; as root run: apt-get install ${missing[*]}" >&2
        exit 1
    fi
fi

echo "install_tts.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$log" 2>&1; then
    cat "$log" >&2
    echo "install_tts.sh: apt-get update failed" >&2
    exit 1
fi
# The non-free packages: when apt knows no candidate for them, enable the sections they are
# in, for the same mirrors and suites as the distribution's "main" entries.
no_candidate=()
for p in "${missing[@]}"; do
    for q in "${NONFREE[@]}"; do
        if [ "$p" = "$q" ] && ! LC_ALL=C apt-cache policy "$p" 2>/dev/null | grep 'Candidate: [0-9]' >/dev/null; then
            no_candidate+=("$p")
        fi
    done
done
if [ "${#no_candidate[@]}" -gt 0 ]; then
    . /etc/os-release 2>/dev/null || true
    if [ "${ID:-}" = ubuntu ]; then comps="multiverse"; else comps="contrib non-free"; fi
    src=/etc/apt/sources.list.d/debian.sources
    [ -f "$src" ] || src=/etc/apt/sources.list.d/ubuntu.sources
    [ -f "$src" ] || src=/etc/apt/sources.list
    dst=/etc/apt/sources.list.d/ctcasr-non-free.list
    case "$src" in *.sources) dst=/etc/apt/sources.list.d/ctcasr-non-free.sources ;; esac
    new=$(nonfree_entries "$src" "$comps")
    if [ -z "$new" ]; then
        echo "install_tts.sh: found no apt source with 'main' to add '$comps' to; enable it by hand or use --main-only" >&2
        exit 1
    fi
    echo "install_tts.sh: enabling '$comps' (for MBROLA, Pico, RHVoice and festival rab/don) in $dst" >&2
    printf '%s\n' "$new" | "${SUDO[@]}" tee "$dst" >/dev/null
    if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$log" 2>&1; then
        cat "$log" >&2
        echo "install_tts.sh: apt-get update failed" >&2
        exit 1
    fi
fi
if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >"$log" 2>&1; then
    cat "$log" >&2
    echo "install_tts.sh: apt-get install failed" >&2
    exit 1
fi

# Check the programs really run (a half-configured package would pass dpkg above next time
# only if it is fully installed, but be explicit about what the synthesizer needs).
progs=(espeak-ng flite festival text2wave sox)
[ "$main_only" = true ] || progs+=(mbrola pico2wave RHVoice-test)
for prog in "${progs[@]}"; do
    if ! command -v "$prog" >/dev/null 2>&1; then
        echo "install_tts.sh: $prog still not on PATH after installing" >&2
        exit 1
    fi
done
echo "install_tts.sh: done" >&2
