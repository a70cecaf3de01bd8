"""Render Training Video: `apply_video_options` + `set_output`, then Blender's own render job.

In the UI the render runs as Blender's animation render job (INVOKE_DEFAULT): progress in the
status bar and render window, Esc cancels, and the frames (or the MP4 so far) already written stay.
Image sequences are written with Blender's placeholders and without overwriting, so running the
operator again resumes after the last finished frame. From scripts/headless the render blocks and
takes nnvis's own frame loop (`frames.render_sequence`: claims, temp file + rename; an MP4 goes
through a resumable frame folder).
"""
from pathlib import Path

import bpy
from bpy.props import EnumProperty, IntProperty, StringProperty

from ..nnvis_addon import NNVisError
from ..nnvis_addon.scene import devices, frames, render, stage
from ..nnvis_addon.scene import workers as parallel


class NNVIS_OT_render_video(bpy.types.Operator):
    """Render the imported training as an MP4 or image sequence; Esc stops, keeping the frames"""

    bl_idname = "nnvis.render_video"
    bl_label = "Render Training Video"
    bl_options = {"REGISTER"}

    engine: EnumProperty(name="Engine", default="AUTO", items=[
        ("AUTO", "Auto", "Cycles, on the device below"),
        ("CYCLES", "Cycles", "Path tracing, on the device below"),
        ("EEVEE", "EEVEE", "Rasterised, another look; very slow on software OpenGL")])
    device: EnumProperty(name="Device", default="AUTO", items=[
        ("AUTO", "Auto", "The best GPU Cycles lists (OptiX, CUDA, HIP, Metal, oneAPI), with GPU "
                         "denoising; the CPU when there is none"),
        ("CPU", "CPU", "Cycles on the CPU: works everywhere"),
        ("GPU", "GPU", "Cycles on the best GPU backend; fails where there is none. An NVIDIA "
                       "Hopper GPU (H100/H200) compiles its kernel at the first render: over 7 "
                       "minutes, once")])
    quality: EnumProperty(name="Quality", default=stage.DEFAULT_QUALITY, items=[
        (key, key.title(), f"CPU: {cpu.samples} samples, denoising {cpu.denoise or 'off'}, "
                           f"{cpu.bounces} bounces; GPU: {gpu.samples} samples, denoising "
                           f"{gpu.denoise or 'off'} (Cycles)")
        for (key, cpu), gpu in zip(stage.QUALITY.items(), stage.GPU_QUALITY.values())])
    samples: IntProperty(name="Samples", default=0, min=0, max=4096,
                         description="0: the quality preset's samples")
    resolution: EnumProperty(name="Resolution", default="SCENE", items=[
        *((key, key, f"{w}×{h}") for key, (w, h) in render.RESOLUTIONS.items()),
        ("SCENE", "Scene", "Keep the scene's resolution")])
    fps: IntProperty(name="FPS", default=24, min=1, max=240)
    frames_per_epoch: IntProperty(name="Frames per Epoch", default=0, min=0, max=1000,
                                  description="0: keep the imported timing; else re-time the "
                                              "epochs with the holds below")
    hold_first: IntProperty(name="Hold First", default=0, min=0, max=10000,
                            description="Frames showing the untrained network before training")
    hold_last: IntProperty(name="Hold Last", default=12, min=0, max=10000,
                           description="Frames showing the last epoch")
    file_format: EnumProperty(name="Output", default="MP4", items=[
        ("MP4", "MP4 (H.264)", "One video file"),
        ("PNG", "PNG Sequence", "frame_####.png; resumable, several machines can share it"),
        ("EXR", "EXR Sequence", "frame_####.exr, linear half float")])
    workers: IntProperty(name="Workers", default=0, min=0, max=64,
                         description="Render processes at once (headless renders): 0 is auto, "
                                     "2 on a GPU, 1 on the CPU")
    directory: StringProperty(name="Folder", subtype="DIR_PATH", default="//render/",
                              description="Where <run>.mp4 or the <run> frame folder goes")

    @classmethod
    def poll(cls, context):
        return render.find_run(context.scene, context.active_object) is not None

    def invoke(self, context, event):
        self.fps = context.scene.render.fps
        return context.window_manager.invoke_props_dialog(self, width=340)

    def execute(self, context):
        scene = context.scene
        run = render.find_run(scene, context.active_object)
        if self.directory.startswith("//") and not bpy.data.filepath:
            self.report({"ERROR"}, "Save the .blend first, or pick an absolute output folder")
            return {"CANCELLED"}
        folder = Path(bpy.path.abspath(self.directory))
        out = folder / (f"{bpy.path.clean_name(run.name)}"
                        f"{'.mp4' if self.file_format == 'MP4' else ''}")
        options = render.VideoOptions(
            engine=self.engine, device=self.device, quality=self.quality, samples=self.samples,
            resolution=self.resolution, fps=self.fps,
            frames_per_epoch=self.frames_per_epoch, hold_first=self.hold_first,
            hold_last=self.hold_last, file_format=self.file_format, workers=self.workers)
        try:
            start, end = render.apply_video_options(scene, run, options)
            device = devices.used(scene)
            where = f" on {device}" if scene.render.engine == "CYCLES" else ""
            if self.options.is_invoke and not bpy.app.background:
                frames.set_output(scene, out, self.file_format)
                bpy.ops.render.render("INVOKE_DEFAULT", animation=True)
                self.report({"INFO"}, f"Rendering frames {start}-{end} with "
                                      f"{scene.render.engine}{where} to {out}")
                return {"FINISHED"}
            done = []
            processes = parallel.count(options.workers, device.kind)
            where += f", {processes} worker{'s' if processes > 1 else ''}"
            render.render_animation(scene, out, done.append, self.file_format, processes)
        except NNVisError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        skipped = end - start + 1 - len(done)
        if not done:
            self.report({"WARNING"}, f"No frames rendered: frames {start}-{end} are already in "
                                     f"{out}; delete them to render again")
        else:
            self.report({"INFO"}, f"Rendered {len(done)} of frames {start}-{end} with "
                                  f"{scene.render.engine}{where} to {out}"
                                  + (f" ({skipped} already there, skipped)" if skipped else ""))
        return {"FINISHED"}
