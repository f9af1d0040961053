"""The recipes' command-line options (scripts/parse_options.sh, shared by every run.sh):
--name VALUE for the variables a recipe defines, paths relative to where the user runs the
recipe, --help from the recipe's header, and a clear error for anything else."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RECIPES = sorted(p.parent.name for p in (ROOT / "recipes").glob("*/run.sh"))


def _bash(args, cwd, **kw):
    return subprocess.run(["bash", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120, **kw)


@pytest.fixture
def script(tmp_path):
    s = tmp_path / "recipe" / "run.sh"
    s.parent.mkdir()
    s.write_text(f"""#!/usr/bin/env bash
# A recipe.
#   bash run.sh --stage 2
#
set -euo pipefail
stage=0
beam_size=3
exp=exp/x
models="a b"
path_opts="exp"
. {ROOT / 'scripts' / 'parse_options.sh'}
cd "$(dirname "$0")"
echo "stage=$stage beam_size=$beam_size exp=$exp models=$models"
""")
    (tmp_path / "caller").mkdir()
    return s


def test_options_set_the_recipes_variables_and_paths_are_the_callers(script, tmp_path):
    caller = tmp_path / "caller"
    r = _bash([script, "--stage", "2", "--beam-size=16", "--exp", "runs/e1", "--models", "x y z"], caller)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"stage=2 beam_size=16 exp={caller}/runs/e1 models=x y z"
    r = _bash([script, "--exp", "/abs/e2"], caller)
    assert r.stdout.strip() == "stage=0 beam_size=3 exp=/abs/e2 models=a b"
    r = _bash([script], caller)   # defaults stay as written (relative to the recipe's folder)
    assert r.stdout.strip() == "stage=0 beam_size=3 exp=exp/x models=a b"


@pytest.mark.parametrize("args, message", [
    (["--stgae", "2"], "unknown option --stgae"),
    (["--path-opts", "stage"], "unknown option --path-opts"),
    (["--PATH", "/tmp"], "unknown option --PATH"),
    (["--stage"], "option --stage needs a value"),
    (["2"], "unexpected argument '2'"),
])
def test_bad_options_are_one_line_errors(script, tmp_path, args, message):
    r = _bash([script, *args], tmp_path / "caller")
    assert r.returncode == 2 and message in r.stderr and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1


def test_help_prints_the_header(script, tmp_path):
    r = _bash([script, "--help"], tmp_path / "caller")
    assert r.returncode == 0 and r.stdout == "A recipe.\n  bash run.sh --stage 2\n\n"


@pytest.mark.parametrize("name", RECIPES)
def test_every_recipe_uses_the_shared_options(name, tmp_path):
    run = ROOT / "recipes" / name / "run.sh"
    r = _bash([run, "--help"], tmp_path)
    assert r.returncode == 0 and "Stages" in r.stdout and "set -e" not in r.stdout, r.stderr
    r = _bash([run, "--no-such-option", "1"], tmp_path)
    assert r.returncode == 2 and "unknown option --no-such-option" in r.stderr
    assert not any(tmp_path.iterdir())   # nothing ran, nothing written


def test_recipe_data_path_is_relative_to_the_caller(tmp_path):
    """`--data mine` from the user's folder means that folder's `mine`, not one inside the
    recipe (the recipe changes into its own folder after reading its options)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    r = _bash([ROOT / "recipes" / "compare" / "run.sh", "--data", "mine"], tmp_path, env=env)
    assert r.returncode == 1 and f"{tmp_path}/mine/train.jsonl missing" in r.stderr
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "train.jsonl").write_text("{}\n")
    r = _bash([ROOT / "recipes" / "digits" / "run.sh", "--stage", "1", "--stop-stage", "1", "--data", "mine",
               "--exp", "out"], tmp_path, env=env)
    assert r.returncode != 0 and str(tmp_path / "mine" / "train.jsonl") in r.stdout + r.stderr
