"""The one exception type the library raises for bad input.

Every reader and builder turns what it cannot use into an NNVisError whose message names the file or
layer and the problem, so operators can report it and CLI users see one clear line, not a traceback.
"""


class NNVisError(Exception):
    """Bad or unsupported input: a message a user can act on (names the file/layer and the problem)."""


# What a file of a subclassed keras.Model (no layer graph in it) should be replaced by: the Keras
# Recorder watches the model run (nnvis_addon/record/subclassed.py). One text for every reader.
RECORD_SUBCLASSED = ("a subclassed model's file holds no layer graph; record its training "
                     "instead: model.fit(..., callbacks=[nnvis_addon.record.Recorder(folder, "
                     "probes)]) writes a recording folder that nnvis imports (per-epoch weights "
                     "saved already: nnvis_addon.record.record_checkpoints; user guide: "
                     "Subclassed models)")
