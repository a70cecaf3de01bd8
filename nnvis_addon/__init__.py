"""nnvis: turn a Keras/TensorFlow CNN's training into a 3D animation in Blender.

The library behind the Blender extension: `load_run` reads checkpoints into a `Run` (numpy only);
`nnvis_addon.scene.build_scene(run)` builds the animated scene (inside Blender / bpy).
"""
from .errors import NNVisError
from .run import Run, load_run

__version__ = "0.1.0"
__all__ = ["NNVisError", "Run", "load_run", "__version__"]
