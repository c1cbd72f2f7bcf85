"""Validation report of a whole aigcrec world folder (``aigcrec data validate --format world``).

The world format and its strict checks belong to :func:`aigcrec.world.load_world`; this module only
summarises what it loaded in the same :class:`DatasetReport` shape as the other datasets.
"""

from __future__ import annotations

from pathlib import Path

from aigcrec.data.checks import require_dir, value_counts
from aigcrec.data.report import DatasetReport


def world_report(root: str | Path, check_files: bool = True) -> DatasetReport:
    """Load the world at ``root`` (raising :class:`DataError` on bad input) and summarise it."""
    from aigcrec.world import load_world

    world = load_world(require_dir(root), check_files=check_files)
    items, users, inter, sessions = world.items, world.users, world.interactions, world.sessions
    tags = [t for ts in items["tags"] for t in ts]
    return DatasetReport(
        format="world",
        root=str(world.root),
        counts={
            "items": len(items),
            "users": len(users),
            "creators": int(items["creator_id"].nunique()),
            "sessions": len(sessions),
            "impressions": len(inter),
            "text_pairs": len(world.text_pairs),
            "tags": len(tags),
        },
        distributions={
            "impressions.label": value_counts(inter["label"]),
            "sessions.emotion": value_counts(sessions["emotion"]),
            "sessions.intent": value_counts(sessions["intent"]),
            "sessions.split": value_counts(sessions["split"]),
            "items.style": value_counts(items["style"]),
            "items.subject": value_counts(items["subject"]),
            "tag_language": value_counts(t["lang"] for t in tags),
            "text_pairs.kind": value_counts(world.text_pairs["kind"]),
        },
        missing={
            "items.tags": int(items["tags"].map(len).eq(0).sum()),
            "items.series_id": int(items["series_id"].eq("").sum()),
            **{f"users.{c}": int(users[c].isna().sum()) for c in users.columns if c != "user_id"},
        },
    )
