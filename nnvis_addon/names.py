"""The scene's contract: every name nnvis writes into a .blend and reads back, one spelling each.

Custom properties tag the datablocks (what an object is, which run it belongs to), geometry
attributes carry per-cell and per-edge data from the scene writer to the node groups and
shaders, material nodes are found by name when a look or the design editor changes them, and node
groups are shared by name. Readers, writers and tests all take the names from here. Pure Python:
the CLI and the tests read it without Blender.
"""
from __future__ import annotations

# Custom properties: objects
LAYER = "nnvis_layer"                 # a layer object: the layer's name
KIND = "nnvis_kind"                   # its layer kind (Conv2D, Dense, ...)
SHAPE = "nnvis_shape"                 # its output shape
BLOCK_TITLE = "nnvis_block"           # a folded block (blocks.py): its title
SOFTMAX = "nnvis_softmax"             # the score bars show the softmax of the run's logits
EXPANDED_BLOCK = "nnvis_expanded_block"   # a layer of a block drawn expanded: the block's title
BLOCK_LAYERS = "nnvis_block_layers"   # ... the layers folded into it
LAYER_ROW = "nnvis_layer_row"         # a layer object: its row, 0 on top
LAYER_RANK = "nnvis_layer_rank"       # ... its rank (depth step, layout.py)
LAYER_LANE = "nnvis_layer_lane"       # ... its lane (0: the main path; ±1, ±2: branches)
UNSUPPORTED = "nnvis_unsupported"     # a layer drawn as a grey block: why
BLOCK_LABEL = "nnvis_block_label"     # the text object naming such a block: the layer's name
EDGES = "nnvis_edges"                 # a connection's curves: [source layer, target layer]
OVERLAY = "nnvis_overlay"             # an overlay part: what it shows (counter, curves, label...)
OVERLAY_KIND = "nnvis_overlay_kind"   # the part hud.py hangs from the camera: its overlays.KINDS
ROW = "nnvis_row"                     # a prediction bar object: its row height
CLASSES = "nnvis_classes"             # ... the class index of each bar, top to bottom
ROOM = "nnvis_room"                   # the top-class line: its width allowed, in text sizes
METRICS = "nnvis_metrics"             # the training curves: the metric keys drawn
LABEL = "nnvis_label"                 # a layer label: its text's key
LABEL_LAYERS = "nnvis_label_layers"   # ... the layers it names
ANCHOR_TOP = "nnvis_anchor_top"       # where a label hangs on its layer
ANCHOR_BOTTOM = "nnvis_anchor_bottom"
LABEL_BELOW = "nnvis_label_below"     # ... may hang under its layer (not where the next row is)
LEGEND_LAYER = "nnvis_legend_layer"   # the legend: the layer whose colour scale it shows
SCREEN = "nnvis_screen"               # the empty the overlays hang from, on the camera's screen
CAMERA_MOVE = "nnvis_camera_move"     # a run's collection: its camera move (orbit, tour, ...)
SHARED = "nnvis_shared"               # what all runs share: camera, lights (its kind)
ENERGY = "nnvis_energy"               # a light's data: its energy before the look scaled it

# Custom properties: collections, scenes, materials, node groups
RUN = "nnvis_run"                     # a run's collection: the run's name
VIEW = "nnvis_view"                   # a run's collection: the home view's direction
ROW_GAPS = "nnvis_row_gaps"           # ... the clear height under each row but the last
ROW_Z = "nnvis_row_z"                 # ... each row's height, as laid out
RANK_X = "nnvis_rank_x"               # ... each rank's depth from its row's start, as laid out
RANK_REACH = "nnvis_rank_reach"       # ... each rank's largest width or height, as laid out
RANK_WIDTH = "nnvis_rank_width"       # ... each rank's largest width, as laid out
STOPS = "nnvis_stops"                 # ... its stages, as JSON [[name, [layer, ...]], ...] (tour)
ORTHOGRAPHIC = "nnvis_orthographic"   # ... whether its camera is orthographic
PROBE = "nnvis_probe"                 # ... the probe it was imported with (live refresh)
PROBE_INDEX = "nnvis_probe_index"
TIMING = "nnvis_timing"               # ... frames per epoch, fps, first frame, holds
ASPECT = "nnvis_aspect"
FRAME_END = "nnvis_frame_end"
BLOCKS = "nnvis_blocks"               # ... the block folding it was drawn with
OPTIONS = "nnvis_options"             # ... its import options, JSON (rebuild.py draws it again)
SOURCE_STATE = "nnvis_source_state"   # ... what the live refresh last saw of its source
SOURCE_SETTLING = "nnvis_source_settling"
EPOCHS = "nnvis_epochs"               # a run's collection: its recorded epoch numbers
EDGES_DRAWN = "nnvis_edges_drawn"     # ... how many edges it draws
EDGES_TOTAL = "nnvis_edges_total"     # ... of how many the network has
LOOK = "nnvis_look"                   # ... the look applied
DESIGN = "nnvis_design"               # ... the design editor's Keras config
RAMP_NAME = "nnvis_ramp_name"         # an atlas material: the colour map its own ramp holds
TEMPLATE = "nnvis_template"           # an atlas material: the kind of tree it was copied from
VERSION = "nnvis_version"             # a node group: the nnvis node version that built it

# Geometry attributes (point, curve or instance domain)
MAP = "nnvis_map"                     # a cell's index in its layer
MAP_GAIN = "nnvis_map_gain"           # its Normalise Per Map factor
GRID, LINE, CIRCLE, STACK = "nnvis_grid", "nnvis_line", "nnvis_circle", "nnvis_stack"
BOX = "nnvis_box"                     # the layer's box size (Expansion 0)
RF = "nnvis_rf_"                      # + y/x/in/out: the kernel window (Expansion 3)
TRACE = "nnvis_trace_"                # + unit: the highlight trace of that unit
SIZE = "nnvis_size"                   # a cell's drawn size
UV = "nnvis_uv"
EPOCH = "nnvis_epoch"                 # the shown epoch: layers' and edges' property, read by shaders
COLOUR_MAP = "nnvis_colour_map"       # the Colour Map input, for the shader
GAIN = "nnvis_gain"
LIT, DIM = "nnvis_lit", "nnvis_dim"   # the highlight, for the shader
EDGE = "nnvis_edge"                   # an edge's index into its connection's atlas
MODE = "nnvis_mode"                   # the edges' Colour Mode, for the shader
ALONG = "nnvis_along"                 # 0 at an edge's source, 1 at its target
OPACITY = "nnvis_opacity"             # the edges' Opacity, for the shader
BUNDLED = "nnvis_bundled"             # an edge point fully bundled
SRC, DST = "nnvis_src", "nnvis_dst"   # the cells an edge joins (+ "_rest": their import places)
POINT_EPOCH = "nnvis_point_epoch"     # a training-curve point: its epoch index
START = "nnvis_start"                 # ... the index of its curve's first point
LAST = "nnvis_last"                   # index of the last recorded epoch
SCORE = "nnvis_score"                 # a class's predicted score
POINT_COLOUR = "nnvis_point_colour"   # an overlay point's colour

# Nodes inside materials, found by name
LOOKUP = "nnvis_lookup"
TEX_A, TEX_B = "nnvis_tex_a", "nnvis_tex_b"
SCALE, OFFSET = "nnvis_scale", "nnvis_offset"
MODE_STRIDE = "nnvis_mode_stride"
MODE_SCALE = "nnvis_mode_scale_"      # + mode
RAMP = "nnvis_ramp"                   # the material's own colour ramp
COLOUR_MAPS = "nnvis_colour_maps"     # the Colour Maps group node
TINT, TINT_AMOUNT = "nnvis_tint", "nnvis_tint_amount"
GLOW, FLAT = "nnvis_glow", "nnvis_flat"
STRENGTH_FADE = "nnvis_strength_fade"  # edges: 1 = a weak edge fades, 0 = not (weightless links)
BASE_COLOUR = "nnvis_base_colour"     # a shared material's colour

# Node groups
GROUP_PLANES = "NNVis Feature Maps"
GROUP_CUBES = "NNVis Units"
GROUP_WINDOW = "NNVis Kernel Window"    # nested in NNVis Feature Maps (Expansion 3)
GROUP_EDGES = "NNVis Edges"
GROUP_LEGEND = "NNVis Legend"
GROUP_LOOKUP = "NNVis Atlas Lookup"
GROUP_COLOURS = "NNVis Colour Maps"
COLOUR_MAPS_IMAGE = "NNVis Colour Maps LUT"   # the named colour maps, one per row
GROUP_GROWING_LINES = "NNVis Growing Lines"
GROUP_SCORE_BARS = "NNVis Score Bars"
GROUP_LABEL_PLATE = "NNVis Label Plate"

# Materials all runs share (found by name; looks.py recolours them)
MATERIAL_TEXT = "NNVis Label"           # every overlay's and label's text
MATERIAL_CARD = "NNVis Label Card"      # the cards behind layer labels: the background's colour
GROUP_COUNTER = "NNVis Epoch Counter"  # + the run's name: one per run (its own lines)
MODIFIER = "NNVis"                    # the geometry-nodes modifier on every animated object
