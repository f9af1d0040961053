#!/usr/bin/env bash
# The lecture's models side by side on the spoken-digits corpus (recipes/digits):
# CTC with a frame-wise DNN, an Elman RNN, an LSTM and a BiLSTM encoder, and the same DNN
# trained with per-frame cross-entropy on labels from the BiLSTM's forced alignment.
#
#   bash recipes/compare/run.sh --data ../digits/data      # the digits corpus, already made
#   bash recipes/compare/run.sh --stage 3                  # only score and write the table
#   Options: --data DIR (holds train.jsonl, dev.jsonl, test.jsonl; default ../digits/data),
#   --exp DIR (default exp), --epochs N (overrides every config), --n-train N (random
#   training subset; default 1500), --n-dev N (default 200), --models "dnn rnn lstm blstm",
#   --conf-dir DIR (default conf), --readme FILE (where the table goes; default README.md,
#   "none" to skip)
#
# Stages
#   0  subsets of train/dev (seeded) under EXP/data; test is used whole
#   1  tokens.txt and CMVN once; every model shares them (ctcasr prepare)
#   2  CTC training of each encoder (ctcasr train; conf/<kind>.yaml), timed
#   3  forced alignment of the training set with the BiLSTM, frame CE training of the DNN
#      (local/frame_ce.py), timed
#   4  greedy test WER of every model, table printed and written into README.md
set -euo pipefail

stage=0
stop_stage=4
data=../digits/data
exp=exp
epochs=""
n_train=1500
n_dev=200
models="dnn rnn lstm blstm"
conf_dir=conf
readme=README.md
path_opts="data exp conf_dir readme"
. "$(dirname "$0")/../../scripts/parse_options.sh"
# Paths given on the command line are relative to where you run this; defaults to this folder.
cd "$(dirname "$0")"
epochs_opt=""
[ -n "$epochs" ] && epochs_opt="--epochs $epochs"
for f in train dev test; do
  [ -f "$data/$f.jsonl" ] || { echo "$data/$f.jsonl missing: make the corpus with recipes/digits/run.sh --stop-stage 0" >&2; exit 1; }
done

SECONDS=0

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  echo "== stage 0: subsets of $data (train $n_train, dev $n_dev)"
  mkdir -p $exp/data
  for part in "train $n_train" "dev $n_dev"; do
    set -- $part
    python -c "
import random, sys
from ctcasr.data import read_manifest, write_manifest
utts = read_manifest(sys.argv[1])
n = min(int(sys.argv[3]), len(utts))
write_manifest(random.Random(1).sample(utts, n), sys.argv[2])
print(f'{sys.argv[2]}: {n} of {len(utts)} utterances')" $data/$1.jsonl $exp/data/$1.jsonl $2
  done
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  echo "== stage 1: tokens and CMVN (shared by every model)"
  # Every config has the same front end and tokenizer, so one set serves all.
  ctcasr prepare --config $conf_dir/blstm.yaml --train $exp/data/train.jsonl --out $exp/shared
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  for m in $models; do
    echo "== stage 2: CTC training, $m"
    mkdir -p $exp/$m
    cp $exp/shared/tokens.txt $exp/shared/cmvn.json $exp/$m/
    t0=$(date +%s)
    ctcasr train --overwrite --config $conf_dir/$m.yaml --train $exp/data/train.jsonl --valid $exp/data/dev.jsonl \
      --out $exp/$m --no-progress $epochs_opt
    echo $(( $(date +%s) - t0 )) > $exp/$m/train_seconds
    echo "$m trained in $(cat $exp/$m/train_seconds)s"
  done
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  echo "== stage 3: forced alignment with the BiLSTM, frame cross-entropy DNN"
  t0=$(date +%s)
  python local/frame_ce.py --align-model $exp/blstm --config $conf_dir/dnn.yaml --train $exp/data/train.jsonl \
    --valid $exp/data/dev.jsonl --out $exp/dnn_ce $epochs_opt
  echo $(( $(date +%s) - t0 )) > $exp/dnn_ce/train_seconds  # alignment included
  echo "dnn_ce aligned and trained in $(cat $exp/dnn_ce/train_seconds)s"
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  echo "== stage 4: greedy test WER, no LM"
  readme_opt=""
  [ "$(basename "$readme")" != none ] && readme_opt="--readme $readme"
  python local/score.py --exp $exp --test $data/test.jsonl --models $models dnn_ce $readme_opt
  echo "recipe time ${SECONDS}s"
fi
