"""Run in a fresh process with a Blender user folder that has no nnvis: open a saved .blend, report
its animation and render one frame — proof the file needs nothing from the add-on."""
import json
import os
import sys
import tempfile

os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="nnvis-no-addon-")
import bpy  # noqa: E402
import numpy as np  # noqa: E402

blend, frame, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
bpy.ops.wm.open_mainfile(filepath=blend)
scene = bpy.context.scene
report = {
    "addons": sorted(bpy.context.preferences.addons.keys()),
    "keyframes": {},
    "images": {},
}
for obj in scene.objects:
    anim = obj.animation_data
    if anim and anim.action:
        count = 0
        if not hasattr(anim.action, "layers"):  # Blender 4.2: legacy action
            count = sum(len(f.keyframe_points) for f in anim.action.fcurves)
        for layer in getattr(anim.action, "layers", ()):
            for strip in layer.strips:
                bag = strip.channelbag(anim.action_slot)
                count += sum(len(f.keyframe_points) for f in bag.fcurves) if bag else 0
        report["keyframes"][obj.name] = count
for image in bpy.data.images:
    if image.packed_file:
        px = np.empty(image.size[0] * image.size[1] * 4, np.float32)
        image.pixels.foreach_get(px)
        report["images"][image.name] = float(np.abs(px[0::4]).sum())
scene.frame_set(frame)
if hasattr(scene.render.image_settings, "media_type"):  # 5.0
    scene.render.image_settings.media_type = "IMAGE"
scene.render.image_settings.file_format = "PNG"
scene.render.filepath = out
bpy.ops.render.render(write_still=True)
print("REPORT" + json.dumps(report))
