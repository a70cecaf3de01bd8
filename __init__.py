"""NNVis Blender extension: registers the importer, render operator and the sidebar panel.

All the work happens in the `nnvis_addon` library; operators and panels only plumb arguments.
"""
from . import operators, panels


def register():
    operators.register()
    panels.register()


def unregister():
    panels.unregister()
    operators.unregister()
