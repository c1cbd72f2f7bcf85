"""The demo's stage list: each entry a module of ``aigcrec.demo`` with a ``run(ctx)``, each with its own name
(the key of its timings in ``metrics.json``), in the data flow's order."""

from __future__ import annotations

import importlib

from aigcrec.demo import STAGES, stage_name


def test_stages_are_demo_modules_with_distinct_names_in_data_flow_order():
    names = [stage_name(m) for m in STAGES]
    assert len(set(names)) == len(names), names
    assert all(m == f"aigcrec.demo.{n}" for m, n in zip(STAGES, names))
    assert names[:2] == ["world", "data"] and names.index("content") < names.index("ranking")
    assert names.index("affect") < names.index("ranking") < names.index("service") < names.index("simulate")
    for module in STAGES:
        assert callable(importlib.import_module(module).run), module
