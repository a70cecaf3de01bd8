"""The house's rules, read from the code's imports (tests/import_graph.py; lazy imports inside
functions count): no circle, every arrow points down — model never imports io, the numpy core
never reaches the scene, panels never reach operators, the add-on never reaches the tools."""
from __future__ import annotations

from import_graph import circles, graph, reached, room, rooms

TIER = "fast"

ARROWS = graph()
CORE = ("io", "model", "layout", "bundling", "plan")


def reaching(source_rooms, target_rooms) -> list[tuple[str, str]]:
    """(file, file it reaches) for files of `source_rooms` that reach a file of `target_rooms`."""
    return [(f, t) for f in ARROWS if room(f) in source_rooms
            for t in sorted(reached(ARROWS, f)) if room(t) in target_rooms]


def test_the_graph_is_read_from_the_code():
    assert "nnvis_addon/plan.py" in ARROWS["nnvis_addon/scene/build.py"]
    # lazy imports count: rebuild imports build_scene inside rebuild_run
    assert "nnvis_addon/scene/build.py" in ARROWS["nnvis_addon/scene/rebuild.py"]
    assert len(ARROWS) > 100 and sum(map(len, ARROWS.values())) > 300


def test_no_circle():
    assert circles(ARROWS) == []
    assert circles(rooms(ARROWS)) == []


def test_model_never_imports_io():
    assert reaching({"model"}, {"io"}) == []


def test_the_core_never_reaches_the_scene_the_ui_or_the_tools():
    assert reaching(CORE, {"scene", "operators", "panels", "tools", "record", "extension"}) == []


def test_panels_never_reach_operators():
    assert reaching({"panels"}, {"operators"}) == []


def test_the_addon_never_reaches_the_tools():
    assert [f for f in reached(ARROWS, "__init__.py") if room(f) in ("tools", "record")] == []
