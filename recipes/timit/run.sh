#!/usr/bin/env bash
# TIMIT phone recognition: BiLSTM-CTC over the 61 TIMIT phones, scored on the 39-phone
# folding of Lee & Hon (1989) on the 24-speaker core test set. Nothing is downloaded: pass
# the folder of your TIMIT copy that holds TRAIN/ and TEST/ (either case).
#
#   bash recipes/timit/run.sh --corpus-dir /data/timit                # stages 0-3
#   bash recipes/timit/run.sh --corpus-dir /data/timit --stop-stage 0
#   Other options: --config YAML, --data DIR, --exp DIR (default data/ and exp/blstm/ here),
#   --jobs N, --beam-size N
#
# Stages
#   0  manifests from --corpus-dir (ctcasr data prepare-timit): train = TRAIN without the SA
#      sentences (3696 utterances), dev = the 50-speaker development set (400), test = the
#      core test set (192); each phone written as one letter (data/phone_map.txt)
#   1  tokens.txt and global CMVN statistics (ctcasr prepare)
#   2  training (ctcasr train; conf/blstm.yaml), validated on dev
#   3  phone error rate on dev and test, 61 phones and folded to 39 (ctcasr data
#      score-timit), greedy and beam search; no phone LM
set -euo pipefail

stage=0
stop_stage=3
corpus_dir=
config=conf/blstm.yaml
data=data
exp=exp/blstm
jobs=4
beam_size=16
path_opts="corpus_dir config data exp"
. "$(dirname "$0")/../../scripts/parse_options.sh"
# Paths given on the command line are relative to where you run this; defaults to this folder.
cd "$(dirname "$0")"
SECONDS=0

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  echo "== stage 0: manifests"
  if [ -z "$corpus_dir" ]; then
    echo "stage 0 needs --corpus-dir (the folder holding TRAIN/ and TEST/)" >&2; exit 2
  fi
  ctcasr data prepare-timit --corpus-dir "$corpus_dir" --out "$data" --jobs "$jobs"
  echo "stage 0 done after ${SECONDS}s"
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  echo "== stage 1: tokens and CMVN"
  ctcasr prepare --config "$config" --train "$data/train.jsonl" --out "$exp"
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  echo "== stage 2: training"
  ctcasr train --overwrite --config "$config" --train "$data/train.jsonl" --valid "$data/dev.jsonl" --out "$exp"
  echo "stage 2 done after ${SECONDS}s"
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  echo "== stage 3: phone error rates (61 phones, and folded to 39)"
  for s in dev test; do
    echo "-- $s greedy"
    ctcasr data score-timit --model "$exp" --data "$data/$s.jsonl" --decoder greedy | tee "$exp/${s}_greedy.txt"
    echo "-- $s beam $beam_size (no LM)"
    ctcasr data score-timit --model "$exp" --data "$data/$s.jsonl" --decoder beam --beam-size "$beam_size" \
      --lm none | tee "$exp/${s}_beam.txt"
  done
  echo "recipe time ${SECONDS}s"
fi
