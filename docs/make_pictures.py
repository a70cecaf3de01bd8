"""Render the pictures in docs/ from the digits demo, so they always show what the code does.

    .venv/bin/python docs/make_pictures.py

Trains the demo CNN (cached in build/pictures/), imports its recording with the library, renders
stills of the first and last epoch into docs/images/.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "images"
CACHE = ROOT / "build" / "pictures"


def main() -> None:
    if not (CACHE / "recording" / "manifest.json").exists():
        import shutil
        from nnvis_addon.demo import train_digits
        shutil.rmtree(CACHE, ignore_errors=True)
        train_digits(CACHE, epochs=10)
    import bpy
    from nnvis_addon import load_run
    from nnvis_addon.scene import SceneOptions, build_scene, compat
    bpy.ops.wm.read_factory_settings(use_empty=True)
    run = load_run(CACHE / "recording")
    build_scene(run, SceneOptions(resolution=(960, 540), samples=16))
    scene = bpy.context.scene
    compat.set_image_output(scene)
    OUT.mkdir(parents=True, exist_ok=True)
    for name, frame in (("demo_first_epoch", scene.frame_start), ("demo", scene.frame_end)):
        scene.frame_set(frame)
        scene.render.filepath = str(OUT / f"{name}.png")
        bpy.ops.render.render(write_still=True)
        print("wrote", scene.render.filepath)


if __name__ == "__main__":
    main()
