"""The import options, described once: the File > Import dialog's properties and `nnvis render`'s
flags are both made from `IMPORT_OPTIONS`, and `split` turns their values into `load_run` and
`SceneOptions` arguments, so the dialog and the command line cannot drift apart.

Pure Python (the CLI reads it before Blender starts). An option's `name` is the dialog property
and, with dashes, the CLI flag (`bundle_strength` → `--bundle-strength`; booleans also take
`--no-...`); `to` says where its value goes: "load" (a `load_run` argument), "scene" (the
`SceneOptions` field of that name), "overlay" (`show_<kind>` → `SceneOptions.overlays`),
"control" (the initial value of the modifier input `control` on every object of the run that
has it) or "import" (the importer itself: how a chosen file is read).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import budget, colormaps
from .model.edges import EDGE_VALUE_MODES

GROUPS = ("Input", "Look", "Edges", "Animation", "Render")       # the dialog's panels, in order
LOOK_KEYS = ("default", "paper", "dark_studio", "blueprint")      # scene.looks.LOOKS
CAMERA_MOVES = ("static", "orbit", "fly_through", "tour")                 # scene.camera_moves.MOVES
LABEL_MODES = ("auto", "layers", "stages", "none")                # scene.labels.MODES
BLOCK_MODES = ("auto", "folded", "expanded")                      # blocks.MODES
MAX_PROBE = 255          # Recorded Probe's bound in the dialog (the run checks its own count)


@dataclass(frozen=True)
class Option:
    name: str
    default: object                 # its type is the option's type (bool, int, float, str)
    label: str
    description: str
    group: str
    to: str = "scene"
    choices: tuple = ()             # an enum's keys
    min: float | None = None
    max: float | None = None
    control: str = ""               # for to="control": the modifier input's name
    path: bool = False              # a file path (the dialog shows a file browser)
    cli: str = ""                   # the flag's name when it is not the option's (`camera`)
    # a number's special values as choices of their own: (value, key, label, description); the
    # dialog offers them beside "Number", the command line takes their keys (`--samples auto`)
    special: tuple = ()

    @property
    def flag(self) -> str:
        return "--" + (self.cli or self.name).replace("_", "-")

    def parse(self, text: str):
        """A command-line value: a special value's key, or a number."""
        for value, key, _, _ in self.special:
            if text.strip().lower() == key:
                return value
        try:
            return type(self.default)(text)
        except ValueError:
            keys = ", ".join(key for _, key, _, _ in self.special)
            raise ValueError(f"{self.flag} {text!r}: a number{' or ' + keys if keys else ''}") \
                from None


def _overlay(kind: str, label: str, description: str) -> Option:
    return Option(f"show_{kind}", True, label, description, "Look", "overlay")


IMPORT_OPTIONS = (
    Option("all_epochs", True, "All Epochs in Folder",
           "Import every epoch checkpoint in the chosen file's folder, not just the file",
           "Input", "import"),
    Option("probe", "", "Probe Image",
           "Image (PNG/JPEG) or .npy fed through the network (a multi-input model: one per input, "
           "joined by ';'); empty: probe.npy/png next to the "
           "checkpoints, else mid-grey", "Input", "load", path=True),
    Option("probe_index", 0, "Recorded Probe",
           "Which of a recording's probes the scene shows (when no probe image is given): 0 is "
           "the first; a recording holds the few its Recorder was given", "Input", "load", min=0,
           max=MAX_PROBE),
    Option("look", "default", "Look", "Background, shading, glow and colour map of the scene. "
           "The world is one for the whole scene: a look's background changes every run's",
           "Look", choices=LOOK_KEYS),
    Option("colormap", "viridis", "Colour Map",
           "Colour map of layers whose values are never negative (signed ones use coolwarm)",
           "Look", choices=colormaps.NAMES),
    _overlay("title", "Title", "Model name, layer and parameter counts (top left)"),
    _overlay("counter", "Epoch Counter", "The shown epoch, counting up as the training plays"),
    _overlay("curves", "Training Curves",
             "Loss and accuracy, growing epoch by epoch (recordings only: a checkpoint has no "
             "training history)"),
    _overlay("probe", "Input Image", "The probe image the activations belong to"),
    _overlay("predictions", "Class Scores", "One bar per class for the shown probe"),
    _overlay("legend", "Colour Legend", "A colour bar with the first convolution's value range"),
    Option("labels", "auto", "Labels",
           "Layer names and output shapes beside the layers: auto = per layer for a network in "
           "one row, per stage (input, stem, stages, head) when it wraps into rows", "Look",
           choices=LABEL_MODES),
    Option("blocks", "auto", "Blocks",
           "Repeated blocks (a ResNet's bottlenecks, a DenseNet's dense layers) drawn as one unit "
           "each, showing the block's output: auto = folded above 40 layers; expanded = every "
           "layer drawn", "Look", choices=BLOCK_MODES),
    Option("expand", "", "Expand Blocks",
           "Folded blocks to draw layer by layer all the same: block names, comma-separated "
           "(e.g. conv2_block1, conv5_block3)", "Look"),
    Option("expansion", 2.0, "Expansion",
           "0 = each layer one block, 1 = maps stacked, 2 = spread out, 3 = show the computation",
           "Look", "control", min=0.0, max=3.0, control="Expansion"),
    Option("morph", 1.0, "Morph", "Arrangement of each layer's cells: 0 = line, 0.5 = circle, "
           "1 = grid", "Look", "control", min=0.0, max=1.0, control="Morph"),
    Option("bundler", "structural", "Bundling",
           "structural: edges routed through shared points of clustered cells (fast); density: "
           "KDE bundling, edges drawn together where many run (organic)", "Edges",
           choices=("structural", "density")),
    Option("bundle_strength", 0.8, "Bundle Strength", "0 = straight edges, 1 = fully bundled",
           "Edges", min=0.0, max=1.0),
    Option("edge_colour", "weight", "Edge Colour",
           "What colours an edge: its weight, |weight|, weight × source activation, or "
           "importance |w|·|a|", "Edges", "control", choices=EDGE_VALUE_MODES,
           control="Colour Mode"),
    Option("max_edges", budget.MAX_EDGES, "Max Edges per Connection",
           "Level of detail: draw only the strongest edges of each connection (0 = all)",
           "Edges", min=0),
    Option("inputs_per_cell", -1, "Inputs per Map",
           "Level of detail: each feature map or unit draws only its N strongest inputs",
           "Edges", min=1, max=100000, special=(
               (-1, "auto", "Auto", "16 in a network drawn in one row, the 4 strongest in a "
                                    "deep network wrapped into rows"),
               (0, "all", "All", "Every input of every map or unit"))),
    Option("max_total_edges", budget.MAX_TOTAL_EDGES, "Max Edges in Total",
           "Level of detail for the whole network: the per-connection caps shrink to fit "
           "(0 = no limit)", "Edges", min=0),
    Option("edge_radius", 0.0025, "Edge Radius", "Thickness of the edge curves", "Edges",
           min=0.0),
    Option("frames_per_epoch", 0, "Frames per Epoch",
           "Frames from one recorded epoch to the next", "Animation", min=1, max=1000, special=(
               (0, "auto", "Auto (12 s)", "The whole training in 12 seconds, with a hold on the "
                                          "first and the last epoch"),)),
    Option("fps", 24, "Frame Rate", "Frames per second of the scene (with Set Up Scene): the "
           "default timing spreads the training over 12 seconds of them", "Animation", min=1,
           max=240),
    Option("camera_move", "static", "Camera",
           "static: the framed three-quarter view; orbit: a swing around the network and back; "
           "fly through: along the network, input to output; tour: each stage framed in turn",
           "Animation", choices=CAMERA_MOVES,
           cli="camera"),
    Option("orthographic", False, "Orthographic",
           "No perspective: parallel lines stay parallel (figures for papers)", "Animation"),
    Option("setup_render", True, "Set Up Scene",
           "Make the new camera active and set world, frame range and render settings "
           "(Cycles CPU, MP4)", "Render"),
    Option("samples", 0, "Samples", "Cycles samples per pixel (with Set Up Scene)", "Render",
           min=1, max=4096, special=((0, "auto", "Auto (draft)", "The draft preset's: 1 sample, "
                                                                  "denoised"),)),
)
OPTIONS = {o.name: o for o in IMPORT_OPTIONS}


# keys whose title case reads wrong ('Blues R', 'Weight X Activation', 'Abs')
CHOICE_LABELS = {"fly_through": "Fly-Through", "blues_r": "Blues (reversed)", "abs": "|Weight|",
                 "weight_x_activation": "Weight × Activation"}


def choice_label(key: str) -> str:
    """How the dialog and the sidebar spell an enum key: 'dark_studio' → 'Dark Studio',
    'blues_r' → 'Blues (reversed)'."""
    return CHOICE_LABELS.get(key, key.replace("_", " ").title())


def defaults() -> dict:
    return {o.name: o.default for o in IMPORT_OPTIONS}


def split(values: dict) -> tuple[dict, dict]:
    """Dialog/CLI values by option name (missing ones: defaults) → (`load_run` keyword
    arguments, `SceneOptions` keyword arguments)."""
    values = {**defaults(), **values}
    unknown = set(values) - set(OPTIONS)
    if unknown:
        raise KeyError(f"unknown import options: {', '.join(sorted(unknown))}")
    load, scene, controls = {}, {"overlays": ()}, {}
    for option in IMPORT_OPTIONS:
        value = values[option.name]
        if option.to == "load":
            load[option.name] = value if value != "" else None
        elif option.to == "overlay":
            scene["overlays"] += (option.name.removeprefix("show_"),) if value else ()
        elif option.to == "control":
            controls[option.control] = option.choices.index(value) if option.choices else value
        elif option.to == "scene":
            scene[option.name] = value
    for cap in ("max_edges", "max_total_edges"):
        scene[cap] = scene[cap] or None
    scene["controls"] = controls
    return load, scene


OVERLAYS = tuple(o.name.removeprefix("show_") for o in IMPORT_OPTIONS if o.to == "overlay")


@dataclass
class SceneOptions:
    """How a run is drawn (`plan.plan_scene`) and set up (`scene.build_scene`); pure Python, so
    a scene can be planned where Blender is not."""
    frames_per_epoch: float = 0           # 0: the default timing (animation.timeline)
    colormap: str = "viridis"             # for non-negative outputs; signed ones use coolwarm
    bundle_strength: float = 0.8
    bundler: str = "structural"           # or "density": KDE bundling, the organic look
    max_edges: int | None = budget.MAX_EDGES              # per connection: the strongest
    max_total_edges: int | None = budget.MAX_TOTAL_EDGES  # all together (caps shrink to fit)
    inputs_per_cell: int = -1             # each cell's strongest inputs drawn; -1 auto, 0 all
    edge_radius: float = 0.0025
    overlays: tuple = OVERLAYS            # overlays shown (all are built; the rest hidden)
    labels: str = "auto"                  # a labels.MODES key
    blocks: str = "auto"                  # a blocks.MODES key: fold repeated blocks into units
    expand: str = ""                      # folded blocks drawn layer by layer (comma-separated)
    setup_render: bool = True             # camera as scene camera, world, Cycles settings, range
    resolution: tuple[int, int] | None = None   # None: keep the scene's
    samples: int = 0                      # 0: the draft quality preset's (stage.QUALITY)
    fps: int = 24
    frame_start: int = 1
    look: str = "default"                 # a looks.LOOKS key
    camera_move: str = "static"           # a camera_moves.MOVES key
    orthographic: bool = False            # an orthographic camera (paper figures)
    controls: dict = field(default_factory=dict)   # initial modifier inputs, e.g. {"Morph": 0.5}
    extra: dict = field(default_factory=dict)
