"""What an import records on a run's collection for the operations that come later (a rebuild
draws the run again with the options it was imported with), written and read here so the import
and the rebuild share one spelling and neither imports the other."""
from __future__ import annotations

import dataclasses
import json

from .. import names
from ..options import SceneOptions


def options_record(options: SceneOptions) -> str:
    """`options` as JSON, for `names.OPTIONS` (what a rebuild draws the run with again)."""
    return json.dumps(dataclasses.asdict(options), default=str)


def stored_options(collection) -> SceneOptions:
    """The options the run in `collection` was imported with (`SceneOptions` defaults for a run
    imported before they were recorded)."""
    recorded = json.loads(collection.get(names.OPTIONS, "{}"))
    fields = {f.name for f in dataclasses.fields(SceneOptions)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in recorded.items()
              if k in fields}
    return SceneOptions(**values)
