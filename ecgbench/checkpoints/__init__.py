"""Given checkpoints as upstreams: a registered model's weights plus a manifest (sha256, what they were trained
on, licence), registered like datasets (``--ecg-checkpoint FILE`` or an ``ecgbench.checkpoints`` entry point)."""
from ecgbench.checkpoints.manifest import UNKNOWN, CheckpointManifest, load_manifest
from ecgbench.checkpoints.registry import CHECKPOINTS, get_checkpoint, given_checkpoint, register_checkpoint_file
from ecgbench.checkpoints.weights import CheckpointError, Fit, check_fit, read_state_dict
from ecgbench.digests import file_sha256

__all__ = ["CHECKPOINTS", "UNKNOWN", "CheckpointError", "CheckpointManifest", "Fit", "check_fit", "file_sha256",
           "get_checkpoint", "given_checkpoint", "load_manifest", "read_state_dict", "register_checkpoint_file"]
