"""The benchmark grid: edit this to change what ``pytest evals`` runs (see harness.runner.grid)."""

from harness.runner import GridConfig, Thresholds

GRID = GridConfig(
    models=(
        # the embedded default and the chance baselines: always runnable
        "tiny-qwen2-audio", "uniform", "label-prior",
        # how well one person predicts the other raters (a reference, not a model)
        "annotator",
        # local ALMs: weights from a local path or the HF cache (cells skip saying what to set)
        "qwen2-audio-7b", "qwen2.5-omni-7b", "audio-flamingo-2", "ultravox-v0.3", "ultravox-v0.4",
        # API ALMs: keys from the environment
        "gpt-4o", "gemini-2.0-flash", "gemini-2.5-pro",
    ),
    datasets=("iemocap", "msp_podcast", "crema_d"),
    strategies=("base", "cot", "bon", "w-bon", "alm-v", "w-alm-v", "readout", "sample-n"),
    verifier="gpt-4o",
    verifiers={"tiny-qwen2-audio": "tiny-qwen2-audio"},  # the embedded default verifies itself
    thresholds={
        "tiny-qwen2-audio": Thresholds(valid_min=0.9),
        "uniform": Thresholds(valid_min=1.0),
        "label-prior": Thresholds(valid_min=1.0),
        "*": Thresholds(valid_min=0.5),
    },
)
