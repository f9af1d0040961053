#!/usr/bin/env bash
# LibriSpeech, character BiLSTM-CTC in the shape of EESEN (4 x 320 BiLSTM, x3 frame stacking).
# Nothing is downloaded: pass the folder that holds your extracted subsets.
#
#   bash recipes/librispeech/run.sh --corpus-dir /data/LibriSpeech              # stages 0-3
#   bash recipes/librispeech/run.sh --corpus-dir /data/LibriSpeech --stop-stage 0
#   bash recipes/librispeech/run.sh --stage 3 --lm-arpa 3-gram.pruned.1e-7.arpa.gz
#   Other options: --train-subsets "train-clean-100 train-clean-360 train-other-500" (960 h),
#   --eval-subsets "test-clean test-other" (scored in stage 3; default all four dev/test),
#   --config YAML, --data DIR, --exp DIR (default data/ and exp/blstm/ here), --jobs N,
#   --lm-text FILE (e.g. librispeech-lm-norm.txt), --beam-size N
#
# Stages
#   0  manifests from --corpus-dir (ctcasr data prepare-librispeech): one per subset, text
#      lower-cased to a-z, apostrophe and space; train.jsonl = the training subsets
#   1  tokens.txt and global CMVN statistics (ctcasr prepare)
#   2  training (ctcasr train; conf/blstm.yaml), validated on dev-clean
#   3  word 3-gram LM (from the training transcripts; or --lm-text, or --lm-arpa), then WER
#      on dev-clean, dev-other, test-clean, test-other: greedy and beam search + LM
set -euo pipefail

stage=0
stop_stage=3
corpus_dir=
train_subsets="train-clean-100"
eval_subsets="dev-clean dev-other test-clean test-other"
config=conf/blstm.yaml
data=data
exp=exp/blstm
jobs=4
lm_text=
lm_arpa=
beam_size=32
path_opts="corpus_dir config data exp lm_text lm_arpa"
. "$(dirname "$0")/../../scripts/parse_options.sh"
# Paths given on the command line are relative to where you run this; defaults to this folder.
cd "$(dirname "$0")"
SECONDS=0

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  echo "== stage 0: manifests"
  if [ -z "$corpus_dir" ]; then
    echo "stage 0 needs --corpus-dir (the folder holding train-clean-100/, dev-clean/, ...)" >&2; exit 2
  fi
  # shellcheck disable=SC2086  # the subset lists are word lists on purpose
  ctcasr data prepare-librispeech --corpus-dir "$corpus_dir" --out "$data" --jobs "$jobs" \
    --subsets $train_subsets $eval_subsets
  for s in $train_subsets; do cat "$data/$s.jsonl"; done > "$data/train.jsonl"
  echo "stage 0 done after ${SECONDS}s"
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  echo "== stage 1: tokens and CMVN"
  ctcasr prepare --config "$config" --train "$data/train.jsonl" --out "$exp"
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  echo "== stage 2: training"
  ctcasr train --overwrite --config "$config" --train "$data/train.jsonl" --valid "$data/dev-clean.jsonl" --out "$exp"
  echo "stage 2 done after ${SECONDS}s"
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  echo "== stage 3: LM and scoring"
  if [ -n "$lm_arpa" ]; then
    # OpenSLR's LibriSpeech ARPAs are upper case; the model writes lower case.
    zcat -f "$lm_arpa" | tr '[:upper:]' '[:lower:]' > "$exp/lm.arpa.tmp" && mv "$exp/lm.arpa.tmp" "$exp/lm.arpa"
  elif [ -n "$lm_text" ]; then
    # The built-in estimator holds all counts in memory: fine for a few million sentences;
    # for all of librispeech-lm-norm.txt (40 M) use KenLM's lmplz and --lm-arpa.
    lm_src=$lm_text
    case "$lm_text" in *.gz) zcat "$lm_text" > "$exp/lm_text.txt"; lm_src=$exp/lm_text.txt ;; esac
    ctcasr lm build "$lm_src" --order 3 --lowercase -o "$exp/lm.arpa"
  else
    python -c "import json,sys; [print(json.loads(l)['text']) for l in open(sys.argv[1], encoding='utf-8')]" \
      "$data/train.jsonl" > "$exp/lm_train.txt"
    ctcasr lm build "$exp/lm_train.txt" --order 3 -o "$exp/lm.arpa"
  fi
  for s in $eval_subsets; do
    echo "-- $s greedy"
    ctcasr evaluate --model "$exp" --data "$data/$s.jsonl" --decoder greedy | tee "$exp/${s}_greedy.txt"
    echo "-- $s beam $beam_size + word 3-gram"
    ctcasr evaluate --model "$exp" --data "$data/$s.jsonl" --decoder beam --beam-size "$beam_size" \
      | tee "$exp/${s}_beam_lm.txt"
  done
  echo "recipe time ${SECONDS}s"
fi
