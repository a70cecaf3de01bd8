"""Edge bundling for layered networks, pure numpy: cell positions and edge ends in, polylines
out. See docs/bundling.md."""
from .cluster import cell_hierarchy
from .density import density_bundle
from .structural import structural_bundle

__all__ = ["cell_hierarchy", "density_bundle", "structural_bundle"]
