"""Tiny, valid example folders of every format the loaders read (for tests, docs and quick trials).

Each ``write_*`` function writes a complete folder that its loader accepts, including the awkward but
legal cases real data has (missing optional values, CRLF line ends, curly quotes), and returns the
folder. Tests break a copy on purpose and check the loader names file, row and field.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

FER_CLASS_NAMES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def _write(path: Path, lines: list[str], newline: str = "\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((newline.join(lines) + newline).encode("utf-8"))


def write_movielens_sample(root: str | Path) -> Path:
    """4 users (one with unknown age and gender, one only in ratings.csv), 4 items, 8 ratings.

    Item 3 has no poster and no year; item 4 has no genres; user 3 has no features at all.
    """
    root = Path(root)
    _write(root / "users.csv", [
        "user_id,age,gender,occupation,zip_code",
        "1,24,M,technician,85711",
        "2,,F,other,T8H1N",
        "3,,,,",
    ])
    _write(root / "items.csv", [
        "item_id,title,release_year,genres,poster",
        "1,Toy Story,1995,Animation|Children's|Comedy,posters/1.jpg",
        '2,"Usual Suspects, The",1995,Crime|Thriller,posters/2.jpg',
        "3,unknown,,unknown,",
        "4,Some Film,1997,,posters/4.jpg",
    ])
    _write(root / "ratings.csv", [
        "user_id,item_id,rating,timestamp",
        "1,1,5,881250949",
        "1,2,3,881250950",
        "2,1,4,891717742",
        "2,3,1,891717743",
        "3,2,2,878887116",
        "3,4,5,878887117",
        "9,1,4,878887118",
        "9,4,2,878887119",
    ])
    (root / "posters").mkdir(parents=True, exist_ok=True)
    for item in (1, 2, 4):
        (root / "posters" / f"{item}.jpg").write_bytes(b"\xff\xd8\xff\xd9")  # loaders only check presence
    return root


def write_fer2013_sample(root: str | Path, per_class: int = 2) -> Path:
    """``per_class`` images of each FER class in each split, with filenames."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    splits = ("train", "val", "test")
    n = len(FER_CLASS_NAMES) * per_class * len(splits)
    labels = np.tile(np.repeat(np.arange(len(FER_CLASS_NAMES)), per_class), len(splits)).astype(np.int64)
    split = np.repeat(np.array(splits), n // len(splits))
    np.savez_compressed(
        root / "fer2013.npz",
        images=rng.integers(0, 256, size=(n, 48, 48), dtype=np.uint8),
        labels=labels,
        split=split,
        filenames=np.array([f"{FER_CLASS_NAMES[c]}/img_{i}.jpg" for i, c in enumerate(labels)]),
        class_names=np.array(FER_CLASS_NAMES),
    )
    return root


MELD_HEADER = ("Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,"
               "StartTime,EndTime")


def write_meld_sample(root: str | Path) -> Path:
    """Three split files with CRLF line ends and curly quotes, every emotion present in train."""
    root = Path(root)
    emotions = ("neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear")
    sentiment = {"neutral": "neutral", "joy": "positive", "surprise": "positive"}
    for split, n in (("train", 7), ("dev", 3), ("test", 4)):
        lines = [MELD_HEADER]
        for i in range(n):
            emo = emotions[i % len(emotions)]
            text = f"It\u2019s line {i} of \u201c{split}\u201d, isn\u2019t it\u2026"
            lines.append(f'{i + 1},"{text}",Speaker {i % 2},{emo},{sentiment.get(emo, "negative")},'
                         f'{i // 3},{i % 3},8,21,"00:16:{10 + i:02d},059","00:16:{11 + i:02d},731"')
        _write(root / f"{split}_sent_emo.csv", lines, newline="\r\n")
    return root


def write_clinc150_sample(root: str | Path) -> Path:
    """Three in-scope intents in two domains, with out-of-scope splits and ``domains.json``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    intents = ("balance", "transfer", "weather")

    def pairs(intent: str, n: int, tag: str) -> list[list[str]]:
        return [[f"{tag} {intent} utterance {i}", intent] for i in range(n)]

    data = {
        "train": [p for it in intents for p in pairs(it, 3, "train")],
        "val": [p for it in intents for p in pairs(it, 1, "val")],
        "test": [p for it in intents for p in pairs(it, 2, "test")],
        "oos_train": pairs("oos", 2, "train"),
        "oos_val": pairs("oos", 1, "val"),
        "oos_test": pairs("oos", 2, "test"),
    }
    (root / "data_full.json").write_text(json.dumps(data, indent=1), encoding="utf-8")
    domains = {"banking": ["balance", "transfer"], "utility": ["weather"]}
    (root / "domains.json").write_text(json.dumps(domains), encoding="utf-8")
    return root


WORLD_ITEMS_HEADER = ("item_id,title,title_ja,title_zh,tags,creator_id,series_id,image,created_at,"
                      "subject,style,palette")


def write_world_catalog_sample(root: str | Path) -> Path:
    """``items.csv`` of an aigcrec world (3 items, multilingual tags, one without image) and images/."""
    root = Path(root)
    rows = [
        ("i0", "Cat at dusk", "夕暮れの猫", "黄昏的猫",
         [{"text": "cat", "lang": "en"}, {"text": "猫", "lang": "ja"}],
         "c0", "s0", "images/i0.png", "2024-01-01T00:00:00", "cat", "watercolor", "warm"),
        ("i1", "Robot", "ロボット", "机器人", [{"text": "robot", "lang": "en"}],
         "c1", "", "images/i1.png", "2024-01-02T00:00:00", "robot", "pixel", "cool"),
        ("i2", "Untitled", "", "", [], "c1", "", "", "2024-01-03T00:00:00", "castle", "ink", "mono"),
    ]
    lines = [WORLD_ITEMS_HEADER]
    for r in rows:
        tags = json.dumps(r[4], ensure_ascii=False).replace('"', '""')
        lines.append(",".join([*r[:4], f'"{tags}"', *r[5:]]))
    _write(root / "items.csv", lines)
    (root / "images").mkdir(parents=True, exist_ok=True)
    for item in ("i0", "i1"):
        (root / "images" / f"{item}.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return root


# -- servable samples: decodable images and enough interactions to train and serve a ranker ------------

def _image(path: Path, rng: np.random.Generator, fmt: str = "PNG") -> None:
    """A small decodable image (random colour blocks), so the content encoder reads it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    blocks = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    Image.fromarray(np.kron(blocks, np.ones((8, 8, 1), np.uint8))).save(path, format=fmt)


def _interaction_log(n_users: int, n_items: int, per_user: int, seed: int) -> list[tuple[int, int, int, int]]:
    """(user, item, label, unix time) rows: each user sees ``per_user`` distinct items, likes ~40 %."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        for k, i in enumerate(rng.choice(n_items, size=min(per_user, n_items), replace=False)):
            rows.append((u, int(i), int(rng.random() < 0.4), 1_700_000_000 + 3600 * u + 60 * k))
    return sorted(rows, key=lambda r: r[3])


def write_catalog_layout_sample(root: str | Path, n_items: int = 16, n_users: int = 8, per_user: int = 10,
                                broken: bool = False, seed: int = 0, images: bool = True) -> Path:
    """The ``catalog`` layout (``aigcrec.data.layouts``): items.csv (item_id, title, tags, image, creator_id),
    decodable PNGs in images/ and interactions.csv. No style, no created_at; item ``a1`` has no tags and
    ``a2`` no title. ``broken``: ``a0``'s image is corrupt bytes and ``a3`` has none (both reported, served text-only) and
    ``a4`` has no image, no title and no tags (reported, not served). ``images=False``: no item has an image
    (every item served text-only).
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    words = ("sunset", "forest", "portrait", "city", "ocean", "robot", "flower", "castle")
    lines = ["item_id,title,tags,image,creator_id"]
    for i in range(n_items):
        tags = [] if i == 1 else [{"text": words[i % len(words)], "lang": "en"},
                                  {"text": words[(i * 3 + 1) % len(words)], "lang": "en"}]
        title = "" if i == 2 else f"Piece {i}"
        image = "" if not images or (broken and i in (3, 4)) else f"images/a{i}.png"
        if broken and i == 4:
            tags, title = [], ""
        cell = json.dumps(tags).replace('"', '""')
        lines.append(f'a{i},{title},"{cell}",{image},artist{i % 3}')
        if image:
            _image(root / image, rng)
    if broken and images:
        (root / "images" / "a0.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    _write(root / "items.csv", lines)
    _write(root / "interactions.csv", ["user_id,item_id,label,timestamp"] + [
        f"user{u},a{i},{label},{t}" for u, i, label, t in _interaction_log(n_users, n_items, per_user, seed)])
    return root


def write_movielens_posters_sample(root: str | Path, n_items: int = 16, n_users: int = 8, per_user: int = 10,
                                   seed: int = 0) -> Path:
    """MovieLens with posters, servable: decodable JPEG posters, ratings 1-5 (>= 4 for ~40 %), users.csv
    without the last user (a user only in ratings.csv is legal)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    genres = ("Animation", "Comedy", "Drama", "Thriller", "Sci-Fi")
    _write(root / "users.csv", ["user_id,age,gender,occupation,zip_code"] + [
        f"{u + 1},{20 + u},{'MF'[u % 2]},other,{10000 + u}" for u in range(n_users - 1)])
    lines = ["item_id,title,release_year,genres,poster"]
    for i in range(n_items):
        lines.append(f"{i + 1},Film {i},{1990 + i % 10},{genres[i % 5]}|{genres[(i + 2) % 5]},posters/{i + 1}.jpg")
        _image(root / "posters" / f"{i + 1}.jpg", rng, "JPEG")
    _write(root / "items.csv", lines)
    _write(root / "ratings.csv", ["user_id,item_id,rating,timestamp"] + [
        f"{u + 1},{i + 1},{4 + int(rng.integers(0, 2)) if label else 1 + int(rng.integers(0, 3))},{t}"
        for u, i, label, t in _interaction_log(n_users, n_items, per_user, seed)])
    return root


CONTEXT_SCHEMA = {
    "name": "context-sample",
    "source": "written by aigcrec.data.samples",
    "rating_scale": [1, 5],
    "context": {
        "mood": {"type": "categorical", "kind": "mood", "values": ["happy", "sad"], "missing": 2,
                 "note": "the rater's stated mood"},
        "purpose": {"type": "categorical", "kind": "intent", "values": ["relax", "work", "party"], "missing": 3},
        "temperature": {"type": "numeric", "kind": "situation", "range": [-30, 50], "unit": "C", "missing": 4},
    },
    "counts": {"ratings": 10, "users": 4, "items": 4},
}


def write_context_sample(root: str | Path) -> Path:
    """A context-aware rating folder: 4 users (one only in ratings.csv, one with unknown attribute labels),
    4 items (one without title and genres, a metadata column), 10 ratings with missing context values,
    a duplicate row and an empty timestamp."""
    root = Path(root)
    _write(root / "context.json", [json.dumps(CONTEXT_SCHEMA, indent=1)])
    _write(root / "items.csv", [
        "item_id,title,genres,artist",
        "t1,Calm Waves,Ambient|Jazz,Lo",
        'tt2,"Party, All Night",Dance,DJ X',
        "t3,,,",
        "t4,Deadline,Rock,",
    ])
    _write(root / "users.csv", [
        "user_id,state,gender",
        "A1,CA,F",
        "b2,unknown,U",
        "c3,,",
    ])
    _write(root / "ratings.csv", [
        "user_id,item_id,rating,timestamp,mood,purpose,temperature",
        "A1,t1,5,881250949,sad,relax,12.5",
        "A1,tt2,2,881250950,sad,party,",
        "A1,tt2,5,881250951,happy,party,30",
        "b2,t1,1,,happy,work,",
        "b2,t3,3.5,,,,",
        "b2,t4,4,,happy,work,-3",
        "c3,t4,2,,sad,,21",
        "c3,t4,2,,sad,,21",
        "z9,t1,4,,,relax,",
        "z9,tt2,3,,happy,party,18",
    ])
    return root


SERVABLE_CONTEXT_SCHEMA = {
    "name": "context-servable-sample",
    "source": "written by aigcrec.data.samples.write_context_layout_sample",
    "rating_scale": [1, 5],
    "context": {
        "mood": {"type": "categorical", "kind": "mood", "values": ["happy", "sad"],
                 "note": "the rater's stated mood; empty = not stated"},
        "hour": {"type": "numeric", "kind": "situation", "range": [0, 23], "unit": "h",
                 "note": "time of day; noise in this sample"},
    },
}


def write_context_layout_sample(root: str | Path, n_items: int = 12, n_users: int = 10, per_user: int = 8,
                                seed: int = 0) -> Path:
    """The context-aware rating layout, servable (``aigcrec build``): context.json with a categorical
    ``mood`` (happy / sad, sometimes empty) and a numeric ``hour`` (0-23, sometimes empty), items.csv with
    titles, genres and an ``artist`` column (item ``m0`` has none of the three: titled by its id), ratings.csv
    without timestamps.

    Made so that the context must matter: each user rates ``per_user`` of the items, each once in a happy
    and once in a sad mood, and a third of them again without a mood; happy raters like the first half of
    the items (``m0`` .. ``m{n/2-1}``, 4-5) and dislike the rest (1-2), sad ones the other way round; a rating
    without a mood is 3 (not liked); ``hour`` is noise. The only way to tell liked from disliked for a
    user and an item is the mood.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    _write(root / "context.json", [json.dumps(SERVABLE_CONTEXT_SCHEMA, indent=1)])
    half = n_items // 2
    items = ["item_id,title,genres,artist", "m0,,,"]
    items += [f"m{i},{'Bright' if i < half else 'Quiet'} song {i},{'Pop|Dance' if i < half else 'Ambient'},"
              f"band{i % 3}" for i in range(1, n_items)]
    _write(root / "items.csv", items)
    lines = ["user_id,item_id,rating,timestamp,mood,hour"]
    for u in range(n_users):
        for k, i in enumerate(rng.choice(n_items, size=min(per_user, n_items), replace=False)):
            for mood in ("happy", "sad", "") if k % 3 == 0 else ("happy", "sad"):
                liked = (mood == "happy") == (i < half)
                rating = 3 if not mood else int(rng.integers(4, 6)) if liked else int(rng.integers(1, 3))
                hour = "" if rng.random() < 0.2 else str(int(rng.integers(0, 24)))
                lines.append(f"v{u},m{i},{rating},,{mood},{hour}")
    _write(root / "ratings.csv", lines)
    return root
