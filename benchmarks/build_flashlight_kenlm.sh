#!/usr/bin/env bash
# Build flashlight-text with KenLM support into the project venv (benchmark peer only).
#
# The flashlight-text wheel on PyPI is built without KenLM, so torchaudio's ctc_decoder
# cannot load an ARPA LM with it. This rebuilds the same release from its PyPI sdist,
# against the KenLM sources and library of the `kenlm` PyPI package; it needs only PyPI
# (cmake, a C++ compiler, zlib/bzip2/lzma headers and boost are expected on the machine).
#   usage: bash benchmarks/build_flashlight_kenlm.sh [path/to/venv]   (default .venv)
set -euo pipefail
VENV=${1:-.venv}
PY="$(cd "$VENV" && pwd)/bin/python"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$PY" -m pip install kenlm pybind11 setuptools wheel
"$PY" -m pip download --no-binary flashlight-text,kenlm --no-deps flashlight-text==0.0.7 kenlm==0.3.0 -d "$WORK"
tar xzf "$WORK"/flashlight-text-0.0.7.tar.gz -C "$WORK"
tar xzf "$WORK"/kenlm-0.3.0.tar.gz -C "$WORK"
mkdir -p "$WORK/kenhdr" && ln -s "$WORK/kenlm-0.3.0" "$WORK/kenhdr/kenlm"
# setup.py would download KenLM's headers from GitHub: point it at the sdist instead.
"$PY" - "$WORK" <<'PYEOF'
import sys, pathlib
work = pathlib.Path(sys.argv[1])
p = work / "flashlight-text-0.0.7" / "setup.py"
s = p.read_text()
s = s.replace('    base_dir = Path(_basedir) / "kenlm"\n',
              f'    import kenlm\n    return Path("{work}/kenhdr"), Path(kenlm.__file__).parent\n'
              '    base_dir = Path(_basedir) / "kenlm"\n', 1)
p.write_text(s)
PYEOF
PBDIR=$("$PY" -c "import pybind11; print(pybind11.get_cmake_dir())")
(cd "$WORK/flashlight-text-0.0.7" && pybind11_DIR="$PBDIR" USE_KENLM=1 \
    "$PY" -m pip wheel --no-build-isolation --no-deps . -w "$WORK/wheel")
"$PY" -m pip install --force-reinstall --no-deps "$WORK"/wheel/flashlight_text-*.whl
"$PY" -c "from flashlight.lib.text.decoder import KenLM; print('flashlight-text with KenLM:', KenLM)"
