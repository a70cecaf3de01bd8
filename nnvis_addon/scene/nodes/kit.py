"""The node kit: how nnvis writes node trees in code, in one place.

`add` creates a node, sets its properties and wires or fills its inputs, so each tree reads top to
bottom like the data flow it describes; the small wrappers below name the nodes used most.
`section` frames the nodes a block of code creates under a label, `panels` groups a group's
inputs the way the modifier shows them, and `arrange` lays a finished tree out in columns by
dependency depth, so what the code builds can be read and tweaked in Blender's node editor.
"""
from __future__ import annotations

from contextlib import contextmanager

import bpy
from ... import names

VERSION = 8          # bump when a group's sockets or behaviour change: older copies are not reused


def add(tree, bl_idname: str, inputs: dict | None = None, **props):
    """New node of `bl_idname`; `props` set node attributes, `inputs` maps input name/index to a
    constant or to an output socket to link from."""
    node = tree.nodes.new(bl_idname)
    for key, value in props.items():
        setattr(node, key, value)
    for key, value in (inputs or {}).items():
        socket = node.inputs[key]
        if isinstance(value, bpy.types.NodeSocket):
            tree.links.new(value, socket)
        else:
            socket.default_value = value
    return node


def math_node(tree, operation: str, a, b=None, c=None, clamp: bool = False):
    inputs = {0: a}
    if b is not None:
        inputs[1] = b
    if c is not None:
        inputs[2] = c
    return add(tree, "ShaderNodeMath", inputs, operation=operation, use_clamp=clamp).outputs[0]


def clamp01(tree, value):
    return math_node(tree, "ADD", value, 0.0, clamp=True)


def vec_math(tree, operation: str, a, b=None, scale=None):
    """Vector Math; `scale` feeds SCALE's factor. Returns the Vector output (Value for LENGTH)."""
    inputs = {0: a}
    if b is not None:
        inputs[1] = b
    if scale is not None:
        inputs[3] = scale
    node = add(tree, "ShaderNodeVectorMath", inputs, operation=operation)
    return node.outputs["Value" if operation == "LENGTH" else "Vector"]


def xyz(tree, x=0.0, y=0.0, z=0.0):
    return add(tree, "ShaderNodeCombineXYZ", {"X": x, "Y": y, "Z": z}).outputs[0]


def split(tree, vector):
    return add(tree, "ShaderNodeSeparateXYZ", {"Vector": vector}).outputs


def mix(tree, factor, a, b, data_type: str = "FLOAT"):
    return add(tree, "ShaderNodeMix", {"Factor": factor, "A": a, "B": b},
               data_type=data_type).outputs["Result"]


def position(tree):
    return add(tree, "GeometryNodeInputPosition").outputs[0]


def named(tree, name, data_type: str = "FLOAT"):
    """A named attribute of the geometry being evaluated (0 where it does not exist)."""
    return add(tree, "GeometryNodeInputNamedAttribute", {"Name": name},
               data_type=data_type).outputs["Attribute"]


def sample(tree, geometry, value, data_type: str = "FLOAT", index=0, domain: str = "POINT"):
    """`value` of element `index` of `geometry` (clamped to the elements there are)."""
    return add(tree, "GeometryNodeSampleIndex", {"Geometry": geometry, "Value": value,
                                                 "Index": index},
               data_type=data_type, domain=domain, clamp=True).outputs[0]


def join(tree, parts, bl_idname: str = "GeometryNodeJoinGeometry", name: str = "Geometry"):
    """Join `parts` in their order (a multi-input socket lists its newest link first)."""
    node = add(tree, bl_idname)
    for part in reversed(parts):
        tree.links.new(part, node.inputs[name])
    return node.outputs[0]


def epoch_pair(tree, epoch, last):
    """(shown, e0, e1, factor): `epoch` clamped to 0..`last`, the two recorded epochs either side
    of it and how far it is from e0 to e1, which every per-epoch value blends by."""
    shown = add(tree, "ShaderNodeClamp", {"Value": epoch, "Min": 0.0, "Max": last}).outputs[0]
    e0 = math_node(tree, "FLOOR", shown)
    e1 = math_node(tree, "MINIMUM", math_node(tree, "ADD", e0, 1.0), last)
    return shown, e0, e1, math_node(tree, "SUBTRACT", shown, e0)


def socket(group, name: str, in_out: str, socket_type: str, default=None, min_value=None,
           max_value=None, description: str = ""):
    item = group.interface.new_socket(name, in_out=in_out, socket_type=socket_type,
                                      description=description)
    if default is not None:
        item.default_value = default
    if min_value is not None:
        item.min_value = min_value
    if max_value is not None:
        item.max_value = max_value
    return item


def input_ids(group) -> dict[str, str]:
    """Input socket name → identifier, the key a modifier uses (`mod["Socket_2"]`)."""
    return {item.name: item.identifier for item in group.interface.items_tree
            if item.item_type == "SOCKET" and item.in_out == "INPUT"}


def current(name: str):
    """The group called `name` (or `name.001`, ...) built by this version of nnvis, if any."""
    for group in bpy.data.node_groups:
        if (group.name == name or group.name.startswith(name + ".")) and \
                group.get(names.VERSION) == VERSION:
            return group
    return None


def new_group(name: str, kind: str = "GeometryNodeTree"):
    group = bpy.data.node_groups.new(name, kind)
    group[names.VERSION] = VERSION
    return group


def geometry_io(group, epoch: bool = True):
    """Group input and output nodes; `epoch`: an `Epoch` input, for groups whose geometry shows
    the epoch (overlays; layers and edges show it in their shaders, `animation.epoch_path`)."""
    socket(group, "Geometry", "INPUT", "NodeSocketGeometry")
    socket(group, "Geometry", "OUTPUT", "NodeSocketGeometry")
    if epoch:
        socket(group, "Epoch", "INPUT", "NodeSocketFloat", 0.0, 0.0,
               description="Which recorded epoch to show (fractional values blend two epochs)")
    nodes = group.nodes
    return nodes.new("NodeGroupInput"), nodes.new("NodeGroupOutput")


def store(tree, geometry, name: str, value, data_type: str, domain: str):
    return add(tree, "GeometryNodeStoreNamedAttribute",
               {"Geometry": geometry, "Name": name, "Value": value},
               data_type=data_type, domain=domain).outputs["Geometry"]


def first(group, geometry, count, domain: str):
    """`geometry` without the elements of `domain` whose index is ≥ `count`."""
    index = add(group, "GeometryNodeInputIndex").outputs[0]
    beyond = add(group, "FunctionNodeCompare", {"A": index, "B": count}, data_type="INT",
                 operation="GREATER_EQUAL").outputs[0]
    return add(group, "GeometryNodeDeleteGeometry", {"Geometry": geometry, "Selection": beyond},
               domain=domain).outputs[0]


def value_node(tree, name: str, label: str, value: float):
    node = add(tree, "ShaderNodeValue", name=name, label=label)
    node.outputs[0].default_value = value
    return node.outputs[0]


def set_default(socket_, value) -> None:
    """Write a socket's default value only if it changes: each write makes Blender update the
    node tree (≈ 0.4 ms), which adds up over hundreds of materials."""
    current = socket_.default_value
    same = tuple(current) == tuple(value) if hasattr(value, "__len__") else current == value
    if not same:
        socket_.default_value = value


def panels(group, layout: dict[str, tuple[str, ...]], closed: tuple[str, ...] = ()) -> None:
    """Group the inputs named in `layout` (panel name → input names, in order) into interface
    panels, shown in the modifier as collapsible sections; panels in `closed` start folded."""
    items = {item.name: item for item in group.interface.items_tree
             if item.item_type == "SOCKET" and item.in_out == "INPUT"}
    for title, inputs in layout.items():
        panel = group.interface.new_panel(title, default_closed=title in closed)
        for position, name in enumerate(inputs):
            group.interface.move_to_parent(items[name], panel, position)


@contextmanager
def section(tree, label: str):
    """Put the nodes created inside the `with` block into a frame labelled `label`."""
    before = {node.name for node in tree.nodes}
    yield
    frame = tree.nodes.new("NodeFrame")
    frame.label = frame.name = label
    frame.label_size = 16
    for node in tree.nodes:
        if node.name not in before and node != frame:
            node.parent = frame


def arrange(tree, dx: float = 240.0, gap: float = 30.0) -> None:
    """Lay `tree` out left to right: a node's column is the longest chain of links feeding it, an
    unfed node (a constant, an attribute) sits one column before its first reader; within a
    column nodes stack by frame, then by creation. Frames stay at the origin and fit their
    nodes, so locations are the same inside and outside frames."""
    nodes = [n for n in tree.nodes if n.bl_idname != "NodeFrame"]
    feeds = {n.name: set() for n in nodes}
    readers = {n.name: set() for n in nodes}
    for link in tree.links:
        feeds[link.to_node.name].add(link.from_node.name)
        readers[link.from_node.name].add(link.to_node.name)
    depth: dict[str, int] = {}
    for node in nodes:               # longest path, iteratively (trees run to a few hundred nodes)
        stack = [node.name]
        while stack:
            name = stack[-1]
            todo = [f for f in feeds[name] if f not in depth]
            if todo:
                stack += todo
                continue
            depth[name] = 1 + max((depth[f] for f in feeds[name]), default=-1)
            stack.pop()
    for node in nodes:
        if not feeds[node.name] and readers[node.name]:
            depth[node.name] = max(0, min(depth[r] for r in readers[node.name]) - 1)
    frames = {f.name: k for k, f in enumerate(n for n in tree.nodes if n.bl_idname == "NodeFrame")}
    columns: dict[int, list] = {}
    for order, node in enumerate(nodes):
        key = (frames.get(node.parent.name, -1) if node.parent else -1, order)
        columns.setdefault(depth[node.name], []).append((key, node))
    for column, members in columns.items():
        heights = [_height(node) + gap for _, node in sorted(members, key=lambda m: m[0])]
        y = sum(heights) / 2
        for (_, node), height in zip(sorted(members, key=lambda m: m[0]), heights):
            node.location = (column * dx, y)
            y -= height


def _height(node) -> float:
    """The drawn height of `node`, estimated (headless Blender does not measure nodes)."""
    shown = sum(1 for s in (*node.inputs, *node.outputs) if s.enabled and not s.hide)
    return 60.0 + 22.0 * shown
