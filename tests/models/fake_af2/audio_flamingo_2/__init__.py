"""A stand-in for NVIDIA's Audio Flamingo 2 inference package, with the same entry point and the
same Flamingo ``generate``/``forward`` contract, around a tiny random Qwen2 language model.

The real package is on no registry; this lets the adapter's plumbing (windows, prompt, weights,
candidates, scores) be tested. It records what it was called with.
"""
