"""NNVis Blender extension: registers its data (props), the operators and the sidebar panels.

All the work happens in the `nnvis_addon` library; operators and panels only plumb arguments.
"""
if __package__:     # Blender imports this file as the extension's package; pytest imports it
    from . import operators, panels     # alone when the checkout's folder is not a name
    from .nnvis_addon.scene import props


def register():
    props.register()
    operators.register()
    panels.register()


def unregister():
    panels.unregister()
    operators.unregister()
    props.unregister()
