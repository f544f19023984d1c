"""An audio encoder run over a batch's real frames, not its 30 s window: a Whisper-style tower
(Qwen2-Audio's, Audio Flamingo 3's) run here, or a model's own encoder that reads them already."""

from __future__ import annotations

from harness.models._hf_common import to_device


def encode_audio(tower, projector, layers, features, frames, device, dtype):
    """The encoder (``tower``, its ``layers``: the tower's own or compiled ones) and the
    projector over the longest clip's frames only; returns (B, T, H) and the valid lengths.

    A few padding frames are kept past the longest clip so that the convolutions see at the
    clip's edge exactly what they see in the 30 s padded path (padded frames are masked there
    too, so the outputs agree). ``frames`` (real frames per clip) is read on the host, so nothing
    here waits for the device.
    """
    import torch

    frames = frames.cpu()
    conv_lens, out_lens = tower._get_feat_extract_output_lengths(frames)
    width = min(features.shape[-1], int(frames.max()) + 8)
    x = features[:, :, : width + width % 2].to(device, dtype)
    h = torch.nn.functional.gelu(tower.conv1(x))
    h = torch.nn.functional.gelu(tower.conv2(h)).permute(0, 2, 1)
    h = encoder_layers(layers, h + tower.embed_positions.weight[: h.shape[1]], conv_lens, device,
                       dtype)
    h = tower.avg_pooler(h.permute(0, 2, 1)).permute(0, 2, 1)
    return projector(tower.layer_norm(h)), out_lens


def encoder_layers(layers, h, lengths, device, dtype):
    """``h`` (B, T, H) through the encoder's ``layers``, each row's frames past its ``lengths``
    (a CPU tensor) masked from attention."""
    import torch

    mask = None
    if bool((lengths < h.shape[1]).any()):
        valid = torch.arange(h.shape[1])[None] < lengths[:, None]
        mask = (to_device(~valid, device).to(dtype) * torch.finfo(dtype).min)[:, None, None, :]
    for layer in layers:
        out = layer(h, mask)
        h = out[0] if isinstance(out, tuple) else out
    return h


def encode_with_own_encoder(model, features, frames, device, dtype):
    """The model's own ``get_audio_features`` over each clip's real frames (Qwen2.5-Omni's
    thinker: its windowed encoder takes the frames of every clip concatenated), laid out as
    :func:`encode_audio` returns them: (B, T, H), zero past each clip's tokens, and the lengths."""
    import torch

    frames = frames.cpu()
    _, out_lens = model.audio_tower._get_feat_extract_output_lengths(frames)
    valid = torch.arange(features.shape[-1])[None] < frames[:, None]
    flat = model.get_audio_features(features.to(device, dtype),
                                    feature_attention_mask=to_device(valid, device).long())
    tokens = flat.last_hidden_state if hasattr(flat, "last_hidden_state") else flat
    rows = torch.nn.utils.rnn.pad_sequence(list(tokens.split(out_lens.tolist())), batch_first=True)
    return rows, out_lens
