"""Blender side (bpy only here): node groups, layer and edge objects, animation, stage, render."""
from .build import SceneOptions, build_scene

__all__ = ["SceneOptions", "build_scene"]
