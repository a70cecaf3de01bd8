"""Node trees built in code, one module per group or family: `kit` (how trees are written and laid
out), `cells` (the layers' geometry group), `highlight`, `legend_bar`, `shaders` (atlas lookup,
colour maps) and `materials`. Groups are shared by every layer of every import (found by name and
version, rebuilt only when missing or older); their names are in `nnvis_addon.names`. The names
below are the scene's entry points."""
from .cells import PLANE_ROTATION, cells_group
from .highlight import highlight_sockets, store_highlight
from .kit import (VERSION, add, arrange, clamp01, current, epoch_pair, first, geometry_io,
                  input_ids, join, math_node, mix, named, new_group, panels, position, sample,
                  section, set_default, socket, split, store, value_node, vec_math, xyz)
from .label_plate import label_plate_group
from .legend_bar import legend_group
from .materials import (ACCENT_MATERIAL, BLOCK_MATERIAL, DIM, accent_material, atlas_material,
                        begin_build, block_material, emission_material, empty_material,
                        set_atlas_values, shared_material)
from .shaders import colour_maps_group, lookup_group, set_ramp
