"""NNVis Blender extension: registers the importer, render operator and the sidebar panel.

All the work happens in the `nnvis_addon` library; operators and panels only plumb arguments.
"""
if __package__:     # Blender imports this file as the extension's package; pytest imports it
    from . import operators, panels     # alone when the checkout's folder is not a Python name


def register():
    operators.register()
    panels.register()


def unregister():
    panels.unregister()
    operators.unregister()
