"""File > Import > CNN Checkpoint: `load_run` + `build_scene`, with progress, report and undo."""
import time
from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from ..nnvis_addon import NNVisError, load_run
from ..nnvis_addon.io.recording import probe_count
from ..nnvis_addon.options import GROUPS, IMPORT_OPTIONS, choice_label, split
from ..nnvis_addon.scene import SceneOptions, build_scene
from ..nnvis_addon.scene.camera_moves import MOVES
from ..nnvis_addon.scene.looks import LOOKS
from ..nnvis_addon.scene.run_record import RunRecord
from .controls import select_first_layer


class NNVIS_OT_import_checkpoint(bpy.types.Operator, ImportHelper):
    """Import a Keras/TensorFlow CNN checkpoint, epoch folder or recording as an animated scene"""

    bl_idname = "import_scene.nnvis_checkpoint"
    bl_label = "Import CNN Checkpoint"
    bl_options = {"REGISTER", "UNDO"}

    filter_glob: StringProperty(default="*.keras;*.h5;*.index;*.json;*.onnx", options={"HIDDEN"})
    # a recording is picked by its manifest.json (or its folder); the options: see below the class

    def draw(self, context):
        """The options in panels (Input, Look, Edges, Animation, Render), folded but Input."""
        for group in GROUPS:
            header, body = self.layout.panel(f"nnvis_import_{group}",
                                             default_closed=group != "Input")
            header.label(text=group)
            if body is not None:
                for option in IMPORT_OPTIONS:
                    if option.group != group:
                        continue
                    if option.special:          # Auto / All / ... or a number
                        body.prop(self, choice_name(option))
                        if getattr(self, choice_name(option)) == NUMBER:
                            body.prop(self, option.name)
                        continue
                    body.prop(self, option.name)
                    if option.name == "probe_index":
                        count = probe_count(bpy.path.abspath(getattr(self, "filepath", "")))
                        if count is not None:
                            body.label(text=f"This recording holds probes 0–{count - 1}",
                                       icon="ERROR" if self.probe_index >= count else "INFO")

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
            load, scene_options = split({o.name: option_value(self, o) for o in IMPORT_OPTIONS})
            if load["probe"]:
                load["probe"] = ";".join(bpy.path.abspath(part.strip())   # one per input
                                         for part in load["probe"].split(";"))
            run = load_run(path, progress=progress(lambda f: 0.4 * f), **load)
            collection = build_scene(run, SceneOptions(**scene_options), context.scene,
                                     progress=progress(lambda f: 0.4 + 0.6 * f))
        except NNVisError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        finally:
            wm.progress_end()
        for warning in run.warnings:
            self.report({"WARNING"}, warning)
        record = RunRecord(collection)
        drawn, total = record.edges_drawn, record.edges_total
        if drawn < total:
            self.report({"INFO"}, f"Edges: the strongest {drawn:,} of {total:,} drawn "
                                  "(level of detail: max_edges per connection)")
        select_first_layer(context, collection)         # the sidebar shows the new run
        if not run.metrics and self.show_curves:
            self.report({"INFO"}, "Training Curves: a checkpoint has no loss/accuracy history "
                                  "(a recording has; see nnvis_addon.record.Recorder)")
        self.report({"INFO"}, f"Imported {collection.name}: {len(run.layers)} layers, "
                              f"{len(run.epochs)} epoch{'s' * (len(run.epochs) != 1)} in "
                              f"{time.perf_counter() - start:.1f} s")
        return {"FINISHED"}


CHOICE_TEXT = {"look": {k: v.description for k, v in LOOKS.items()}, "camera_move": MOVES}


NUMBER = "number"


def choice_name(option) -> str:
    """The dialog property that picks one of `option`'s special values or a number."""
    return f"{option.name}_choice"


def option_value(operator, option):
    """`option`'s value as the dialog holds it (a special value's, where one is picked; a
    script that passes the number alone means the number)."""
    props = operator.properties
    if option.special and (props.is_property_set(choice_name(option))
                           or not props.is_property_set(option.name)):
        picked = getattr(operator, choice_name(option))
        for value, key, _, _ in option.special:
            if key == picked:
                return value
    return getattr(operator, option.name)


def choice_property(option):
    """The enum of `option`'s special values (Auto, All, ...) and Number."""
    items = [(key, label, text) for _, key, label, text in option.special]
    default = next((key for value, key, _, _ in option.special if value == option.default), NUMBER)
    return EnumProperty(name=option.label, description=option.description, default=default,
                        items=items + [(NUMBER, "Number", f"{option.label}: the number below")])


def dialog_property(option):
    """The bpy property of an `options.Option`: its name, default, bounds and tooltip (a
    number with special values: the field beside the choice, starting at its lower bound; a
    script may still pass a special value as the number, `inputs_per_cell=0`)."""
    default = option.min if option.special else option.default
    common = {"name": option.label, "description": option.description, "default": default}
    bounds = {k: v for k, v in (("min", option.min), ("max", option.max)) if v is not None}
    if option.special:
        bounds = {**bounds, "soft_min": option.min,
                  "min": min(value for value, *_ in option.special)}
    if option.choices:
        text = CHOICE_TEXT.get(option.name, {})
        return EnumProperty(items=[(k, choice_label(k), text.get(k, option.description))
                                   for k in option.choices], **common)
    if isinstance(option.default, bool):
        return BoolProperty(**common)
    if isinstance(option.default, int):
        return IntProperty(**common, **bounds)
    if isinstance(option.default, float):
        return FloatProperty(**common, **bounds)
    return StringProperty(**common, subtype="FILE_PATH" if option.path else "NONE")


for _option in IMPORT_OPTIONS:
    NNVIS_OT_import_checkpoint.__annotations__[_option.name] = dialog_property(_option)
    if _option.special:
        NNVIS_OT_import_checkpoint.__annotations__[choice_name(_option)] = choice_property(_option)
