"""Manifests, Kaldi data dirs, filtering with counts, bucketing."""

import json

import numpy as np
import pytest
import soundfile as sf

from ctcasr.data import (AudioDataset, BucketBatchSampler, collate, ctc_min_frames, prepare_utterances,
                         read_kaldi_dir, read_manifest, write_manifest)
from ctcasr.errors import DataError
from ctcasr.tokenizer import Tokenizer


def _wav(path, seconds=0.5, sr=16000):
    sf.write(path, 0.1 * np.random.default_rng(0).standard_normal(int(sr * seconds)), sr)
    return path


def test_manifest_relative_paths_resolve_against_its_folder(tmp_path):
    (tmp_path / "audio").mkdir()
    _wav(tmp_path / "audio" / "a.wav")
    m = tmp_path / "m.jsonl"
    m.write_text(json.dumps({"audio_filepath": "audio/a.wav", "duration": 0.5, "text": "hi"}) + "\n\n")
    (u,) = read_manifest(m)
    assert u.audio_filepath == str(tmp_path / "audio" / "a.wav") and u.text == "hi"
    # duration is read from the header when missing
    m.write_text(json.dumps({"audio_filepath": "audio/a.wav", "text": "hi"}) + "\n")
    assert read_manifest(m)[0].duration == pytest.approx(0.5)


def test_write_manifest_round_trip(tmp_path):
    _wav(tmp_path / "a.wav")
    m = tmp_path / "m.jsonl"
    m.write_text(json.dumps({"audio_filepath": str(tmp_path / "a.wav"), "duration": 0.5, "text": "x",
                             "voice": "espeak:en"}) + "\n")
    utts = read_manifest(m)
    write_manifest(utts, tmp_path / "out.jsonl")
    rec = json.loads((tmp_path / "out.jsonl").read_text())
    assert rec["audio_filepath"] == "a.wav" and rec["voice"] == "espeak:en"
    assert read_manifest(tmp_path / "out.jsonl")[0].audio_filepath == utts[0].audio_filepath


@pytest.mark.parametrize(
    "lines, match",
    [
        (['{"audio_filepath": "a.wav", "text": "x"', ""], r"m.jsonl:1: not a JSON object"),
        (['{"audio_filepath": "a.wav", "duration": 1, "text": "x"}', '[1, 2]'], r"m.jsonl:2: expected a JSON object"),
        (['{"audio_filepath": "a.wav", "duration": 1}'], r"m.jsonl:1: missing key\(s\) text"),
        (['{"audio_filepath": "a.wav", "duration": "long", "text": "x"}'], r"m.jsonl:1: duration"),
        (['{"audio_filepath": "a.wav", "duration": -1, "text": "x"}'], r"m.jsonl:1: duration"),
        (['{"id": "u", "audio_filepath": "a.wav", "duration": 1, "text": "x"}'] * 2, r"m.jsonl:2: utterance id 'u'"),
    ],
)
def test_bad_manifest_lines_name_file_and_line(tmp_path, lines, match):
    m = tmp_path / "m.jsonl"
    m.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=match):
        read_manifest(m)


def test_missing_manifest(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_manifest(tmp_path / "nope.jsonl")


def test_kaldi_data_dir(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    _wav(tmp_path / "r1.wav", seconds=2.0)
    _wav(tmp_path / "r2.wav", seconds=1.0)
    (d / "wav.scp").write_text(f"r1 {tmp_path / 'r1.wav'}\nr2 ../r2.wav\n")
    (d / "text").write_text("r1 one two\nr2 three\n")
    utts = read_kaldi_dir(d)
    assert [(u.id, u.text) for u in utts] == [("r1", "one two"), ("r2", "three")]
    assert utts[1].duration == pytest.approx(1.0)
    # segments
    (d / "segments").write_text("s1 r1 0.5 1.5\ns2 r2 0.0 0.5\n")
    (d / "text").write_text("s1 one\ns2 two\n")
    utts = read_manifest(d)  # a directory is read as a Kaldi data dir
    assert [(u.id, u.offset, u.duration) for u in utts] == [("s1", 0.5, 1.0), ("s2", 0.0, 0.5)]


def test_kaldi_pipes_and_duplicates_are_refused(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    (d / "text").write_text("u1 hi\n")
    (d / "wav.scp").write_text("u1 sox x.wav -t wav - |\n")
    with pytest.raises(DataError, match="shell pipeline"):
        read_kaldi_dir(d)
    (d / "wav.scp").write_text("u1 a.wav\nu1 b.wav\n")
    with pytest.raises(DataError, match="wav.scp:2: id 'u1' already used on line 1"):
        read_kaldi_dir(d)
    (d / "wav.scp").unlink()
    with pytest.raises(DataError, match="no wav.scp"):
        read_kaldi_dir(d)


def test_ctc_min_frames_counts_blanks_between_repeats():
    assert ctc_min_frames([1, 2, 2]) == 4  # 好 棒 φ 棒
    assert ctc_min_frames([1, 2, 3]) == 3
    assert ctc_min_frames([5, 5, 5]) == 5


def test_prepare_utterances_skips_and_counts(tmp_path, caplog):
    from ctcasr.data import Utterance

    tok = Tokenizer.build(["abc def"])
    utts = [
        Utterance("ok", "x.wav", 1.0, "abc"),
        Utterance("unk", "x.wav", 1.0, "xyz"),
        Utterance("empty", "x.wav", 1.0, "!!"),
        Utterance("toolong", "x.wav", 0.1, "abcabcabcabc"),
        Utterance("short", "x.wav", 0.0, "abc"),
    ]
    kept, skipped = prepare_utterances(utts, tok, lambda s: int(s * 33))
    assert [u.id for u, _ in kept] == ["ok"]
    assert sum(skipped.values()) == 4
    assert skipped["unknown characters"] == 1 and skipped["transcript longer than the audio allows"] == 1
    assert "skipped 1 utterance(s): unknown characters" in caplog.text


def test_bucket_sampler_caps_padded_seconds_and_shards():
    rng = np.random.default_rng(0)
    durs = rng.uniform(0.5, 10, size=500).tolist()
    s = BucketBatchSampler(durs, max_batch_seconds=60, seed=3)
    batches = s.epoch_batches()
    assert sorted(i for b in batches for i in b) == list(range(500))
    for b in batches:
        assert max(durs[i] for i in b) * len(b) <= 60 or len(b) == 1
    s.set_epoch(1)
    assert s.epoch_batches() != batches  # reshuffled per epoch
    # two ranks see disjoint halves of the same order
    r0 = BucketBatchSampler(durs, 60, seed=3, rank=0, world_size=2)
    r1 = BucketBatchSampler(durs, 60, seed=3, rank=1, world_size=2)
    assert len(r0) == len(r1)
    assert not set(map(tuple, r0.epoch_batches())) & set(map(tuple, r1.epoch_batches()))
    s.set_epoch(1, start_batch=5)
    assert list(s) == s.epoch_batches()[5:]


def test_dataset_and_collate(tmp_path):
    from ctcasr.data import Utterance

    _wav(tmp_path / "a.wav", 0.5)
    _wav(tmp_path / "b.wav", 0.25)
    items = [(Utterance("a", str(tmp_path / "a.wav"), 0.5, "ab"), [1, 2]),
             (Utterance("b", str(tmp_path / "b.wav"), 0.25, "a"), [1]),
             (Utterance("c", str(tmp_path / "missing.wav"), 0.25, "a"), [1])]
    ds = AudioDataset(items)
    assert ds[2] is None  # unreadable audio is logged and dropped, not a crash
    # so is silence with a transcript (it was trained on: "one" for all-zero audio)
    sf.write(tmp_path / "zeros.wav", np.zeros(8000, np.float32), 16000)
    assert AudioDataset([(Utterance("z", str(tmp_path / "zeros.wav"), 0.5, "a"), [1])])[0] is None
    b = collate([ds[0], ds[1], ds[2]])
    assert b["waveforms"].shape == (2, 8000)
    assert b["lengths"].tolist() == [8000, 4000]
    assert b["targets"].tolist() == [1, 2, 1] and b["target_lengths"].tolist() == [2, 1]
    assert collate([None]) is None


def test_speech_babble_mixes_other_utterances_at_the_requested_snr():
    from ctcasr.data import apply_augmentation, speech_babble

    rng = np.random.default_rng(0)
    pool = [np.sin(np.arange(n) * f).astype(np.float32) for n, f in [(3000, 0.05), (9000, 0.11), (500, 0.3)]]
    b = speech_babble(8000, lambda: pool[int(rng.integers(3))], rng, talkers=(3, 3))
    assert b.shape == (8000,) and b.dtype == np.float32 and np.sqrt(np.mean(b ** 2)) > 0.5
    assert speech_babble(100, lambda: None, rng) is None  # nothing to mix: caller falls back

    x = np.sin(np.arange(16000) * 0.02).astype(np.float32) * 0.3
    cfg = {"noise_prob": 1.0, "noise_kinds": ["speech"], "snr_db": [10, 10]}
    y = apply_augmentation(x, 16000, cfg, np.random.default_rng(1), others=lambda: pool[1])
    snr = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean((y - x).astype(np.float64) ** 2))
    assert abs(snr - 10) < 0.1
    # without a pool of other utterances it falls back to synthetic babble instead of failing
    y2 = apply_augmentation(x, 16000, cfg, np.random.default_rng(1))
    assert y2.shape == x.shape and not np.allclose(y2, x)


def test_telephone_augmentation_draws_its_channel():
    """On-the-fly telephone: same length, nothing left above ~3.7 kHz (8 kHz sampling), and
    the pass band is drawn per call rather than one fixed filter for every utterance."""
    from ctcasr.data import apply_augmentation

    x = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    f = np.fft.rfftfreq(len(x), 1 / 16000)
    uppers = []
    for seed in range(6):
        y = apply_augmentation(x, 16000, {"telephone_prob": 1.0}, np.random.default_rng(seed))
        assert y.shape == x.shape and y.dtype == np.float32
        s = np.abs(np.fft.rfft(y)) ** 2
        assert s[f > 3800].sum() < 1e-3 * s.sum()
        c = np.cumsum(s) / s.sum()
        uppers.append(f[np.searchsorted(c, 0.995)])   # where the pass band's energy ends
    assert max(uppers) - min(uppers) > 150            # the band edge moves between draws


def test_augment_config_typos_are_errors():
    from ctcasr.data import check_augment_config
    from ctcasr.errors import ConfigError

    check_augment_config({"noise_prob": 0.2, "noise_kinds": ["speech", "white"]})
    with pytest.raises(ConfigError, match="reverb_probability"):
        check_augment_config({"reverb_probability": 0.2})
    with pytest.raises(ConfigError, match="crowd"):
        check_augment_config({"noise_kinds": ["crowd"]})


def test_average_state_dicts():
    import torch

    from ctcasr.train import average_state_dicts

    a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(5)}
    avg = average_state_dicts([a, b])
    assert torch.equal(avg["w"], torch.tensor([2.0, 4.0])) and int(avg["n"]) == 5


def test_concat_and_edge_trim_augmentation(tmp_path):
    """concat_prob joins another utterance after a pause (ids joined by the delimiter);
    edge_trim_prob cuts into leading/trailing silence but never into the speech."""
    import soundfile as sf

    from ctcasr.data import AudioDataset, Utterance, trim_edges

    sr = 16000
    items = []
    for k, n in enumerate((8000, 12000)):
        x = np.zeros(n + 4000, np.float32)
        x[2000:2000 + n] = 0.5 * np.sin(np.arange(n) * 0.05 * (k + 1))
        sf.write(tmp_path / f"{k}.wav", x, sr)
        items.append((Utterance(f"u{k}", str(tmp_path / f"{k}.wav"), len(x) / sr, "x"), [2 + k, 3 + k]))
    ds = AudioDataset(items, sr, {"concat_prob": 1.0, "concat_pause_s": (0.2, 0.2)}, join_ids=[1])
    assert ds[0][1] == [2, 3]  # single items are never joined
    (x, ids, uid), = ds.__getitems__([0, 1])
    assert ids == [2, 3, 1, 3, 4] and uid == "u0+u1"
    assert len(x) == 12000 + int(0.2 * sr) + 16000
    odd = ds.__getitems__([1, 0, 1])
    assert [len(o[1]) for o in odd] == [5, 2]
    none = AudioDataset(items, sr, {"concat_prob": 0.0}, join_ids=[1]).__getitems__([0, 1])
    assert [o[1] for o in none] == [[2, 3], [3, 4]]
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(1000), np.ones(500), np.zeros(700)].astype(np.float32)
    lens = set()
    for _ in range(50):
        t = trim_edges(y, rng)
        assert (t == 1).sum() == 500  # speech is never cut
        lens.add(len(t))
    assert min(lens) < 900 and max(lens) > 2000


def test_noise_bank_is_per_epoch_deterministic_and_feeds_the_noise(tmp_path):
    """augment.noise_bank (default on): noise is cut from clips made once per epoch from
    (seed, epoch); the same in every process, new each epoch, and what is added really is
    a cut of a bank clip at the drawn SNR. noise_bank: false makes noise per utterance."""
    import soundfile as sf

    from ctcasr.data import AudioDataset, NoiseBank, Utterance, apply_augmentation

    sr = 16000
    t = np.arange(sr) / sr
    x = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    sf.write(tmp_path / "a.wav", x, sr)
    u = Utterance("a", str(tmp_path / "a.wav"), 1.0, "a")
    aug = {"noise_prob": 1.0, "noise_kinds": ["pink", "babble"], "snr_db": [10, 10]}

    def bank_of(epoch, seed=3):
        ds = AudioDataset([(u, [1])], sr, dict(aug), seed=seed)
        ds.epoch = epoch
        return ds._noise_bank()

    b0, b0_again, b1 = bank_of(0), bank_of(0), bank_of(1)
    assert sorted(b0.clips) == ["babble", "pink"]
    assert all(np.array_equal(p, q) for k in b0.clips for p, q in zip(b0.clips[k], b0_again.clips[k]))
    assert not np.array_equal(b0.clips["pink"][0], b1.clips["pink"][0])
    assert bank_of(0, seed=4).clips["pink"][0].tolist() != b0.clips["pink"][0].tolist()

    # the added noise is a contiguous cut of one bank clip, at 10 dB SNR
    bank = NoiseBank(["pink"], sr, np.random.default_rng(0), clips=2, clip_s=3.0)
    y = apply_augmentation(x, sr, {"noise_prob": 1.0, "noise_kinds": ["pink"], "snr_db": [10, 10]},
                           np.random.default_rng(5), bank=bank)
    n = (y - x).astype(np.float64)
    snr = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(n ** 2))
    assert abs(snr - 10) < 0.05
    found = False
    for clip in bank.clips["pink"]:
        for off in range(len(clip) - len(x) + 1):
            seg = clip[off:off + len(x)].astype(np.float64)
            if abs(seg[0] * n[1] - seg[1] * n[0]) < 1e-6 and np.allclose(n / (n @ seg / (seg @ seg)), seg, atol=1e-4):
                found = True
                break
        if found:
            break
    assert found

    ds = AudioDataset([(u, [1])], sr, dict(aug, noise_bank=False), seed=3)
    assert ds._noise_bank() is None


def test_persistent_data_worker_follows_the_epoch(tmp_path):
    """Training's DataLoader keeps its worker processes for the whole run (loader_kwargs):
    the epoch must reach them with each batch (EpochBatch), so epoch e's batches from the
    worker are exactly what the dataset makes in-process for epoch e, and differ between
    epochs (the augmentation is drawn per (seed, epoch, utterance))."""
    import soundfile as sf
    import torch

    from ctcasr.data import AudioDataset, BucketBatchSampler, EpochBatch, Utterance, collate
    from ctcasr.train import loader_kwargs

    sr = 16000
    rng = np.random.default_rng(0)
    items = []
    for k in range(6):
        sf.write(tmp_path / f"{k}.wav", (0.1 * rng.standard_normal(sr // 2 + 800 * k)).astype(np.float32), sr)
        items.append((Utterance(str(k), str(tmp_path / f"{k}.wav"), 0.5 + 0.05 * k, "a"), [1, 2]))
    aug = {"noise_prob": 1.0, "noise_kinds": ["pink"], "snr_db": [5, 20], "speeds": [0.9, 1.1], "gain_db": [-6, 6]}
    ds = AudioDataset(items, sr, aug, seed=5)
    sampler = BucketBatchSampler(ds.durations(), 2.0, seed=5)
    kw = loader_kwargs({"num_workers": 1, "worker_nice": 0, "seed": 5}, torch.device("cpu"))
    assert kw["persistent_workers"]
    loader = torch.utils.data.DataLoader(ds, batch_sampler=sampler, **kw)
    got = {}
    for epoch in (0, 1, 2):
        sampler.set_epoch(epoch)
        got[epoch] = [b["waveforms"] for b in loader]
        batches = list(sampler)
        assert all(isinstance(b, EpochBatch) and b.epoch == epoch for b in batches)
        ref = AudioDataset(items, sr, aug, seed=5)
        ref.epoch = epoch
        want = [collate(ref.__getitems__(list(b)))["waveforms"] for b in batches]
        assert len(got[epoch]) == len(want) >= 2
        assert all(torch.equal(g, w) for g, w in zip(got[epoch], want))
    # and the epoch matters: the same batch made for another epoch is different audio
    b = list(sampler)[0]
    other = AudioDataset(items, sr, aug, seed=5)
    other.epoch = 1
    assert not torch.equal(collate(other.__getitems__(list(b)))["waveforms"], got[2][0])


def test_batch_shares_one_speed_factor_and_pause(tmp_path):
    """Speed perturbation is drawn per batch in __getitems__ (lengths in a batch keep their
    ratios, so the length buckets stay tight), per utterance when fetched one by one; over
    batches every factor occurs. Joined pairs in one batch share the pause length."""
    import soundfile as sf

    from ctcasr.data import AudioDataset, Utterance

    sr = 16000
    lens = [8000 + 400 * k for k in range(8)]
    items = []
    for k, n in enumerate(lens):
        sf.write(tmp_path / f"{k}.wav", (0.1 * np.sin(np.arange(n) * 0.05)).astype(np.float32), sr)
        items.append((Utterance(str(k), str(tmp_path / f"{k}.wav"), n / sr, "a"), [1]))
    ds = AudioDataset(items, sr, {"speeds": [0.8, 1.0, 1.25]}, seed=3)
    factors = set()
    for epoch in range(12):
        ds.epoch = epoch
        out = ds.__getitems__(list(range(8)))
        f = {round(lens[k] / len(x), 3) for k, (x, _, _) in enumerate(out)}
        assert len(f) == 1, f                      # one factor for the whole batch
        factors |= f
    assert factors == {0.8, 1.0, 1.25}
    singles = set()
    for epoch in range(4):
        ds.epoch = epoch
        singles |= {round(lens[k] / len(ds[k][0]), 3) for k in range(8)}
    assert len(singles) > 1                        # one by one: drawn per utterance

    ds = AudioDataset(items, sr, {"concat_prob": 1.0, "concat_pause_s": [0.1, 0.9]}, seed=3, join_ids=[0])
    pauses = set()
    for epoch in range(3):
        ds.epoch = epoch
        out = ds.__getitems__(list(range(8)))
        assert len(out) == 4
        gap = {len(x) - lens[2 * j] - lens[2 * j + 1] for j, (x, _, _) in enumerate(out)}
        assert len(gap) == 1 and 0.1 * sr <= gap.pop() <= 0.9 * sr
        pauses.add(len(out[0][0]))
    assert len(pauses) > 1


def test_num_workers_auto(monkeypatch, tmp_path):
    """train.num_workers: auto is one worker on CPU and, on CUDA, one per spare core (at most
    8), the cores shared among torchrun's processes on the machine; counts pass through."""
    import torch

    from ctcasr.errors import ConfigError
    from ctcasr.train import _num_workers, load_train_config, loader_kwargs

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(16)))
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert _num_workers("auto", cpu) == 1
    assert _num_workers("auto", cuda) == 8
    assert _num_workers(3, cuda) == 3 and _num_workers(0, cpu) == 0
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert _num_workers("auto", cuda) == 3
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1})
    assert _num_workers("auto", cuda) == 1
    assert loader_kwargs({"num_workers": "auto", "worker_nice": 0, "seed": 1}, cpu)["num_workers"] == 1
    p = tmp_path / "c.yaml"
    for bad in ("-1", "many", "1.5", "true"):
        p.write_text(f"train: {{num_workers: {bad}}}\n")
        with pytest.raises(ConfigError, match="num_workers"):
            load_train_config(p)
    p.write_text("train: {num_workers: auto}\n")
    assert load_train_config(p)[1]["num_workers"] == "auto"


def test_cmvn_statistics_say_what_they_skipped_and_read_segments_only(tmp_path, caplog):
    """prepare dropped unreadable files from the statistics without a word, and took whole
    recordings for segments."""
    import logging

    import torch

    from ctcasr.data import read_manifest
    from ctcasr.model import CTCModel
    from ctcasr.train import compute_cmvn

    sr = 16000
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(sr) / sr)).astype(np.float32)
    sf.write(tmp_path / "rec.wav", np.concatenate([tone, np.zeros(4 * sr, np.float32)]), sr)
    (tmp_path / "empty.wav").write_bytes(b"")
    lines = [{"audio_filepath": "rec.wav", "duration": 1.0, "offset": 0.0, "text": "a"},
             {"audio_filepath": "empty.wav", "duration": 1.0, "text": "a"}]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    model = CTCModel({"encoder": {"kind": "dnn", "hidden": 8, "layers": 1}}, 2)
    with caplog.at_level(logging.WARNING, logger="ctcasr"):
        st = compute_cmvn(model, read_manifest(tmp_path / "m.jsonl"))
    assert "1 unreadable utterance(s) skipped" in caplog.text and "empty.wav" in caplog.text
    assert st["utterances"] == 1
    assert st["frames"] == model.frontend.num_frames(torch.tensor([sr])).item()  # 1 s, not 5 s


def _sine_items(tmp_path, n: int, sr: int) -> list:
    """``n`` dataset items (Utterance, ids [2, 3]): sine wavs of 0.5 s + k * 100 samples."""
    from ctcasr.data import Utterance

    items = []
    for k in range(n):
        x = (0.3 * np.sin(np.arange(8000 + 100 * k) * 0.07)).astype(np.float32)
        sf.write(tmp_path / f"{k}.wav", x, sr)
        items.append((Utterance(f"u{k}", str(tmp_path / f"{k}.wav"), len(x) / sr, "x"), [2, 3]))
    return items


def test_nonspeech_items_have_empty_transcripts_and_leave_other_draws_alone(tmp_path):
    """augment.nonspeech_prob replaces that share of items by noise/hum/digital silence of
    the length speed perturbation would give, with no tokens; the items it does not replace
    are exactly what they would be without it (its own random stream); CTC takes the empty
    targets (the loss is then -log P(all blank))."""
    import torch

    from ctcasr.data import AudioDataset, nonspeech
    from ctcasr.train import ctc_loss

    sr = 16000
    items = _sine_items(tmp_path, 40, sr)
    base = {"noise_prob": 0.5, "noise_kinds": ["white", "speech"], "gain_db": [-3, 3]}
    plain = AudioDataset(items, sr, base, seed=5)
    zero = AudioDataset(items, sr, {**base, "nonspeech_prob": 0.0}, seed=5)
    some = AudioDataset(items, sr, {**base, "nonspeech_prob": 0.3, "nonspeech_dbfs": [-60, -20]}, seed=5)
    replaced = 0
    for i in range(len(items)):
        a, z, s = plain._item(i, 0.9), zero._item(i, 0.9), some._item(i, 0.9)
        assert np.array_equal(a[0], z[0]) and a[1] == z[1] == [2, 3]
        if s[1]:
            assert np.array_equal(a[0], s[0]) and s[2] == f"u{i}"
            continue
        replaced += 1
        assert s[2] == f"u{i}:nonspeech" and len(s[0]) == len(a[0]) and s[0].dtype == np.float32
        rms_db = 20 * np.log10(np.sqrt(np.mean(np.square(s[0], dtype=np.float64))) + 1e-12)
        assert -70 < rms_db <= -19.9  # a digital-silence stretch lowers the RMS of the whole
        # nothing of the utterance's own signal is left in it
        assert abs(np.corrcoef(s[0], a[0])[0, 1]) < 0.2
    assert 5 <= replaced <= 20
    # "speech" (babble of real utterances, which holds words) is never non-speech
    rng = np.random.default_rng(0)
    for _ in range(20):
        y = nonspeech(4000, sr, rng, {"noise_kinds": ["speech"]})
        assert len(y) == 4000 and np.isfinite(y).all() and np.abs(y).max() <= 1.0
    lp = torch.log_softmax(torch.randn(1, 6, 4), -1)
    loss = ctc_loss(lp, torch.tensor([6]), torch.zeros(0, dtype=torch.long), torch.tensor([0]))
    assert torch.isclose(loss, -lp[0, :, 0].sum())


def test_prepare_takes_tokens_only_from_transcripts_training_keeps(tmp_path, caplog):
    """'z' occurs only in a transcript far longer than its audio allows, which training
    skips: tokens.txt must not give the model an output it can never learn."""
    import logging

    from ctcasr.train import prepare

    sr = 16000
    lines = []
    for k, (secs, text) in enumerate([(1.0, "ab ab"), (1.2, "ba"), (0.2, "zaz " * 20)]):
        x = (0.2 * np.sin(np.arange(int(secs * sr)) * 0.05 * (k + 1))).astype(np.float32)
        sf.write(tmp_path / f"{k}.wav", x, sr)
        lines.append(json.dumps({"audio_filepath": f"{k}.wav", "duration": secs, "text": text}))
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    conf = tmp_path / "c.yaml"
    conf.write_text("model: {encoder: {hidden: 8, layers: 1}}\ntrain: {augment: {speeds: [0.9, 1.1]}}\n")
    with caplog.at_level(logging.INFO, logger="ctcasr"):
        info = prepare(conf, tmp_path / "m.jsonl", tmp_path / "out")
    tokens = (tmp_path / "out" / "tokens.txt").read_text().split("\n")
    assert "z" not in tokens and {"a", "b"} <= set(tokens) and info["tokens"] == 4  # φ, space, a, b
    assert "transcript longer than the audio allows" in caplog.text and "'z'" in caplog.text


def test_pad_quiet_batches_get_one_pair_of_edge_lengths_and_leave_other_draws_alone(tmp_path):
    """augment.pad_prob: that share of batches gets pad_s seconds of digital silence or
    -90...-50 dBFS noise before and after every item (one pair of lengths per batch, so no
    item is padded to another's length); the rest of the batches, and every other draw,
    are what they would be without it (its own random stream)."""
    from ctcasr.data import AudioDataset, pad_quiet

    sr = 16000
    items = _sine_items(tmp_path, 24, sr)
    base = {"speeds": [0.9, 1.0, 1.1], "gain_db": [-3, 3]}
    plain = AudioDataset(items, sr, base, seed=5)
    padded = AudioDataset(items, sr, {**base, "pad_prob": 0.5, "pad_s": [0.2, 1.0]}, seed=5)
    n_padded = 0
    for b in range(12):
        idx = [2 * b, 2 * b + 1]
        a, p = plain.__getitems__(idx), padded.__getitems__(idx)
        extra = [len(q[0]) - len(r[0]) for q, r in zip(p, a)]
        assert [q[1] for q in p] == [r[1] for r in a] == [[2, 3], [2, 3]]
        if extra == [0, 0]:
            assert all(np.array_equal(q[0], r[0]) for q, r in zip(p, a))
            continue
        n_padded += 1
        # (speed perturbation comes after the pads: its resampling rounds each length)
        assert abs(extra[0] - extra[1]) <= 2 and 2 * 0.2 * sr / 1.1 - 2 <= extra[0] <= 2 * 1.0 * sr / 0.9 + 2
    assert 2 <= n_padded <= 10
    # the signal sits between the two pads, which are quiet
    rng = np.random.default_rng(1)
    x = (0.3 * np.sin(np.arange(8000) * 0.07)).astype(np.float32)
    for _ in range(10):
        y = pad_quiet(x, (0.5, 0.25), sr, rng)
        assert len(y) == 8000 + 8000 + 4000 and y.dtype == np.float32
        assert np.array_equal(y[8000:16000], x)
        for edge in (y[:8000], y[16000:]):
            assert np.sqrt(np.mean(np.square(edge, dtype=np.float64))) < 10 ** (-49 / 20)
