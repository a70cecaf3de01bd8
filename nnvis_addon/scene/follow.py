"""Follow Training: a `bpy.app.timers` function that refreshes every run every few seconds.

Not saved state: it runs while registered and stops when the user turns it off, when another file
is loaded (`stop` is a `load_pre` handler) or when the add-on is disabled. The operator toggles it;
the sidebar shows whether it is on (`following`).
"""
import bpy

from . import refresh

INTERVAL = 3.0          # seconds between two refreshes while following


def following() -> bool:
    return bpy.app.timers.is_registered(_tick)


def start() -> None:
    bpy.app.timers.register(_tick, first_interval=0.0)


def _tick():
    """The timer: one refresh of every run (an undo step when epochs arrived), then wait."""
    try:
        reports = refresh.follow_step(bpy.context.scene)
    except Exception as exc:        # noqa: BLE001 - a timer that raises is dropped silently
        print(f"NNVis Follow Training stopped: {exc}")
        return None
    if any(r.added for r in reports):
        print("NNVis Follow Training:", "; ".join(str(r) for r in reports if r.added))
        if bpy.ops.ed.undo_push.poll():
            bpy.ops.ed.undo_push(message="NNVis: follow training")
    return INTERVAL


@bpy.app.handlers.persistent          # stays in load_pre across file loads
def stop(*_args) -> None:
    if following():
        bpy.app.timers.unregister(_tick)
