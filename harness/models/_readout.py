"""The readout strategy's scoring: every label's summed token log-probabilities in one forward.

All labels' tokens follow the prompt in one sequence; a block mask lets each label see the prompt
and its own earlier tokens only, so no label sees another and the prompt's cache is neither
repeated nor recomputed.
"""

from __future__ import annotations

from collections.abc import Sequence


class LabelTree:
    """Every label's tokens laid out as one sequence after the prompt, with the block mask.

    Query ``q`` feeds token ``inputs[q]`` of label ``owner[q]`` at offset ``offsets[q]`` and is
    scored on ``targets[q]``; each label's first token is scored from the prompt's last logits.
    """

    def __init__(self, label_ids: Sequence[Sequence[int]], device) -> None:
        import torch

        inputs: list[int] = []
        targets: list[int] = []
        owner: list[int] = []
        offsets: list[int] = []
        for k, ids in enumerate(label_ids):
            inputs += ids[:-1]
            targets += ids[1:]
            owner += [k] * (len(ids) - 1)
            offsets += range(len(ids) - 1)
        self.size = len(inputs)
        self.depth = max((len(ids) for ids in label_ids), default=0)  # positions past the prompt
        owners = torch.tensor(owner, dtype=torch.long)
        offs = torch.tensor(offsets, dtype=torch.long)
        same = owners[:, None] == owners[None, :]
        self.mask = (same & (offs[None, :] <= offs[:, None])).to(device)[None]  # (1, M, M)
        self.first = torch.tensor([ids[0] for ids in label_ids], device=device)
        self.inputs = torch.tensor(inputs, dtype=torch.long, device=device)
        self.targets = torch.tensor(targets, dtype=torch.long, device=device)
        self.owner, self.offsets = owners.to(device), offs.to(device)

    @classmethod
    def of(cls, tokenizer, labels: Sequence[str], end_of_turn: str, device) -> LabelTree:
        """The labels' tokens, each closed by ``end_of_turn``."""
        end = tokenizer.convert_tokens_to_ids(end_of_turn)
        return cls([tokenizer(label, add_special_tokens=False)["input_ids"] + [end]
                    for label in labels], device)


def score_labels(backend, state, tree: LabelTree):
    """Σ log p(label tokens | prompt), (clips, labels) float64 on the device (reading it waits
    for the forward), from a prefilled ``state`` of ``backend`` (a
    :class:`~harness.models.hf_qwen2_audio.Qwen2AudioBackend`) in one extra forward."""
    torch = backend._torch
    clips = state.logits.shape[0]
    total = torch.log_softmax(state.logits.float(), -1)[:, tree.first]  # (clips, k)
    if tree.size:
        prompt = state.attention_mask.bool()[:, None, None, :].expand(-1, 1, tree.size, -1)
        allowed = torch.cat([prompt, tree.mask.expand(clips, 1, -1, -1)], dim=-1)
        mask = torch.where(allowed, 0.0, torch.finfo(backend.dtype).min).to(backend.dtype)
        positions = state.next_position[:, None] + tree.offsets[None]
        tokens = tree.inputs[None].expand(clips, -1)
        logp = torch.log_softmax(backend.extend(tokens, mask, positions, state.cache).float(), -1)
        picked = logp.gather(2, tree.targets[None, :, None].expand(clips, -1, 1))[..., 0]
        total = total.index_add(1, tree.owner, picked)
    return total.double()


def label_logprobs(backend, requests, labels: Sequence[str]):
    """Each request's :class:`~harness.models.LabelScores` from ``backend`` (a
    :class:`~harness.models.fast_audio_lm.FastAudioLM`): its batches prefilled with room for the
    label tree, scored in one forward each, clips over the audio window handled as its options
    say."""
    from harness.models._batch_sizes import run_batched
    from harness.models._context import run_what_fits
    from harness.models._hf_common import unscored_row
    from harness.models.api import LabelScores

    tree = backend.label_tree(labels)
    unscored = unscored_row(len(labels))

    def run(chunk):
        state = backend.prefill([r.audio for r in chunk], [r.prompt for r in chunk],
                                reserve=tree.size, keys=[r.audio_hash for r in chunk])
        scores = backend.score_label_tree(state, tree)
        # read once the next batch is queued
        return lambda: [LabelScores(row) for row in scores.cpu().numpy()]

    return run_what_fits(
        backend, requests, tree.depth,
        lambda fit: run_batched(backend, fit, run, 1, tree.size, unscored),
        unscored)
