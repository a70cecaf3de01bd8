"""Refresh Run and Follow Training: thin wrappers over `nnvis_addon.scene.refresh`.

Follow Training is a `bpy.app.timers` function, not saved state: it runs while registered and
stops when the user turns it off, when another file is loaded (`load_pre`) or when the add-on is
disabled.
"""
import bpy
from bpy.props import StringProperty

from ..nnvis_addon.scene import refresh

INTERVAL = 3.0          # seconds between two refreshes while following


def following() -> bool:
    return bpy.app.timers.is_registered(_tick)


def _tick():
    """The timer: one refresh of every run (an undo step when epochs arrived), then wait."""
    try:
        reports = refresh.follow_step(bpy.context.scene)
    except Exception as exc:        # noqa: BLE001 - a timer that raises is dropped silently
        print(f"NNVis Follow Training stopped: {exc}")
        return None
    if any(r.added for r in reports):
        print("NNVis Follow Training:", "; ".join(str(r) for r in reports if r.added))
        if bpy.ops.ed.undo_push.poll():
            bpy.ops.ed.undo_push(message="NNVis: follow training")
    return INTERVAL


@bpy.app.handlers.persistent          # stays in load_pre across file loads
def stop(*_args) -> None:
    if following():
        bpy.app.timers.unregister(_tick)


class NNVIS_OT_refresh_run(bpy.types.Operator):
    """Take in the epochs a run's recording or checkpoint folder gained since the import"""

    bl_idname = "nnvis.refresh_run"
    bl_label = "Refresh Run"
    bl_options = {"REGISTER", "UNDO"}

    collection: StringProperty(name="Run", description="The run's collection; empty: every run")

    def execute(self, context):
        scene = context.scene
        if self.collection:
            found = bpy.data.collections.get(self.collection)
            if found is None or "nnvis_run" not in found:
                self.report({"ERROR"}, f"no imported run called {self.collection!r}")
                return {"CANCELLED"}
            reports = [refresh.refresh_run(found, scene)]
        else:
            reports = refresh.refresh_all(scene)
        for report in reports:
            self.report({"INFO"} if not report.notes else {"WARNING"}, str(report))
        return {"FINISHED"} if any(r.added for r in reports) else {"CANCELLED"}


class NNVIS_OT_follow_training(bpy.types.Operator):
    """Refresh every run every few seconds and keep the playhead on the newest epoch (toggle)"""

    bl_idname = "nnvis.follow_training"
    bl_label = "Follow Training"

    def execute(self, context):
        if following():
            stop()
            self.report({"INFO"}, "Follow Training: off")
            return {"FINISHED"}
        bpy.app.timers.register(_tick, first_interval=0.0)
        self.report({"INFO"}, f"Follow Training: refreshing every {INTERVAL:g} s")
        return {"FINISHED"}


CLASSES = (NNVIS_OT_refresh_run, NNVIS_OT_follow_training)


def register():
    if stop not in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.append(stop)


def unregister():
    stop()
    if stop in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(stop)
