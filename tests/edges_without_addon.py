"""How far every edge curve's ends lie from the cells they join, frame by frame.

`end_gaps` runs in the test process; run as a script (in a fresh process whose Blender user folder
has no nnvis) it opens a saved .blend and reports the gaps at the given frames — proof that the
edges follow the cells with nothing from the add-on.
"""
import json
import os
import sys
import tempfile

import numpy as np


def cell_centres(bpy, depsgraph, obj, count: int) -> np.ndarray:
    """(count, 3) world centres of the cells (instances 0..count-1) `obj` draws now; NaN for a
    cell not drawn (Expansion 0, Max Cells)."""
    out = np.full((count, 3), np.nan)
    for inst in depsgraph.object_instances:     # persistent_id: (0, instance index, ...)
        if inst.is_instance and inst.parent.original == obj and inst.persistent_id[1] < count:
            out[inst.persistent_id[1]] = tuple(inst.matrix_world.translation)
    return out


def end_gaps(bpy) -> dict:
    """Edge object name → (largest distance of a curve end from its cell's centre, number of
    ends checked)."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    gaps = {}
    for obj in bpy.context.scene.objects:
        if obj.type != "CURVES" or "nnvis_edges" not in obj:
            continue
        mod = obj.modifiers["NNVis"]
        ids = {i.name: i.identifier for i in mod.node_group.interface.items_tree
               if i.item_type == "SOCKET" and i.in_out == "INPUT"}
        layers = mod[ids["Source"]], mod[ids["Target"]]
        curves = obj.evaluated_get(depsgraph).data
        pts = np.empty(len(curves.points) * 3, np.float32)
        curves.attributes["position"].data.foreach_get("vector", pts)
        pts = pts.reshape(len(curves.curves), -1, 3) @ np.array(obj.matrix_world)[:3, :3].T \
            + np.array(obj.matrix_world)[:3, 3]
        worst, checked = 0.0, 0
        for layer, attr, end in zip(layers, ("nnvis_src", "nnvis_dst"), (0, -1)):
            index = np.empty(len(obj.data.curves), np.int32)
            obj.data.attributes[attr].data.foreach_get("value", index)
            index = index[:len(pts)]
            cells = cell_centres(bpy, depsgraph, layer, int(index.max()) + 1)
            drawn = ~np.isnan(cells[index, 0])
            dist = np.linalg.norm(pts[drawn, end] - cells[index[drawn]], axis=1)
            worst = max(worst, float(dist.max()) if dist.size else 0.0)
            checked += int(drawn.sum())
        gaps[obj.name] = (worst, checked)
    return gaps


if __name__ == "__main__":
    os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="nnvis-no-addon-")
    import bpy
    bpy.ops.wm.open_mainfile(filepath=sys.argv[1])
    report = {"addons": sorted(bpy.context.preferences.addons.keys()), "gaps": {}}
    for frame in sys.argv[2:]:
        bpy.context.scene.frame_set(int(frame))
        report["gaps"][frame] = end_gaps(bpy)
    print("REPORT" + json.dumps(report))
