"""Model backends behind one protocol, loaded lazily by name."""

from harness.models.api import (
    Candidate,
    Capabilities,
    Decoding,
    DecodingUnsupported,
    Generation,
    KeyRejected,
    LabelScores,
    ModelAPI,
    ModelFailed,
    ModelInfo,
    ModelNotLoaded,
    ModelUnavailable,
    Request,
)
from harness.models.registry import (
    describe_model,
    get_model,
    model_entry,
    model_kind,
    model_names,
    register,
    register_checkpoint,
)

__all__ = [
    "Candidate",
    "Capabilities",
    "Decoding",
    "Generation",
    "DecodingUnsupported",
    "KeyRejected",
    "LabelScores",
    "ModelAPI",
    "ModelFailed",
    "ModelInfo",
    "ModelNotLoaded",
    "ModelUnavailable",
    "Request",
    "describe_model",
    "get_model",
    "model_entry",
    "model_kind",
    "model_names",
    "register",
    "register_checkpoint",
]
