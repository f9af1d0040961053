#!/usr/bin/env bash
# Spoken digits, end to end: synthesize -> tokens/CMVN -> train BiLSTM-CTC -> decode/score.
#
#   bash recipes/digits/run.sh                      # all stages
#   bash recipes/digits/run.sh --stage 2 --stop-stage 3
#   bash recipes/digits/run.sh --stage 4 --ship true   # copy the model to data/models/digits
#   Other options: --config YAML, --jobs N (synthesis), --n-train/--n-dev/--n-test N,
#   --data DIR --exp DIR (where corpus and model go; default data/ and exp/blstm/ here; paths
#   given are relative to where you run this). --help: this text.
#
# Stages
#   0  texts (1-7 digits, "zero".."nine", "oh") and speech from Debian TTS voices:
#      training from the recorded English voices (KAL, RMS, SLT), ten recorded voices of
#      other languages reading respelled digits (conf/respell.json), 15 MBROLA/Pico
#      recorded speakers (US English and English read by German, French, Dutch, ...
#      speakers), six more (RHVoice bdl, clb, evgeniy-eng, lyubov; festival rab, don) and
#      ~600 espeak-ng voices. Test speakers are never heard in training:
#      KED (festival diphone), AWB (flite) and twelve espeak-ng variants (under every
#      accent) make the test set; seven more MBROLA/Pico speakers make test_c, scored on
#      its own; dev uses six other held-out espeak-ng variants. Part of every split has
#      noise/reverberation/telephone.
#   1  tokens.txt and global CMVN statistics (ctcasr prepare)
#   2  training (ctcasr train; conf/blstm.yaml)
#   3  word 2-gram LM from the training texts; test WER/CER with S/D/I, greedy and
#      beam search + LM (ctcasr evaluate); words written for 46 clips without speech
#   4  with --ship true: copy the model (with its LM) into <repo>/data/models/digits and
#      regenerate data/samples/digits
set -euo pipefail

stage=0
stop_stage=3
ship=false
jobs=2
config=conf/blstm.yaml
n_train=4200
n_dev=300
n_test=600
data=data
exp=exp/blstm
path_opts="config data exp"
. "$(dirname "$0")/../../scripts/parse_options.sh"
# Paths given on the command line are relative to where you run this; defaults to this folder.
cd "$(dirname "$0")"

SECONDS=0

# Speakers held out of training (see ctcasr.synth.Voice.speaker: the espeak timbre is the
# variant, so a held-out variant is held out under every accent).
test_espeak_variants="f3 m5 klatt4 Annie Gene belinda john steph2 iven3 Mike robert aunty"
dev_espeak_variants="f4 m2 klatt2 Alex linda quincy"
test_natural="festival:ked_diphone flite:awb"
test_voices="$test_natural"
for v in $test_espeak_variants; do test_voices="$test_voices espeak:*+$v"; done
dev_voices=""
for v in $dev_espeak_variants; do dev_voices="$dev_voices espeak:*+$v"; done
# The recorded-speaker voices left for training: KAL (flite + festival), RMS and SLT (flite +
# festival HTS), the only female one (a model that never heard a woman's voice is no use).
natural_train="flite:kal16 festival:kal_diphone flite:rms flite:slt festival:cmu_us_slt_arctic_hts"
# Non-English festival voices and their respellings of the digit words (conf/respell.json;
# Cyrillic for the Russian voice; each spelling was kept only if an English-trained model
# heard it as the intended word, alone and said twice).
accented_train="festival:lp_diphone festival:pc_diphone festival:suo_fi_lj_diphone festival:hy_fi_mv_diphone \
festival:upc_ca_ona_hts festival:czech_dita festival:czech_machac festival:czech_krb festival:czech_ph \
festival:msu_ru_nsh_clunits"
# Recorded speakers from Debian's non-free/contrib sections: $diphone_train (MBROLA, Pico),
# $more_train (RHVoice, festival rab/don), held out: $test_c_voices.
. ../../scripts/recorded_voices.sh
accented_packages="festvox-italp16k festvox-itapc16k festvox-suopuhe-lj festvox-suopuhe-mv festvox-ca-ona-hts \
festvox-czech-dita festvox-czech-machac festvox-czech-krb festvox-czech-ph festvox-ru"

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  echo "== stage 0: texts and speech"
  bash ../../scripts/install_tts.sh $accented_packages
  mkdir -p $data
  n_natural=$((n_train * 57 / 100))
  n_accented=$((n_train * 17 / 100))
  # The MBROLA/Pico part comes on top of n_train (and its texts after the others', so that
  # the other splits are those of the recipe before it had these voices).
  n_diphone=$((n_train * 20 / 100))
  n_more=$((n_train * 8 / 100))
  python local/make_texts.py --seed 1 --out-dir $data dev=$n_dev test_a=$((n_test / 2)) test_b=$((n_test / 2)) \
    train_a=$n_natural train_c=$n_accented train_b=$((n_train - n_natural - n_accented)) \
    test_c=$((n_test / 2)) train_d=$n_diphone train_e=$n_more
  aug="--noise-prob 0.3 --snr-range 5,30 --reverb-prob 0.15 --telephone-prob 0.1"
  # Most of training from the few recorded-speaker voices, the rest from hundreds of espeak
  # voices (dealt evenly), so neither family is drowned out by the other.
  ctcasr synth --texts $data/train_a.txt --voices $natural_train --out $data/wav/train_a \
    --manifest $data/train_a.jsonl --seed 11 --jobs $jobs --prefix tra $aug --quiet
  # Recorded speakers of other languages (Italian, Finnish, Catalan, Czech, Russian festival
  # voices) reading respelled digits ("uan", "tuu", "фри", ...): accented English from ten more
  # people (a child among them: Czech krb).
  ctcasr synth --texts $data/train_c.txt --respell conf/respell.json --voices $accented_train \
    --out $data/wav/train_c --manifest $data/train_c.jsonl --seed 16 --jobs $jobs --prefix trc $aug --quiet
  # Fifteen more recorded speakers (MBROLA, Pico), each with its own accent and diphones.
  ctcasr synth --texts $data/train_d.txt --voices $diphone_train --out $data/wav/train_d \
    --manifest $data/train_d.jsonl --seed 17 --jobs $jobs --prefix trd $aug --quiet
  ctcasr synth --texts $data/train_e.txt --voices $more_train --out $data/wav/train_e \
    --manifest $data/train_e.jsonl --seed 20 --jobs $jobs --prefix tre $aug --quiet
  ctcasr synth --texts $data/train_b.txt --voices 'espeak:*' --exclude-voices $test_voices $dev_voices \
    --out $data/wav/train_b --manifest $data/train_b.jsonl --seed 12 --jobs $jobs --prefix trb $aug --quiet
  ctcasr synth --texts $data/dev.txt --voices $dev_voices --out $data/wav/dev --manifest $data/dev.jsonl \
    --seed 13 --jobs $jobs --prefix dev $aug --quiet
  ctcasr synth --texts $data/test_a.txt --voices $test_natural \
    --out $data/wav/test_a --manifest $data/test_a.jsonl --seed 14 --jobs $jobs --prefix tea $aug --quiet
  tv=""; for v in $test_espeak_variants; do tv="$tv espeak:*+$v"; done
  ctcasr synth --texts $data/test_b.txt --voices $tv --out $data/wav/test_b --manifest $data/test_b.jsonl \
    --seed 15 --jobs $jobs --prefix teb $aug --quiet
  ctcasr synth --texts $data/test_c.txt --voices $test_c_voices --out $data/wav/test_c \
    --manifest $data/test_c.jsonl --seed 18 --jobs $jobs --prefix tec $aug --quiet
  cat $data/train_a.jsonl $data/train_c.jsonl $data/train_d.jsonl $data/train_e.jsonl $data/train_b.jsonl \
    > $data/train.jsonl
  cat $data/test_a.jsonl $data/test_b.jsonl > $data/test.jsonl
  echo "stage 0 done after ${SECONDS}s"
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  echo "== stage 1: tokens and CMVN"
  ctcasr prepare --config $config --train $data/train.jsonl --out $exp
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  echo "== stage 2: training"
  ctcasr train --overwrite --config $config --train $data/train.jsonl --valid $data/dev.jsonl --out $exp
  echo "stage 2 done after ${SECONDS}s"
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  echo "== stage 3: test (speakers never heard in training)"
  # A word 2-gram from the training transcripts only. Digit strings are random, so it acts
  # mostly as a lexicon: the beam search can no longer write non-words like "fivxe".
  python -c "import json,sys; [print(json.loads(l)['text']) for l in open(sys.argv[1])]" $data/train.jsonl \
    > $exp/lm_train.txt
  ctcasr lm build $exp/lm_train.txt --order 2 -o $exp/lm.arpa
  echo "-- greedy"
  ctcasr evaluate --model $exp --data $data/test.jsonl --decoder greedy | tee $exp/test_greedy.txt
  echo "-- beam 16 + word 2-gram (lm weight 0.5, word score 1.0, fixed a priori)"
  ctcasr evaluate --model $exp --data $data/test.jsonl --decoder beam --beam-size 16 | tee $exp/test_beam_lm.txt
  for part in test_a test_b; do
    [ $part = test_a ] && echo "   of which KED + AWB voices:" || echo "   of which held-out espeak-ng variants:"
    ctcasr evaluate --model $exp --data $data/$part.jsonl --decoder beam --beam-size 16 | sed 's/^/   /'
  done
  echo "-- test_c: seven more recorded speakers never heard in training (MBROLA, Pico), beam 16 + 2-gram"
  ctcasr evaluate --model $exp --data $data/test_c.jsonl --decoder beam --beam-size 16 | tee $exp/test_c_beam_lm.txt
  # Audio without speech (sox-made noise, hum, tones) should give no words at all.
  python local/nonspeech_check.py --model $exp | tee $exp/test_nonspeech.txt
  echo "recipe time ${SECONDS}s"
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ] && [ "$ship" = true ]; then
  echo "== stage 4: ship to data/models/digits"
  mkdir -p ../../data/models/digits
  cp $exp/config.yaml $exp/tokens.txt $exp/model.pt $exp/lm.arpa ../../data/models/digits/
  python local/make_samples.py --out-dir ../../data/samples/digits
fi
