"""MELD text: ``{train,dev,test}_sent_emo.csv`` (UTF-8, CRLF line ends, curly quotes in utterances).

Required columns: ``Utterance, Speaker, Emotion, Sentiment, Dialogue_ID, Utterance_ID``; the columns
``Sr No., Season, Episode, StartTime, EndTime`` are validated when present and counted as missing when
absent. Emotions are MELD's 7 names, which are exactly :data:`~aigcrec.data.schemas.EMOTIONS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from aigcrec.data.checks import (
    check_in,
    check_nonempty,
    first_row,
    int_column,
    read_csv,
    require_dir,
    value_counts,
)
from aigcrec.data.errors import DataError
from aigcrec.data.report import DatasetReport
from aigcrec.data.schemas import EMOTIONS, AffectSample

SPLITS = ("train", "dev", "test")
SENTIMENTS = ("negative", "neutral", "positive")
REQUIRED = ("Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID")
OPTIONAL_INTS = {"Sr No.": "sr_no", "Season": "season", "Episode": "episode"}
OPTIONAL_TIMES = {"StartTime": "start_s", "EndTime": "end_s"}
_PLAIN = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                        "\u2013": "-", "\u2014": "-", "\u2026": "...", "\u00a0": " "})
_TIME = r"(\d+):(\d{2}):(\d{2})[,.](\d{1,3})"


def plain_text(text: str) -> str:
    """Curly quotes, dashes, ellipsis and no-break spaces replaced by their ASCII forms; stripped."""
    return text.translate(_PLAIN).strip()


@dataclass
class MELD:
    """A loaded MELD folder: one frame per split (``train``, ``dev``, ``test``).

    Columns: sample_id (``"<split>/dia<D>_utt<U>"``, MELD's own clip naming), dialogue_id, utterance_id
    (int64), speaker, utterance (as in the file), text (:func:`plain_text` of it), emotion (str),
    label (int64 index into :data:`EMOTIONS`), sentiment; and when the file has them sr_no, season,
    episode (Int64) and start_s, end_s (float seconds).
    """

    root: Path
    train: pd.DataFrame
    dev: pd.DataFrame
    test: pd.DataFrame
    report: DatasetReport
    label_names: tuple[str, ...] = EMOTIONS

    def split(self, name: str) -> pd.DataFrame:
        if name not in SPLITS:
            raise ValueError(f"split: expected one of {list(SPLITS)}, got {name!r}")
        return getattr(self, name)

    def samples(self, split: str) -> list[AffectSample]:
        """One :class:`AffectSample` (text + emotion) per utterance of ``split``."""
        frame = self.split(split)
        return [AffectSample(sample_id=s, text=t, emotion=e)
                for s, t, e in zip(frame["sample_id"], frame["text"], frame["emotion"])]


def _seconds(values: pd.Series, path: Path, field: str) -> pd.Series:
    parts = values.str.strip().str.extract(f"^{_TIME}$")
    bad = parts[0].isna()
    if bad.any():
        row = first_row(bad)
        raise DataError(path, "not a time", row=row, field=field, expected="H:MM:SS,mmm",
                        got=values.iloc[row - 1])
    h, m, s, ms = (parts[i].astype("int64") for i in range(4))
    return h * 3600 + m * 60 + s + ms / 10 ** parts[3].str.len()


def _read_split(root: Path, split: str, report: DatasetReport) -> pd.DataFrame:
    path = root / f"{split}_sent_emo.csv"
    raw = read_csv(path, REQUIRED)
    check_nonempty(raw["Utterance"], path, "Utterance")
    emotion = raw["Emotion"].str.strip()
    check_in(emotion, EMOTIONS, path, "Emotion")
    sentiment = raw["Sentiment"].str.strip()
    check_in(sentiment, SENTIMENTS, path, "Sentiment")
    dialogue = int_column(raw, "Dialogue_ID", path, lo=0).astype("int64")
    utterance = int_column(raw, "Utterance_ID", path, lo=0).astype("int64")
    sample_id = split + "/dia" + dialogue.astype(str) + "_utt" + utterance.astype(str)
    dup = sample_id.duplicated()
    if dup.any():
        row = first_row(dup)
        raise DataError(path, "repeated (Dialogue_ID, Utterance_ID)", row=row, field="Utterance_ID",
                        expected="one row per utterance of a dialogue", got=sample_id.iloc[row - 1])
    frame = pd.DataFrame({
        "sample_id": sample_id,
        "dialogue_id": dialogue,
        "utterance_id": utterance,
        "speaker": raw["Speaker"].str.strip(),
        "utterance": raw["Utterance"],
        "text": raw["Utterance"].map(plain_text),
        "emotion": emotion,
        "label": emotion.map(EMOTIONS.index).astype("int64"),
        "sentiment": sentiment,
    })
    for col, name in OPTIONAL_INTS.items():
        if col in raw.columns:
            frame[name] = int_column(raw, col, path, required=False, lo=0)
        report.missing[f"{split}.{col}"] = int(frame[name].isna().sum()) if col in raw.columns else len(raw)
    for col, name in OPTIONAL_TIMES.items():
        if col in raw.columns:
            frame[name] = _seconds(raw[col], path, col)
        report.missing[f"{split}.{col}"] = 0 if col in raw.columns else len(raw)
    report.missing[f"{split}.Speaker"] = int(frame["speaker"].eq("").sum())
    report.counts.update({
        split: len(frame),
        f"{split}.dialogues": int(frame["dialogue_id"].nunique()),
        f"{split}.speakers": int(frame["speaker"].nunique()),
    })
    report.distributions[f"{split}.emotion"] = value_counts(emotion)
    report.distributions[f"{split}.sentiment"] = value_counts(sentiment)
    return frame


def load_meld(root: str | Path) -> MELD:
    """Load and validate a MELD folder: ``{train,dev,test}_sent_emo.csv``."""
    root = require_dir(root)
    report = DatasetReport(format="meld", root=str(root))
    frames = {split: _read_split(root, split, report) for split in SPLITS}
    return MELD(root=root, report=report, **frames)
