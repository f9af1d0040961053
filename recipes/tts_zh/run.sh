#!/usr/bin/env bash
# Mandarin characters, end to end, and the "好棒棒" demonstration of CTC's blank φ:
# synthesize -> tokens/CMVN -> train BiLSTM-CTC -> decode/score -> demo.
#
#   bash recipes/tts_zh/run.sh                      # all stages, about 12 minutes on 2 CPU cores
#   bash recipes/tts_zh/run.sh --stage 4 --stop-stage 4
#   Other options: --config YAML, --jobs N (synthesis), --n-train/--n-dev/--n-test N,
#   --data DIR --exp DIR (where corpus and model go; default data/ and exp/blstm/ here; paths
#   given are relative to where you run this). --help: this text.
#
# Stages
#   0  texts (local/make_texts.py: everyday sentences in Han characters from a template
#      grammar, disjoint across splits; 好棒 and 好棒棒 are never a whole utterance) and
#      speech from espeak-ng's cmn-latn-pinyin voice with its variants (+f1, +m3, +klatt …).
#      Test speakers are eight variants never heard in training, dev six others; whisper
#      variants are left out (no voicing, so no tones). Part of every split has
#      noise/reverberation.
#   1  tokens.txt (one token per character, no word delimiter) and CMVN statistics
#   2  training (ctcasr train; conf/blstm.yaml)
#   3  character 3-gram LM from the training texts; test CER, greedy and beam search + LM
#   4  the demonstration: a test-only voice says 好棒 and 好棒棒 (utterances held out of
#      every split); both are transcribed, and the posteriorgram of 好棒棒 is drawn
#      (exp/.../haobangbang.png): 好 φ 棒 φ 棒, the blank between the two 棒 is what lets
#      CTC write a character twice.
set -euo pipefail

stage=0
stop_stage=4
jobs=2
config=conf/blstm.yaml
n_train=2000
n_dev=150
n_test=300
data=data
exp=exp/blstm
path_opts="config data exp"
. "$(dirname "$0")/../../scripts/parse_options.sh"
# Paths given on the command line are relative to where you run this; defaults to this folder.
cd "$(dirname "$0")"

SECONDS=0

# Speakers held out of training: an espeak-ng variant sets the timbre (ctcasr.synth.Voice.speaker).
voice=espeak:cmn-latn-pinyin
test_variants="f3 m5 klatt4 Annie Gene belinda john steph2"
dev_variants="f4 m2 klatt2 Alex linda quincy"
demo_variant=f3   # one of the test variants
test_voices=""; for v in $test_variants; do test_voices="$test_voices $voice+$v"; done
dev_voices=""; for v in $dev_variants; do dev_voices="$dev_voices $voice+$v"; done

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  echo "== stage 0: texts and speech"
  # fonts-wqy-microhei: a font with Han characters for the posteriorgram's labels (stage 4).
  bash ../../scripts/install_tts.sh fonts-wqy-microhei
  mkdir -p $data
  python local/make_texts.py --seed 1 --out-dir $data train=$n_train dev=$n_dev test=$n_test
  aug="--noise-prob 0.3 --snr-range 5,30 --reverb-prob 0.15"
  # The plain voice and every variant but the held-out ones and the whispers.
  ctcasr synth --language zh --texts $data/train.txt --voices "$voice*" \
    --exclude-voices $test_voices $dev_voices "$voice+whisper*" \
    --out $data/wav/train --manifest $data/train.jsonl --seed 11 --jobs $jobs --prefix tr $aug --quiet
  ctcasr synth --language zh --texts $data/dev.txt --voices $dev_voices \
    --out $data/wav/dev --manifest $data/dev.jsonl --seed 13 --jobs $jobs --prefix dev $aug --quiet
  ctcasr synth --language zh --texts $data/test.txt --voices $test_voices \
    --out $data/wav/test --manifest $data/test.jsonl --seed 14 --jobs $jobs --prefix te $aug --quiet
  echo "training sentences containing 好棒棒: $(grep -c 好棒棒 $data/train.txt || true)," \
    "好棒 (incl. 好棒棒): $(grep -c 好棒 $data/train.txt || true) of $(wc -l < $data/train.txt)"
  echo "stage 0 done after ${SECONDS}s"
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  echo "== stage 1: tokens and CMVN"
  ctcasr prepare --config $config --train $data/train.jsonl --out $exp
  echo "$(($(wc -l < $exp/tokens.txt) - 1)) character tokens + φ"
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  echo "== stage 2: training"
  ctcasr train --overwrite --config $config --train $data/train.jsonl --valid $data/dev.jsonl --out $exp --no-progress
  echo "stage 2 done after ${SECONDS}s"
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  echo "== stage 3: test (voices never heard in training)"
  # A character 3-gram from the training transcripts only (every character is an LM word).
  python -c "import json,sys; [print(json.loads(l)['text']) for l in open(sys.argv[1], encoding='utf-8')]" \
    $data/train.jsonl > $exp/lm_train.txt
  ctcasr lm build $exp/lm_train.txt --token-level --order 3 -o $exp/lm.arpa
  # No WER line: the model writes no word delimiter; CER is the metric (and SER, utterances with an error).
  echo "-- greedy"
  ctcasr evaluate --model $exp --data $data/test.jsonl --decoder greedy | tee $exp/test_greedy.txt
  echo "-- beam 16 + character 3-gram (lm weight 0.5, score 1.0 per character, fixed a priori)"
  ctcasr evaluate --model $exp --data $data/test.jsonl --decoder beam --beam-size 16 | tee $exp/test_beam_lm.txt
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  echo "== stage 4: 好棒 and 好棒棒, said by $voice+$demo_variant (a test voice), clean, normal rate"
  printf '好棒\n好棒棒\n' > $data/demo.txt
  ctcasr synth --language zh --texts $data/demo.txt --voices "$voice+$demo_variant" --out $data/wav/demo \
    --manifest $data/demo.jsonl --seed 21 --jobs 1 --prefix demo --rate-range 1,1 --pitch-range 1,1 \
    --noise-prob 0 --reverb-prob 0 --quiet
  cp $data/wav/demo/0000/demo0000000.wav $exp/haobang.wav
  cp $data/wav/demo/0000/demo0000001.wav $exp/haobangbang.wav
  for dec in greedy beam; do
    ctcasr -q transcribe --model $exp --decoder $dec $exp/haobang.wav $exp/haobangbang.wav > $exp/demo_$dec.txt
  done
  python - "$exp" <<'EOF'
import sys
exp = sys.argv[1]
ref = {"haobang.wav": "好棒", "haobangbang.wav": "好棒棒"}
for dec in ("greedy", "beam"):
    for line in open(f"{exp}/demo_{dec}.txt", encoding="utf-8"):
        path, _, hyp = line.rstrip("\n").partition("\t")
        r = ref[path.rsplit("/", 1)[-1]]
        print(f"{dec:6s} {path.rsplit('/', 1)[-1]:16s} says {r}, heard {hyp}: {'correct' if hyp == r else 'WRONG'}")
EOF
  ctcasr plot $exp/haobangbang.wav --model $exp -o $exp/haobangbang.png
  echo "recipe time ${SECONDS}s"
fi
