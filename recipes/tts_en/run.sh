#!/usr/bin/env bash
# A general English model from synthetic speech: synthesize -> tokens/CMVN -> train
# BiLSTM-CTC -> word 3-gram LM, decode/score -> ship as data/models/en.
#
#   bash recipes/tts_en/run.sh                      # all stages (see README for the time)
#   bash recipes/tts_en/run.sh --stage 3 --stop-stage 3
#   Other options: --config YAML, --jobs N (synthesis), --n-train/--n-dev/--n-test N,
#   --data DIR --exp DIR (default data/ and exp/blstm/ here; paths given are relative to
#   where you run this), --ship true|DIR (stage 4: copy the model to data/models/en, or to DIR),
#   --more-speakers true (stage 0 adds train_c: 30 % more sentences read by 21 more recorded
#   speakers from Debian non-free/contrib, and test_c: 200 sentences by seven held-out ones;
#   an experiment, off by default: see README)
#
# Stages
#   0  texts (local/make_texts.py: sentences of 3-20 words from Debian's `fortunes` and
#      WordNet's usage examples, normalised to a-z, apostrophe and space; train, dev, test
#      and the LM text are disjoint) and speech from Debian TTS: 40 % of training from the
#      recorded-speaker voices (flite/festival KAL, RMS, SLT), 60 % dealt over hundreds of
#      espeak-ng accent x variant voices; rate and pitch varied, speed perturbed 0.9/1.0/1.1,
#      30 % with noise (5-30 dB SNR), 15 % reverberated, 10 % telephone band. Test speakers
#      are never heard in training: KED (festival diphone), AWB (flite, Scottish) and twelve
#      espeak-ng variants held out under every accent; dev has six more held-out variants.
#   1  tokens.txt (a-z, apostrophe, space) and CMVN statistics
#   2  training (ctcasr train; conf/blstm.yaml)
#   3  word 3-gram LM (interpolated modified Kneser-Ney, singletons pruned) from the LM text,
#      i.e. every usable sentence that is not in dev or test; LM weight and word score tuned
#      on dev (decode.yaml); test WER/CER greedy and beam + LM, by voice family
#   4  ship model + LM + decode.yaml to data/models/en (only with --ship true, or --ship DIR)
set -euo pipefail

stage=0
stop_stage=4
ship=false
jobs=2
config=conf/blstm.yaml
n_train=10000
n_dev=200
n_test=400
more_speakers=false
data=data
exp=exp/blstm
path_opts="config data exp"
. "$(dirname "$0")/../../scripts/parse_options.sh"
case $ship in true|false|/*) ;; *) ship=$PWD/$ship ;; esac  # --ship DIR
# Paths given on the command line are relative to where you run this; defaults to this folder.
cd "$(dirname "$0")"

SECONDS=0

# Speakers held out of training (see ctcasr.synth.Voice.speaker: the espeak timbre is the
# variant, so a held-out variant is held out under every accent). The same split as the
# digits recipe, so neither shipped model has heard the other's test speakers in training.
test_espeak_variants="f3 m5 klatt4 Annie Gene belinda john steph2 iven3 Mike robert aunty"
dev_espeak_variants="f4 m2 klatt2 Alex linda quincy"
test_natural="festival:ked_diphone flite:awb"
test_voices="$test_natural"
for v in $test_espeak_variants; do test_voices="$test_voices espeak:*+$v"; done
dev_voices=""
for v in $dev_espeak_variants; do dev_voices="$dev_voices espeak:*+$v"; done
natural_train="flite:kal16 festival:kal_diphone flite:rms flite:slt festival:cmu_us_slt_arctic_hts"
# --more-speakers: the digits recipe's 21 recorded training speakers of Debian's non-free and
# contrib sections ($diphone_train $more_train) and its seven held-out ones ($test_c_voices).
. ../../scripts/recorded_voices.sh
case $more_speakers in true|false) ;; *) echo "$0: --more-speakers takes true or false" >&2; exit 2 ;; esac

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  echo "== stage 0: texts and speech"
  # fortunes + wordnet-base: the text sources (plain English text files, no code).
  bash ../../scripts/install_tts.sh fortunes wordnet-base
  mkdir -p $data
  n_natural=$((n_train * 40 / 100))
  # (train_c and test_c are drawn after train_b: every other split is the same either way)
  more_splits=""
  [ $more_speakers = true ] && more_splits="train_c=$((n_train * 30 / 100)) test_c=$((n_test / 2))"
  python local/make_texts.py --seed 1 --out-dir $data dev=$n_dev test_a=$((n_test / 2)) test_b=$((n_test / 2)) \
    train_a=$n_natural train_b=$((n_train - n_natural)) $more_splits lm_extra=rest
  rm -f $data/train_c.jsonl $data/test_c.jsonl
  aug="--noise-prob 0.3 --snr-range 5,30 --reverb-prob 0.15 --telephone-prob 0.1 --speeds 0.9 1.0 1.1"
  ctcasr synth --texts $data/train_a.txt --voices $natural_train --out $data/wav/train_a \
    --manifest $data/train_a.jsonl --seed 11 --jobs $jobs --prefix tra $aug --quiet
  ctcasr synth --texts $data/train_b.txt --voices 'espeak:*' --exclude-voices $test_voices $dev_voices \
    --out $data/wav/train_b --manifest $data/train_b.jsonl --seed 12 --jobs $jobs --prefix trb $aug --quiet
  ctcasr synth --texts $data/dev.txt --voices $dev_voices --out $data/wav/dev --manifest $data/dev.jsonl \
    --seed 13 --jobs $jobs --prefix dev $aug --quiet
  ctcasr synth --texts $data/test_a.txt --voices $test_natural \
    --out $data/wav/test_a --manifest $data/test_a.jsonl --seed 14 --jobs $jobs --prefix tea $aug --quiet
  tv=""; for v in $test_espeak_variants; do tv="$tv espeak:*+$v"; done
  ctcasr synth --texts $data/test_b.txt --voices $tv --out $data/wav/test_b --manifest $data/test_b.jsonl \
    --seed 15 --jobs $jobs --prefix teb $aug --quiet
  if [ $more_speakers = true ]; then
    ctcasr synth --texts $data/train_c.txt --voices $diphone_train $more_train --out $data/wav/train_c \
      --manifest $data/train_c.jsonl --seed 16 --jobs $jobs --prefix trc $aug --quiet
    ctcasr synth --texts $data/test_c.txt --voices $test_c_voices --out $data/wav/test_c \
      --manifest $data/test_c.jsonl --seed 17 --jobs $jobs --prefix tec $aug --quiet
  fi
  cat $data/train_a.jsonl $data/train_b.jsonl $([ $more_speakers = true ] && echo $data/train_c.jsonl) > $data/train.jsonl
  cat $data/test_a.jsonl $data/test_b.jsonl > $data/test.jsonl
  python -c "import json,sys; print('training audio: %.2f h' % (sum(json.loads(l)['duration'] for l in open(sys.argv[1])) / 3600))" \
    $data/train.jsonl
  echo "stage 0 done after ${SECONDS}s"
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  echo "== stage 1: tokens and CMVN"
  ctcasr prepare --config $config --train $data/train.jsonl --out $exp
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  echo "== stage 2: training"
  ctcasr train --overwrite --config $config --train $data/train.jsonl --valid $data/dev.jsonl --out $exp --no-progress
  echo "stage 2 done after ${SECONDS}s"
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  echo "== stage 3: test (speakers and sentences never heard in training)"
  # The LM text: the training transcripts plus every usable sentence that is in neither dev
  # nor test (text the model was not trained to hear, but text all the same).
  cat $data/train_a.txt $data/train_b.txt $([ -f $data/train_c.jsonl ] && echo $data/train_c.txt) $data/lm_extra.txt \
    > $exp/lm_train.txt
  # 2- and 3-grams seen once are pruned: 17 MB -> 2.7 MB of ARPA, loads in 0.3 s instead of 2 s.
  ctcasr lm build $exp/lm_train.txt --order 3 --prune 0 1 1 -o $exp/lm.arpa
  # LM weight and word score from the dev set (voices and sentences of neither train nor
  # test), written to $exp/decode.yaml, which evaluate and transcribe then use.
  ctcasr tune-lm --model $exp --data $data/dev.jsonl --beam-size 16 --write | tail -3
  echo "-- greedy"
  ctcasr evaluate --model $exp --data $data/test.jsonl --decoder greedy | tee $exp/test_greedy.txt
  echo "-- beam 16 + word 3-gram"
  ctcasr evaluate --model $exp --data $data/test.jsonl --decoder beam | tee $exp/test_beam_lm.txt
  for part in test_a test_b; do
    [ $part = test_a ] && echo "   KED + AWB voices:" || echo "   held-out espeak-ng variants:"
    for dec in greedy beam; do
      echo "   $dec: $(ctcasr evaluate --model $exp --data $data/$part.jsonl --decoder $dec | tr '\n' ' ')"
    done
  done
  if [ -f $data/test_c.jsonl ]; then
    echo "-- test_c: seven more recorded speakers never heard in training (MBROLA, Pico), scored on its own"
    for dec in greedy beam; do
      echo "   $dec: $(ctcasr evaluate --model $exp --data $data/test_c.jsonl --decoder $dec | tr '\n' ' ')"
    done
  fi
  echo "recipe time ${SECONDS}s"
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ] && [ "$ship" != false ]; then
  dest=../../data/models/en
  [ "$ship" != true ] && dest=$ship
  echo "== stage 4: ship to $dest"
  mkdir -p $dest
  cp $exp/config.yaml $exp/tokens.txt $exp/lm.arpa $exp/decode.yaml $dest/
  # Weight matrices stored as float16 (half the size in git and in the wheel); they load
  # into the float32 model unchanged in shape, and the test WER is re-measured from the
  # shipped copy so the README figure is the shipped model's.
  python - $exp/model.pt $dest/model.pt <<'PYEOF'
import sys, torch
sd = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
half = {k: (v.half() if k.startswith(("encoder.", "head.")) and v.dim() >= 2 else v) for k, v in sd.items()}
torch.save(half, sys.argv[2])
PYEOF
  echo "-- shipped copy, beam + LM: $(ctcasr evaluate --model $dest --data $data/test.jsonl | tr '\n' ' ')"
fi
