"""Highlight: the inputs and attributes that light up what feeds the traced unit and dim the rest,
shared by the cells and the edges groups (the shaders read `nnvis_lit` and `nnvis_dim`)."""
from __future__ import annotations

from .kit import add, join, math_node, named, socket, store
from ... import names


def highlight_sockets(group) -> None:
    socket(group, "Highlight", "INPUT", "NodeSocketFloat", 0.0, 0.0, 1.0,
           description="Light up what feeds the traced unit most, dim the rest (0 = off)")
    socket(group, "Trace Unit", "INPUT", "NodeSocketInt", 0, 0,
           description="Which unit of the last layer (class) the highlight traces back from")


def store_highlight(group, i, geometry, domain: str):
    """Store `nnvis_lit` = Highlight × trace and `nnvis_dim` = Highlight × (1 − trace) on `domain`,
    where trace is the attribute `nnvis_trace_<Trace Unit>` (the scene writes one per traced unit;
    see model/trace.py); `i` is the group input node's outputs, with the `highlight_sockets`.
    The shaders brighten by lit and darken by dim."""
    unit = add(group, "FunctionNodeValueToString", {"Value": i["Trace Unit"],
                                                    "Decimals": 0})
    prefix = add(group, "FunctionNodeInputString", string=names.TRACE)
    name = join(group, [prefix.outputs[0], unit.outputs[0]], "GeometryNodeStringJoin", "Strings")
    trace = named(group, name)
    on = i["Highlight"]
    lit = math_node(group, "MULTIPLY", on, trace)
    geometry = store(group, geometry, names.LIT, lit, "FLOAT", domain)
    dim = math_node(group, "MULTIPLY", on, math_node(group, "SUBTRACT", 1.0, trace))
    return store(group, geometry, names.DIM, dim, "FLOAT", domain)
