"""HTSAT's entry point, as NVIDIA's factory imports it (the fake Flamingo encodes no audio with it)."""

CREATED: list = []


def create_htsat_model(audio_cfg, enable_fusion=False, fusion_type="None"):
    CREATED.append(audio_cfg)
