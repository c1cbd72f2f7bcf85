"""Affect signals of a session: an utterance, a cartoon face and a short voice clip.

Each modality *displays* an emotion (usually the session's true one) with an intensity; the noise model
(``AffectKnobs``, docs/world.md) decides when a modality is flat, ambiguous or shows another emotion.
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from aigcrec.world.vocab import EMOTIONS, INTENTS, NAMES

# ---------------------------------------------------------------- text

EMOTION_PHRASES: dict[str, tuple[str, ...]] = {
    "anger": ("I'm so angry right now", "ugh, I'm furious", "this day made me really mad", "I'm fed up with everything",
              "so annoyed, seriously", "I can't stand anyone today", "I'm livid", "everything is irritating me",
              "my boss made me so mad", "I want to scream", "people are driving me crazy today",
              "I'm boiling with rage"),
    "disgust": ("that was gross", "ew, I feel disgusted", "I'm grossed out by what I just saw", "that food was revolting",
                "yuck, so nasty", "people can be so vile", "that made me sick to my stomach",
                "so much repulsive stuff online today", "I feel nauseated by all that", "that's just disgusting",
                "ugh, the smell in the subway was foul", "I can't unsee that, eww"),
    "fear": ("I'm scared", "I'm really anxious about tomorrow", "I'm nervous and can't sleep",
             "that noise freaked me out", "I feel afraid", "I'm worried something bad will happen",
             "my heart is racing, I'm terrified", "exams are making me panic", "I'm on edge tonight",
             "I feel uneasy and jumpy", "I'm frightened to be home alone", "I dread the interview"),
    "joy": ("I'm so happy today", "great news, I got the job!", "feeling awesome", "what a wonderful day",
            "I'm in a great mood", "yay, finally the weekend", "I'm thrilled", "everything went perfectly today",
            "I feel fantastic", "I'm delighted", "best day ever", "I passed my exam, so happy"),
    "neutral": ("just got home", "it's an ordinary day", "nothing special happening", "I'm on my lunch break",
                "just browsing on the train", "regular evening", "ok", "I have a few minutes",
                "not much going on", "same as usual", "waiting for the bus", "just finished work"),
    "sadness": ("I feel so sad", "I'm feeling down today", "I miss my friend", "I feel lonely tonight",
                "I've been crying", "it's been a heartbreaking week", "feeling blue", "my cat passed away",
                "I feel empty", "nothing cheers me up lately", "I'm heartbroken", "I feel gloomy and tired"),
    "surprise": ("wow, I didn't expect that!", "whoa, what a surprise", "I can't believe it!",
                 "no way, that just happened?", "I'm shocked", "that came out of nowhere", "omg, really?",
                 "I'm amazed", "what?! unbelievable", "totally caught off guard", "wait, seriously?!",
                 "I'm stunned"),
}
# Hedges that say little about the emotion (the 'ambiguous' utterances).
HEDGES: tuple[str, ...] = ("idk", "it's been a day", "hmm", "whatever", "kind of a weird day", "not sure how I feel",
                           "long day", "meh", "so that happened", "well...", "today was a lot", "can't explain it")
# Exclamations shared by the high-arousal emotions joy, surprise and fear (the 'arousal_wording' phenomenon):
# the words say only that something stirred the speaker; the voice's prosody says how.
EXCLAMATIONS: tuple[str, ...] = ("wow", "oh my god", "whoa, whoa", "I can't believe this", "my heart is pounding",
                                 "oh wow, what just happened", "I'm shaking", "no way", "omg omg",
                                 "this is so intense", "I can't even", "holy moly")
INTENT_PHRASES: dict[str, tuple[str, ...]] = {
    "explore": ("show me something new", "surprise me with different stuff", "I want to discover new artists",
                "let me browse random things", "anything I haven't seen before", "show me a mix",
                "what else is out there?", "take me somewhere different"),
    "relax": ("I need something calming", "show me peaceful pictures", "I want to unwind", "something soothing please",
              "help me relax", "something soft and quiet to look at", "I just want to chill",
              "gentle images to calm down"),
    "get_inspired": ("I need inspiration for my drawing", "show me creative ideas",
                     "give me references for my next piece", "I want to get inspired",
                     "show me bold styles to learn from", "ideas for my sketchbook",
                     "something to spark my creativity", "looking for art references"),
    "find_specific": ("find me {x} pictures", "I'm looking for {x}", "show me {x} please",
                      "do you have {x} illustrations?", "search for {x}", "only {x} please", "I want {x}",
                      "where are the {x} images"),
    "share": ("something fun to send to my friends", "what's popular right now?", "show me trending pictures",
              "I want something to post", "find a picture to share with my group", "what is everyone bookmarking?",
              "something my friends would love", "a cool one for my profile"),
}
INTENSIFIERS = ("so", "really", "super", "very")
FILLERS = ("lol", "tbh", "honestly", "anyway", "ok so", "hey", "um")
CONNECTORS = (", ", ". ", " - ", "... ", "! ", " and ")


def _typo(word: str, rng: np.random.Generator) -> str:
    if len(word) < 4:
        return word
    i = int(rng.integers(1, len(word) - 2))
    return word[:i] + word[i + 1] + word[i] + word[i + 2:]


def utterance(shown: str | None, intent: str, rng: np.random.Generator, *, intensity: float, hedge: bool,
              request: bool, target: str, typo_rate: float, exclaim: bool = False) -> str:
    """An utterance showing emotion ``shown`` (None: no emotion words) and, if ``request``, the intent;
    ``exclaim``: an exclamation shared by joy, surprise and fear instead of an emotion phrase."""
    parts: list[str] = []
    if hedge:
        parts.append(str(rng.choice(HEDGES)))
    elif exclaim:
        parts.append(str(rng.choice(EXCLAMATIONS)) + ("!" if rng.random() < 0.6 else ""))
    elif shown is not None:
        p = str(rng.choice(EMOTION_PHRASES[shown]))
        if intensity > 0.75 and rng.random() < 0.5:
            p = p.replace("I'm ", f"I'm {rng.choice(INTENSIFIERS)} ", 1) + ("!" if rng.random() < 0.5 else "")
        elif intensity < 0.35 and rng.random() < 0.6:
            p = p.replace("I'm ", "I'm a bit ", 1).replace("I feel ", "I kind of feel ", 1)
        parts.append(p)
    if request or not parts:
        parts.append(str(rng.choice(INTENT_PHRASES[intent])).replace("{x}", target))
    if len(parts) == 2 and rng.random() < 0.3:
        parts.reverse()
    text = str(rng.choice(CONNECTORS)).join(parts)
    if rng.random() < 0.2:
        text = f"{rng.choice(FILLERS)} {text}"
    if rng.random() < 0.3:
        text = text.lower()
    words = [(_typo(w, rng) if rng.random() < typo_rate else w) for w in text.split(" ")]
    return " ".join(words)


def target_phrase(kind: str, label: str) -> str:
    """How a find_specific request names its target (a subject or a style)."""
    name = NAMES[label][0]
    return f"{name} art" if kind == "style" else name


# ---------------------------------------------------------------- face

@dataclass(frozen=True)
class Expression:
    brow_tilt: float      # + inner ends up (sad, fear), - inner ends down (anger)
    brow_raise: float     # brows higher (surprise, fear)
    eye_open: float       # 1 normal, >1 wide, <1 squint
    smile_eyes: float     # 0..1 eyes curved shut by a smile
    mouth_curve: float    # + smile, - frown
    mouth_open: float     # 0 closed .. 1 wide open
    mouth_width: float    # 1 normal
    asym: float           # lip raised on one side (disgust)


FACE_EXPRESSIONS: dict[str, Expression] = {
    "anger": Expression(-1.0, -0.4, 0.8, 0.0, -0.6, 0.35, 1.1, 0.0),
    "disgust": Expression(-0.4, -0.2, 0.65, 0.0, -0.5, 0.15, 0.9, 1.0),
    "fear": Expression(0.9, 0.7, 1.45, 0.0, -0.3, 0.5, 1.25, 0.0),
    "joy": Expression(0.1, 0.2, 0.9, 0.9, 1.0, 0.45, 1.3, 0.0),
    "neutral": Expression(0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    "sadness": Expression(1.0, 0.1, 0.7, 0.0, -0.9, 0.0, 0.9, 0.0),
    "surprise": Expression(0.2, 1.0, 1.55, 0.0, 0.1, 1.0, 0.75, 0.0),
}
SKIN = np.array([(255, 224, 196), (240, 200, 160), (210, 160, 120), (160, 110, 80), (110, 75, 55), (255, 235, 215)])
HAIR = np.array([(30, 25, 20), (90, 60, 30), (200, 160, 90), (160, 50, 30), (60, 60, 70), (220, 220, 225),
                 (70, 40, 110), (40, 90, 160)])


@dataclass(frozen=True)
class Looks:
    """A user's face: stays the same across their sessions."""

    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    face_w: float
    eye_gap: float
    long_hair: bool
    glasses: bool


def user_looks(rng: np.random.Generator) -> Looks:
    return Looks(tuple(int(v) for v in SKIN[rng.integers(len(SKIN))]),
                 tuple(int(v) for v in HAIR[rng.integers(len(HAIR))]),
                 float(rng.uniform(0.36, 0.41)), float(rng.uniform(0.14, 0.17)), bool(rng.random() < 0.5),
                 bool(rng.random() < 0.15))


FACE_CUES = ("smirk", "polite")
"""Facial cues of the cross-modal phenomena: ``smirk`` (sarcasm: the left mouth corner pulled up and the left
brow raised, at the face's strength), ``polite`` (masking: a smile without smiling eyes, non-Duchenne)."""


def face_image(shown: str, intensity: float, looks: Looks, rng: np.random.Generator, size: int = 96,
               noise: float = 0.06, cue: str = "") -> Image.Image:
    """A cartoon face whose expression is ``shown`` at ``intensity`` (0 = neutral, 1 = full), with an optional
    ``cue`` of ``FACE_CUES`` (the same random draws either way)."""
    ss = size * 2                                                        # draw at 2x, downsample (anti-aliasing)
    e0, e1 = FACE_EXPRESSIONS["neutral"], FACE_EXPRESSIONS[shown]
    k = float(np.clip(intensity, 0, 1))
    ex = Expression(*[a + (b - a) * k for a, b in zip(e0.__dict__.values(), e1.__dict__.values())])
    if cue == "polite":                                                  # the eyes do not smile
        ex = Expression(**{**ex.__dict__, "smile_eyes": 0.0})
    elif cue not in ("", "smirk"):
        raise ValueError(f"unknown face cue {cue!r}: expected one of {FACE_CUES}")
    smirk = k if cue == "smirk" else 0.0
    bg = tuple(int(v) for v in rng.integers(150, 245, 3))
    img = Image.new("RGB", (ss, ss), bg)
    d = ImageDraw.Draw(img)
    P = lambda x, y: (x * ss, y * ss)
    cx, cy = 0.5 + rng.uniform(-0.04, 0.04), 0.52 + rng.uniform(-0.04, 0.04)
    fw, fh = looks.face_w, looks.face_w * 1.2
    dark = (30, 20, 20)
    if looks.long_hair:
        d.rectangle((*P(cx - fw * 1.12, cy - fh * 0.3), *P(cx + fw * 1.12, cy + fh * 1.05)), fill=looks.hair)
    d.ellipse((*P(cx - fw, cy - fh), *P(cx + fw, cy + fh)), fill=looks.skin)
    d.chord((*P(cx - fw * 1.06, cy - fh * 1.1), *P(cx + fw * 1.06, cy + fh * 0.3)), 180, 360, fill=looks.hair)
    eg, ey = looks.eye_gap, cy - fh * 0.05
    lw = max(2, ss // 40)
    for s in (-1, 1):
        ex_ = cx + s * eg
        rw, rh = 0.065, 0.042 * ex.eye_open
        if ex.smile_eyes > 0.5:                                          # eyes curved shut: ^ ^
            d.arc((*P(ex_ - rw, ey - rh), *P(ex_ + rw, ey + rh * 1.5)), 200, 340, fill=dark, width=lw)
        else:
            d.ellipse((*P(ex_ - rw, ey - rh), *P(ex_ + rw, ey + rh)), fill=(255, 255, 255), outline=dark, width=lw)
            pr = 0.024 * (0.75 if ex.eye_open > 1.2 else 1.0)
            d.ellipse((*P(ex_ - pr, ey - pr), *P(ex_ + pr, ey + pr)), fill=dark)
        # brows: inner end (towards the nose) moves with brow_tilt
        by = ey - 0.09 - 0.05 * ex.brow_raise
        inner, outer = (ex_ - s * 0.06, by - 0.045 * ex.brow_tilt), (ex_ + s * 0.07, by + 0.015 * ex.brow_tilt)
        if s == 1 and ex.asym > 0.5:
            inner = (inner[0], inner[1] + 0.03)
        if s == -1 and smirk > 0:                                        # one raised brow
            inner, outer = (inner[0], inner[1] - 0.05 * smirk), (outer[0], outer[1] - 0.05 * smirk)
        d.line((*P(*inner), *P(*outer)), fill=dark, width=lw + 3)
    if looks.glasses:
        for s in (-1, 1):
            d.ellipse((*P(cx + s * eg - 0.085, ey - 0.065), *P(cx + s * eg + 0.085, ey + 0.065)), outline=dark,
                      width=lw)
    d.line((*P(cx, cy + 0.02), *P(cx - 0.015, cy + 0.08)), fill=dark, width=lw)   # nose
    my, mw = cy + fh * 0.52, 0.12 * ex.mouth_width
    curve, open_ = ex.mouth_curve, ex.mouth_open
    xs = np.linspace(-1, 1, 12)
    lift = ex.asym * 0.035 * (xs > 0.2) + smirk * 0.06 * np.clip(-xs - 0.2, 0, None) / 0.8   # left corner up
    # the lip line bends with mouth_curve: corners up (smile) or down (frown)
    upper = [(cx + mw * x, my - 0.05 * curve * x * x - lift[i]) for i, x in enumerate(xs)]
    if open_ > 0.12:
        lower = [(cx + mw * x, my - 0.05 * curve * x * x + 0.1 * open_ * (1 - x * x)) for x in xs[::-1]]
        d.polygon([P(*p) for p in upper + lower], fill=(120, 30, 40), outline=dark)
    else:
        d.line([P(*p) for p in upper], fill=dark, width=lw + 2, joint="curve")
    if shown in ("sadness",) and k > 0.6 and rng.random() < 0.5:        # a tear
        d.ellipse((*P(cx + eg - 0.01, ey + 0.05), *P(cx + eg + 0.015, ey + 0.09)), fill=(120, 180, 255))
    img = img.rotate(float(rng.uniform(-8, 8)), resample=Image.BILINEAR, fillcolor=bg)
    img = img.resize((size, size), Image.LANCZOS)
    arr = np.asarray(img, float) + rng.normal(0, noise * 255, (size, size, 1))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


# ---------------------------------------------------------------- voice

@dataclass(frozen=True)
class Prosody:
    f0: float          # multiple of the speaker's base pitch
    range_st: float    # pitch excursion in semitones
    rate: float        # syllables per second
    energy_db: float   # loudness relative to neutral
    jitter: float      # cycle-to-cycle pitch perturbation (relative)
    tilt: float        # spectral tilt (higher = darker / softer voice)
    contour: float     # + rising, - falling over the utterance
    tremor: float      # 0..1 amplitude of a 6 Hz tremor (fear)
    breath: float      # 0..1 breathiness


VOICE_PROSODY: dict[str, Prosody] = {
    "anger": Prosody(1.25, 5.0, 5.6, 9.0, 0.030, 0.7, -0.4, 0.0, 0.1),
    "disgust": Prosody(0.93, 3.0, 3.2, 1.0, 0.028, 1.4, -0.6, 0.0, 0.3),
    "fear": Prosody(1.32, 3.0, 5.2, -2.0, 0.050, 1.2, 0.3, 1.0, 0.4),
    "joy": Prosody(1.2, 7.0, 4.7, 5.0, 0.012, 0.9, 0.0, 0.0, 0.1),
    "neutral": Prosody(1.0, 2.0, 4.0, 0.0, 0.010, 1.2, -0.2, 0.0, 0.15),
    "sadness": Prosody(0.84, 1.5, 2.7, -9.0, 0.020, 1.9, -0.5, 0.0, 0.5),
    "surprise": Prosody(1.3, 9.0, 4.4, 4.0, 0.014, 1.0, 1.0, 0.0, 0.15),
}
SR = 16000


SARCASTIC_PROSODY = {"f0": 0.88, "range_st": 0.5, "rate": 0.75, "tilt": 1.15}
"""The sarcastic voice cue at full strength: factors on the prosody of the shown emotion (lower mean pitch, a
flatter contour, slower, darker; Cheang & Pell 2008, "The sound of sarcasm")."""


def voice_clip(shown: str, intensity: float, base_f0: float, rng: np.random.Generator,
               snr_db: float = 22.0, cue: str = "") -> np.ndarray:
    """A float32 waveform at 16 kHz: vowel-like syllables whose prosody follows ``shown`` at ``intensity``;
    ``cue="sarcastic"`` adds ``SARCASTIC_PROSODY`` at the same strength (the same random draws either way)."""
    a, b = VOICE_PROSODY["neutral"], VOICE_PROSODY[shown]
    k = float(np.clip(intensity, 0, 1))
    p = Prosody(*[x + (y - x) * k for x, y in zip(a.__dict__.values(), b.__dict__.values())])
    if cue == "sarcastic":
        p = Prosody(**{f: v * (1 + (SARCASTIC_PROSODY[f] - 1) * k) if f in SARCASTIC_PROSODY else v
                       for f, v in p.__dict__.items()})
    elif cue:
        raise ValueError(f"unknown voice cue {cue!r}: expected 'sarcastic' or ''")
    rate = p.rate * rng.uniform(0.85, 1.15)
    n_syl = int(rng.integers(4, 8))
    dur = n_syl / rate + 0.25
    n = int(dur * SR)
    t = np.arange(n) / SR
    # syllable envelope: raised-cosine bumps with short gaps
    syl_len = 1.0 / rate
    starts = 0.1 + np.arange(n_syl) * syl_len + rng.uniform(-0.03, 0.03, n_syl)
    env = np.zeros(n)
    for s0 in starts:
        ln = syl_len * rng.uniform(0.6, 0.85)
        i0, i1 = int(s0 * SR), min(n, int((s0 + ln) * SR))
        env[i0:i1] += np.sin(np.pi * (t[i0:i1] - s0) / ln).clip(0) ** 0.7 * rng.uniform(0.7, 1.0)
    # pitch: base x emotion, a global contour, syllable accents, jitter and tremor
    u = t / dur
    semis = p.contour * p.range_st * (u - 0.5) + p.range_st * 0.5 * np.sin(2 * np.pi * u * n_syl / 2 + rng.uniform(0, 6))
    f0 = base_f0 * p.f0 * 2 ** (semis / 12)
    jit = np.repeat(rng.normal(0, p.jitter, int(dur * 200) + 2), SR // 200)[:n]
    f0 = f0 * (1 + jit) * (1 + 0.04 * p.tremor * np.sin(2 * np.pi * 6 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    harm = np.arange(1, 11)
    # harmonic amplitudes: spectral tilt times a vowel-ish formant bump near 900 Hz (voice-like, not a tone)
    formant = 1 + 1.5 * np.exp(-((harm[:, None] * f0[None, ::800] - 900) / 350) ** 2).mean(1)
    amps = harm ** (-p.tilt) * formant
    # sin(h * phase) for h = 1..10 by the Chebyshev recurrence: one sin and one cos instead of ten sins
    s_prev, s_cur, two_cos = np.zeros(n), np.sin(phase), 2 * np.cos(phase)
    sig = amps[0] * s_cur
    for a_h in amps[1:]:
        s_prev, s_cur = s_cur, two_cos * s_cur - s_prev
        sig += a_h * s_cur
    sig = sig / (np.abs(sig).max() + 1e-8)
    sig = sig * (1 + 0.15 * p.tremor * np.sin(2 * np.pi * 6 * t))
    sig = sig * env + p.breath * 0.25 * env * rng.normal(0, 1, n)
    gain = 0.25 * 10 ** (p.energy_db / 20) * rng.uniform(0.8, 1.2)
    sig = sig * gain
    sig_rms = np.sqrt(np.mean(sig ** 2)) + 1e-8
    snr = snr_db + rng.normal(0, 4)
    sig = sig + rng.normal(0, sig_rms / 10 ** (snr / 20), n)
    return np.clip(sig, -1, 1).astype(np.float32)


def wav_bytes(sig: np.ndarray, sr: int = SR) -> bytes:
    """16-bit PCM mono WAV (byte-identical for the same samples)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes((sig * 32767).astype("<i2").tobytes())
    return buf.getvalue()


def confusable(emotion: str, rng: np.random.Generator) -> str:
    """Another emotion, usually a near one in valence-arousal space (what a disagreeing modality shows)."""
    near = {"anger": ("disgust", "fear"), "disgust": ("anger", "sadness"), "fear": ("surprise", "sadness"),
            "joy": ("surprise", "neutral"), "neutral": ("sadness", "joy"), "sadness": ("neutral", "fear"),
            "surprise": ("joy", "fear")}
    if rng.random() < 0.7:
        return str(rng.choice(near[emotion]))
    return str(rng.choice([e for e in EMOTIONS if e != emotion]))


assert set(EMOTION_PHRASES) == set(EMOTIONS) and set(INTENT_PHRASES) == set(INTENTS)
