#!/usr/bin/env bash
# Install the Debian TTS engines ctcasr's corpus synthesizer (ctcasr/synth.py) uses:
# espeak-ng, flite, festival with three English voices, and sox.
#
# Idempotent and silent when everything is already installed (CI and recipes call it
# before every run); otherwise apt-get update + install, noninteractively, with sudo when
# not root. Everything is in Debian/Ubuntu "main": no mbrola or pico2wave (non-free).
#
#   scripts/install_tts.sh           install what is missing
#   scripts/install_tts.sh --check   only report; exit 1 if something is missing
#   scripts/install_tts.sh PKG...    also these packages (a recipe's extra festival voices)
set -euo pipefail

# fonts-wqy-microhei: Han characters in posteriorgram labels (recipes/tts_zh, tests).
# fortunes, wordnet-base: English text for recipes/tts_en to speak (and its tests).
PACKAGES=(espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts sox fonts-wqy-microhei
          fortunes wordnet-base)
check=false
for a in "$@"; do
    case "$a" in
        --check) check=true ;;
        -*) echo "install_tts.sh: unknown option $a" >&2; exit 2 ;;
        *) PACKAGES+=("$a") ;;
    esac
done

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
if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >"$log" 2>&1; then
    cat "$log" >&2
    echo "install_tts.sh: apt-get install failed" >&2
    exit 1
fi

# Check the programs really run (a half-configured package would pass dpkg above next time
# only if it is fully installed, but be explicit about what the synthesizer needs).
for prog in espeak-ng flite festival text2wave sox; do
    if ! command -v "$prog" >/dev/null 2>&1; then
        echo "install_tts.sh: $prog still not on PATH after installing" >&2
        exit 1
    fi
done
echo "install_tts.sh: done" >&2
