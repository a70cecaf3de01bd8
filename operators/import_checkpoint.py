"""File > Import > CNN Checkpoint: `load_run` + `build_scene`, with progress, report and undo."""
import time
from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from ..nnvis_addon import NNVisError, load_run
from ..nnvis_addon.scene import SceneOptions, build_scene
from ..nnvis_addon.scene.camera_moves import MOVES
from ..nnvis_addon.scene.labels import MODES as LABEL_MODES
from ..nnvis_addon.scene.overlays import KINDS as OVERLAY_KINDS
from ..nnvis_addon.scene.looks import LOOKS


class NNVIS_OT_import_checkpoint(bpy.types.Operator, ImportHelper):
    """Import a Keras/TensorFlow CNN checkpoint (or a folder of epoch checkpoints) as an animated
    scene: feature maps, edges and one keyframe per epoch"""

    bl_idname = "import_scene.nnvis_checkpoint"
    bl_label = "Import CNN Checkpoint"
    bl_options = {"REGISTER", "UNDO"}

    filter_glob: StringProperty(default="*.keras;*.h5;*.index;*.json;*.onnx", options={"HIDDEN"})
    # a recording is picked by its manifest.json (or its folder)
    all_epochs: BoolProperty(
        name="All Epochs in Folder", default=True,
        description="Import every epoch checkpoint in the chosen file's folder, not just the file")
    probe: StringProperty(
        name="Probe Image", subtype="FILE_PATH",
        description="Image (PNG/JPEG) or .npy fed through the network; empty: probe.npy/png next "
                    "to the checkpoints, else mid-grey")
    probe_index: IntProperty(
        name="Recorded Probe", default=0, min=0,
        description="Which of a recording's probes the scene shows (when no probe image is given)")
    show_title: BoolProperty(name="Title", default=True,
                             description="Model name, layer and parameter counts (top left)")
    show_counter: BoolProperty(name="Epoch Counter", default=True,
                               description="The shown epoch with its loss and accuracy")
    show_curves: BoolProperty(name="Training Curves", default=True,
                              description="Loss and accuracy, growing epoch by epoch (recordings)")
    show_probe: BoolProperty(name="Input Image", default=True,
                             description="The probe image the activations belong to")
    show_predictions: BoolProperty(name="Class Scores", default=True,
                                   description="One bar per class for the shown probe")
    look: EnumProperty(name="Look", items=[(k, v.label, v.description) for k, v in LOOKS.items()],
                       default="default")
    camera_move: EnumProperty(name="Camera", items=[(k, k.replace("_", " ").title(), v)
                                                    for k, v in MOVES.items()], default="static",
                              description="How the camera moves over the training")
    orthographic: BoolProperty(name="Orthographic", default=False,
                               description="No perspective: parallel lines stay parallel (figures)")
    labels: EnumProperty(name="Labels", items=[(k, k.title(), v) for k, v in LABEL_MODES.items()],
                         default="auto", description="Layer names and output shapes in the scene")
    show_legend: BoolProperty(name="Colour Legend", default=True,
                              description="A colour bar with the first layer's value range")
    frames_per_epoch: IntProperty(
        name="Frames per Epoch", default=0, min=0, max=1000,
        description="0: the whole training in 12 seconds, with a hold at each end")
    bundle_strength: FloatProperty(name="Bundle Strength", default=0.8, min=0.0, max=1.0,
                                   description="0 = straight edges, 1 = fully bundled")
    bundler: EnumProperty(name="Bundling", default="structural", items=[
        ("structural", "Structural", "Edges routed through shared points of clustered cells (fast)"),
        ("density", "Density", "KDE bundling: edges drawn together where many run (organic)")])
    setup_render: BoolProperty(
        name="Set Up Scene", default=True,
        description="Make the new camera active and set world, frame range and render settings "
                    "(Cycles CPU, MP4)")

    def execute(self, context):
        path = Path(bpy.path.abspath(self.filepath))
        if self.all_epochs and path.is_file():
            path = path.parent
        wm = context.window_manager
        wm.progress_begin(0, 100)
        start = time.perf_counter()

        def progress(share):
            return lambda fraction, message: wm.progress_update(int(100 * share(fraction)))

        try:
            run = load_run(path, probe=bpy.path.abspath(self.probe) if self.probe else None,
                           probe_index=self.probe_index, progress=progress(lambda f: 0.4 * f))
            shown = tuple(kind for kind in OVERLAY_KINDS if getattr(self, f"show_{kind}"))
            options = SceneOptions(frames_per_epoch=self.frames_per_epoch,
                                   bundle_strength=self.bundle_strength, bundler=self.bundler,
                                   overlays=shown,
                                   look=self.look, camera_move=self.camera_move,
                                   orthographic=self.orthographic, labels=self.labels,
                                   setup_render=self.setup_render)
            collection = build_scene(run, options, context.scene,
                                     progress=progress(lambda f: 0.4 + 0.6 * f))
        except NNVisError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        finally:
            wm.progress_end()
        for warning in run.warnings:
            self.report({"WARNING"}, warning)
        drawn, total = collection["nnvis_edges_drawn"], collection["nnvis_edges_total"]
        if drawn < total:
            self.report({"INFO"}, f"Edges: the strongest {drawn:,} of {total:,} drawn "
                                  "(level of detail: max_edges per connection)")
        self.report({"INFO"}, f"Imported {run.name}: {len(run.layers)} layers, "
                              f"{len(run.epochs)} epochs in {time.perf_counter() - start:.1f} s")
        return {"FINISHED"}


def menu_import(self, context):
    self.layout.operator(NNVIS_OT_import_checkpoint.bl_idname, text="CNN Checkpoint (.keras/.h5/ckpt/.onnx)")
