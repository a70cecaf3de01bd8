"""Refresh Run and Follow Training: thin wrappers over `nnvis_addon.scene.refresh` and the Follow
Training timer (`nnvis_addon.scene.follow`)."""
import bpy
from bpy.props import StringProperty

from ..nnvis_addon.scene import follow, refresh
from ..nnvis_addon.scene.run_record import is_run


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
            if not is_run(found):
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
        if follow.following():
            follow.stop()
            self.report({"INFO"}, "Follow Training: off")
            return {"FINISHED"}
        follow.start()
        self.report({"INFO"}, f"Follow Training: refreshing every {follow.INTERVAL:g} s")
        return {"FINISHED"}


CLASSES = (NNVIS_OT_refresh_run, NNVIS_OT_follow_training)


def register():
    if follow.stop not in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.append(follow.stop)


def unregister():
    follow.stop()
    if follow.stop in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(follow.stop)
