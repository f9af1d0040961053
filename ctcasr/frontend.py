"""The acoustic front end as a torch Module, so it runs wherever the model runs.

waveform [B, N] --gain norm--> log-mel fbank [B, T, n_mels] --global CMVN--> SpecAugment
(training only) --stack k frames, keep every k-th--> [B, ceil(T/k), k*n_mels]

Why each step:
- Gain normalisation (utterance RMS to -20 dBFS over the valid samples): recordings differ
  by tens of dB in level; global CMVN cannot undo that per utterance, and TTS training data
  is all at one level, so without it a quiet microphone looks like a new domain.
- Log floor ``log(mel + 1e-4)`` after gain normalisation: digital silence (TTS, zero padding)
  and quiet room noise map to the same floor instead of -inf-like outliers.
- Global CMVN in buffers: the statistics travel inside model.pt, so an exported or reloaded
  model needs no side files.
- Frame stacking x3 with subsampling (EESEN/"lower frame rate"): 3x fewer LSTM steps, the
  main cost of the model, while 30 ms output frames still leave room for CTC's blanks in
  character-level English at normal speaking rates.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn


class FrontEnd(nn.Module):
    def __init__(
        self,
        sample_rate: int = 16000,
        n_mels: int = 80,
        win_ms: float = 25.0,
        hop_ms: float = 10.0,
        stack: int = 3,
        n_fft: int | None = None,
        specaug: dict | None = None,
        gain_norm: bool = True,
        vtlp: tuple | list | None = None,
        utterance_cmn: bool = False,
    ):
        super().__init__()
        import torchaudio

        # A config from anywhere can hold zeros here; say which key instead of failing deep
        # inside math.log2 or torchaudio ("math domain error").
        for key, value, low in (("sample_rate", sample_rate, 1000), ("n_mels", n_mels, 1), ("win_ms", win_ms, 1),
                                ("hop_ms", hop_ms, 1), ("stack", stack, 1)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= low:
                raise ValueError(f"frontend.{key} must be a number >= {low}, got {value!r}")
        if hop_ms > win_ms:
            raise ValueError(f"frontend.hop_ms ({hop_ms}) must not exceed win_ms ({win_ms})")
        self.sample_rate = int(sample_rate)
        self.n_mels = int(n_mels)
        self.win = int(round(sample_rate * win_ms / 1000))
        self.hop = int(round(sample_rate * hop_ms / 1000))
        self.stack = int(stack)
        self.gain_norm = bool(gain_norm)
        n_fft = n_fft or 2 ** math.ceil(math.log2(self.win))
        self.n_fft = int(n_fft)
        # center=False: frame i covers samples [i*hop, i*hop+n_fft) (the window sits centred in
        # that span), so frames of a padded batch inside an utterance never see its padding.
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=n_fft,
            win_length=self.win,
            hop_length=self.hop,
            n_mels=n_mels,
            center=False,
            power=2.0,
            f_min=20.0,
            f_max=sample_rate / 2,
            mel_scale="htk",
        )
        self.register_buffer("cmvn_mean", torch.zeros(n_mels))
        self.register_buffer("cmvn_istd", torch.ones(n_mels))
        sa = {"freq_masks": 2, "freq_width": 15, "time_masks_per_s": 0.5, "time_width": 10, "max_time_ratio": 0.15}
        unknown = set(specaug or {}) - set(sa)
        if unknown:
            from .errors import ConfigError

            raise ConfigError(f"frontend.specaug: unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sa)})")
        sa.update(specaug or {})
        self.specaug = sa
        self.vtlp = tuple(float(v) for v in vtlp) if vtlp else None
        self.utterance_cmn = bool(utterance_cmn)

    # -------------------------------------------------------------------------- lengths
    def num_frames(self, num_samples):
        """Fbank frames for ``num_samples`` (int or tensor); very short inputs get one frame."""
        if torch.is_tensor(num_samples):
            return torch.clamp((num_samples - self.n_fft) // self.hop + 1, min=1)
        return max(1, (int(num_samples) - self.n_fft) // self.hop + 1)

    def output_lengths(self, num_samples):
        """Encoder frames (after stacking) for ``num_samples``; int or tensor."""
        n = self.num_frames(num_samples)
        if torch.is_tensor(n):
            return (n + self.stack - 1) // self.stack
        return (n + self.stack - 1) // self.stack

    @property
    def first_frame_centre_s(self) -> float:
        """Centre (seconds) of the audio that output frame 0 reads: frame 0 stacks ``stack``
        fbank frames, fbank frame j covers samples [j*hop, j*hop + n_fft) (centre=False), so
        output frame t is centred at this + t * frame_shift_s (26 ms for 25 ms/10 ms/x3)."""
        return (self.n_fft / 2 + self.hop * (self.stack - 1) / 2) / self.sample_rate

    @property
    def frame_shift_s(self) -> float:
        """Seconds between consecutive output frames (what decoders' frame indices count)."""
        return self.hop * self.stack / self.sample_rate

    # -------------------------------------------------------------------------- features
    def fbank(self, waveforms: torch.Tensor, lengths: torch.Tensor):
        """Log-mel features before CMVN: ``([B, T, n_mels], frame_lengths [B])``."""
        x = waveforms.float()
        lengths = lengths.to(x.device)
        if x.shape[1] < self.n_fft:  # every input yields at least one frame
            x = nn.functional.pad(x, (0, self.n_fft - x.shape[1]))
        # Zero what lies past each length (a caller's padding need not be silence): per row
        # into a copy, ~3x cheaper on CPU than multiplying by a [B, N] bool mask (the
        # bool -> float conversion is an unvectorised loop); a Python loop over rows costs
        # microseconds. (Exported graphs have their own front end, in tensor ops.)
        if x.device.type == "cpu":
            pad = (lengths < x.shape[1]).nonzero().flatten().tolist()
            if pad:
                x = x.clone()
                for b, n in zip(pad, lengths[pad].tolist()):
                    x[b, max(int(n), 0):] = 0.0
        else:
            x = torch.where(torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None], x, 0.0)
        if self.gain_norm:
            power = (x * x).sum(1) / lengths.clamp(min=1)
            # Target RMS 0.1 (-20 dBFS); gain capped at +40 dB so near-silence stays quiet.
            gain = 0.1 / power.sqrt().clamp(min=1e-3)
            x = x * gain[:, None]
        with torch.autocast(device_type=x.device.type, enabled=False):
            spec = self._power_spectrogram(x)  # [B, n_freq, T]
            if self.training and self.vtlp:
                mel = self._warped_mel(spec)
            else:
                mel = self.mel.mel_scale(spec)  # [B, n_mels, T]
        feats = torch.log(mel + 1e-4).transpose(1, 2)
        frame_lengths = self.num_frames(lengths)
        if self.utterance_cmn:
            # Per-utterance cepstral mean normalisation: subtracting each utterance's mean
            # log-mel spectrum removes a fixed channel/voice colouring (microphone, telephone
            # line, a synthesizer's spectral tilt), which global CMVN cannot.
            valid = (torch.arange(feats.shape[1], device=feats.device)[None, :] < frame_lengths[:, None])[..., None]
            mean = (feats * valid).sum(1, keepdim=True) / frame_lengths.clamp(min=1)[:, None, None]
            feats = feats - mean
        return feats, frame_lengths

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor):
        feats, flen = self.fbank(waveforms, lengths)
        feats = (feats - self.cmvn_mean) * self.cmvn_istd
        T = feats.shape[1]
        valid = torch.arange(T, device=feats.device)[None, :] < flen[:, None]
        feats = feats * valid[..., None]
        if self.training:
            feats = self._spec_augment(feats, flen)
        return self._stack(feats, flen)

    def _power_spectrogram(self, x: torch.Tensor) -> torch.Tensor:
        """|STFT|^2 as torchaudio's Spectrogram(power=2) computes it, but squared as re^2 + im^2:
        its ``abs().pow(2)`` takes a complex square root per bin only to square it again, and
        cost 4.5 ms against 1.1 ms for a batch of 50 two-second utterances (the STFT: 12 ms)."""
        sp = self.mel.spectrogram
        spec = torch.stft(x, sp.n_fft, sp.hop_length, sp.win_length, sp.window, center=False,
                          normalized=False, onesided=True, return_complex=True)
        ri = torch.view_as_real(spec)
        re, im = ri[..., 0], ri[..., 1]
        return torch.addcmul(re.square(), im, im)

    def _warped_mel(self, spec):
        """Vocal tract length perturbation (Jaitly & Hinton 2013), training only: stretch each
        utterance's frequency axis by a random factor so formants move as they do between
        speakers (a factor of ~1.15 takes an adult male's formants towards a female's). TTS
        corpora have few real speakers; this is the cheapest way to hear more of them.

        The warp: output bin f reads input bin f / alpha by linear interpolation, bins above
        Nyquist are 0, i.e. warped[b] = A[b] @ spec[b] with A [F, F] two weights a row.
        Instead of warping the spectrogram [B, F, T], it is folded into each utterance's
        filterbank, mel = (A^T fb)^T @ spec, so the spectrogram is read once by one batched
        matmul. A^T fb is built by adding fb's rows, weighted, into the rows they read from
        (index_add_ of whole rows): 0.2 ms for a digits batch, where the dense
        [B, M, F] @ [B, F, F] product took 2.5 ms (the front end is the largest part of a
        training step after the LSTM; benchmarks/README.md)."""
        B, F, _ = spec.shape
        device, dtype = spec.device, spec.dtype
        lo, hi = self.vtlp
        alpha = torch.empty(B, 1, device=device).uniform_(lo, hi)
        src = torch.arange(F, device=device, dtype=dtype)[None, :] / alpha
        i0 = src.floor().long().clamp(max=F - 1)
        i1 = (i0 + 1).clamp(max=F - 1)
        w = (src - i0).clamp(0, 1)
        keep = (src < F - 1).to(dtype)
        fb = self.mel.mel_scale.fb.to(dtype)  # [F, M]
        M = fb.shape[1]
        rows = (torch.arange(B, device=device) * F)[:, None]
        warped_fb = torch.zeros(B * F, M, device=device, dtype=dtype)
        for idx, weight in ((i0, (1 - w) * keep), (i1, w * keep)):
            warped_fb.index_add_(0, (idx + rows).reshape(-1), (weight[..., None] * fb).reshape(B * F, M))
        return warped_fb.view(B, F, M).transpose(1, 2) @ spec  # [B, M, F] @ [B, F, T]

    def _stack(self, feats, flen):
        k = self.stack
        if k == 1:
            return feats, flen
        B, T, F = feats.shape
        pad = (-T) % k
        if pad:
            feats = nn.functional.pad(feats, (0, 0, 0, pad))
        feats = feats.reshape(B, (T + pad) // k, k * F)
        return feats, (flen + k - 1) // k

    def _spec_augment(self, feats, flen):
        """SpecAugment (Park et al. 2019) without time warping; masks set features to the
        CMVN mean (0). Time masks scale with utterance length so short digit strings are not
        wiped out while long sentences still get several masks."""
        sa = self.specaug
        B, T, F = feats.shape
        dev = feats.device
        g = torch.Generator(device="cpu")
        g.manual_seed(int(torch.randint(0, 2**31 - 1, (1,)).item()))
        # The masks are separable: bands [B, 1, F] times spans [B, T, 1], applied as two
        # broadcast float multiplies: 0.14 ms for a [50, 191, 80] batch with two bands and
        # two spans, against 2.2 ms through a [B, T, F] bool mask (its &= and bool -> float
        # conversion) on the 2-core AVX2 VM.
        fkeep = torch.ones(B, 1, F, dtype=torch.bool)
        tkeep = torch.ones(B, T, 1, dtype=torch.bool)
        f_idx = torch.arange(F)
        t_idx = torch.arange(T)
        for _ in range(int(sa["freq_masks"])):
            w = torch.randint(0, int(sa["freq_width"]) + 1, (B,), generator=g)
            f0 = (torch.rand(B, generator=g) * (F - w).clamp(min=1)).long()
            fkeep &= ~((f_idx[None] >= f0[:, None]) & (f_idx[None] < (f0 + w)[:, None]))[:, None, :]
        seconds = flen.float().cpu() * self.hop / self.sample_rate
        n_t = (seconds * float(sa["time_masks_per_s"])).round().long()
        max_w = torch.minimum(
            torch.full((B,), int(sa["time_width"])),
            (flen.cpu().float() * float(sa["max_time_ratio"]) / n_t.clamp(min=1)).long(),
        )
        for i in range(int(n_t.max().item()) if B else 0):
            active = i < n_t
            w = (torch.rand(B, generator=g) * (max_w + 1).float()).long() * active
            t0 = (torch.rand(B, generator=g) * (flen.cpu() - w).clamp(min=1).float()).long()
            tkeep &= ~((t_idx[None] >= t0[:, None]) & (t_idx[None] < (t0 + w)[:, None]))[:, :, None]
        return feats * fkeep.to(device=dev, dtype=feats.dtype) * tkeep.to(device=dev, dtype=feats.dtype)

    # -------------------------------------------------------------------------- CMVN
    @torch.no_grad()
    def set_cmvn(self, mean, std):
        mean = torch.as_tensor(mean, dtype=torch.float32)
        std = torch.as_tensor(std, dtype=torch.float32)
        self.cmvn_mean.copy_(mean)
        self.cmvn_istd.copy_(1.0 / std.clamp(min=1e-3))
