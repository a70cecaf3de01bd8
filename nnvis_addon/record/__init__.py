"""Recording a Keras training run for nnvis (needs TensorFlow/Keras; never used inside Blender).
A PyTorch loop records with ``nnvis_addon.record.torch.Recorder`` (imported explicitly; needs torch).

``Recorder`` (a ``keras.callbacks.Callback``) and ``record_checkpoints`` are loaded on first access,
so importing this package does not import Keras or TensorFlow: it must also import where they don't
exist (Blender), and `import nnvis_addon` must stay fast.
"""

__all__ = ["Recorder", "record_checkpoints"]


def __getattr__(name):
    if name == "Recorder":
        from .recorder import Recorder
        return Recorder
    if name == "record_checkpoints":
        from .from_checkpoints import record_checkpoints
        return record_checkpoints
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
