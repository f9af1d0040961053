#!/usr/bin/env bash
# AISHELL-1 (Mandarin, 178 h), character BiLSTM-CTC in the shape of EESEN (4 x 320 BiLSTM,
# x3 frame stacking). Nothing is downloaded: pass the folder data_aishell.tgz was extracted
# into, with the per-speaker archives in data_aishell/wav/ extracted too:
#   (cd /data/aishell/data_aishell/wav && for f in *.tar.gz; do tar xzf "$f"; done)
#
#   bash recipes/aishell/run.sh --corpus-dir /data/aishell            # stages 0-3
#   bash recipes/aishell/run.sh --corpus-dir /data/aishell --stop-stage 0
#   Other options: --config YAML, --data DIR, --exp DIR (default data/ and exp/blstm/ here),
#   --jobs N, --beam-size N
#
# Stages
#   0  manifests train/dev/test from --corpus-dir (ctcasr data prepare-aishell); the word
#      segmentation spaces of the transcript removed: every character is a token
#   1  tokens.txt and global CMVN statistics (ctcasr prepare)
#   2  training (ctcasr train; conf/blstm.yaml), validated on dev
#   3  character 3-gram LM from the training transcripts (--token-level), then CER on dev
#      and test: greedy and beam search + LM
set -euo pipefail

stage=0
stop_stage=3
corpus_dir=
config=conf/blstm.yaml
data=data
exp=exp/blstm
jobs=4
beam_size=32
path_opts="corpus_dir config data exp"
. "$(dirname "$0")/../../scripts/parse_options.sh"
# Paths given on the command line are relative to where you run this; defaults to this folder.
cd "$(dirname "$0")"
SECONDS=0

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  echo "== stage 0: manifests"
  if [ -z "$corpus_dir" ]; then
    echo "stage 0 needs --corpus-dir (the folder holding data_aishell/)" >&2; exit 2
  fi
  ctcasr data prepare-aishell --corpus-dir "$corpus_dir" --out "$data" --jobs "$jobs"
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
  echo "== stage 3: LM and scoring (CER is the figure for Mandarin)"
  python -c "import json,sys; [print(json.loads(l)['text']) for l in open(sys.argv[1], encoding='utf-8')]" \
    "$data/train.jsonl" > "$exp/lm_train.txt"
  ctcasr lm build "$exp/lm_train.txt" --order 3 --token-level -o "$exp/lm.arpa"
  for s in dev test; do
    echo "-- $s greedy"
    ctcasr evaluate --model "$exp" --data "$data/$s.jsonl" --decoder greedy | tee "$exp/${s}_greedy.txt"
    echo "-- $s beam $beam_size + character 3-gram"
    ctcasr evaluate --model "$exp" --data "$data/$s.jsonl" --decoder beam --beam-size "$beam_size" \
      | tee "$exp/${s}_beam_lm.txt"
  done
  echo "recipe time ${SECONDS}s"
fi
