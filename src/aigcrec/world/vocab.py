"""The world's vocabulary: label sets, their en/ja/zh names, term definitions and title parts.

Tag translations here are the multilingual-mapping pairs; definitions are the term-explanation pairs.
"""

from __future__ import annotations

# The label sets the world layout validates live with the schemas (aigcrec.data reads worlds).
from aigcrec.data.schemas import EMOTIONS, INTENTS, PALETTES, STYLES, SUBJECTS

__all__ = [
           "ADJECTIVES",
           "CHARACTER_SUBJECTS",
           "DEFINITIONS",
           "EMOTIONS",
           "EMOTION_VA",
           "EXTRA_TAGS",
           "INTENTS",
           "NAMES",
           "PALETTES",
           "PALETTE_VA",
           "PLACES",
           "STYLES",
           "SUBJECTS",
]

CHARACTER_SUBJECTS: tuple[str, ...] = ("cat", "girl", "dragon", "robot")

# (english, japanese, chinese) for every label and tag.
NAMES: dict[str, tuple[str, str, str]] = {
    # subjects
    "cat": ("cat", "猫", "猫咪"),
    "girl": ("girl", "少女", "少女"),
    "dragon": ("dragon", "ドラゴン", "龙"),
    "castle": ("castle", "城", "城堡"),
    "forest": ("forest", "森", "森林"),
    "ocean": ("ocean", "海", "大海"),
    "robot": ("robot", "ロボット", "机器人"),
    "flowers": ("flowers", "花", "花朵"),
    # styles
    "cel": ("cel shading", "セル画", "赛璐璐上色"),
    "watercolor": ("watercolor", "水彩画", "水彩画"),
    "pencil": ("pencil sketch", "鉛筆スケッチ", "铅笔素描"),
    "pixel": ("pixel art", "ドット絵", "像素画"),
    "impasto": ("impasto oil painting", "厚塗り油彩", "厚涂油画"),
    "ink": ("ink line art", "墨のライン画", "墨线画"),
    "pointillism": ("pointillism", "点描", "点彩画"),
    "halftone": ("halftone comic", "網点コミック", "网点漫画"),
    # palettes (moods)
    "bright_warm": ("bright warm colors", "明るい暖色", "明亮暖色"),
    "dark_cool": ("dark cool colors", "暗い寒色", "暗冷色调"),
    "pastel_calm": ("calm pastel", "穏やかなパステル", "柔和粉彩"),
    "high_contrast_red": ("high contrast red", "高コントラストの赤", "高对比红色"),
    "misty_gray": ("misty gray", "霧の灰色", "雾灰色调"),
    "vivid_neon": ("vivid neon", "鮮やかなネオン", "鲜艳霓虹"),
    # extra descriptive tags
    "cute": ("cute", "かわいい", "可爱"),
    "fantasy": ("fantasy", "ファンタジー", "奇幻"),
    "night": ("night", "夜", "夜晚"),
    "sunset": ("sunset", "夕焼け", "日落"),
    "rain": ("rain", "雨", "下雨"),
    "snow": ("snow", "雪", "雪景"),
    "spring": ("spring", "春", "春天"),
    "summer": ("summer", "夏", "夏天"),
    "autumn": ("autumn", "秋", "秋天"),
    "winter": ("winter", "冬", "冬天"),
    "landscape": ("landscape", "風景", "风景"),
    "portrait": ("portrait", "ポートレート", "肖像"),
    "sci-fi": ("sci-fi", "SF", "科幻"),
    "cozy": ("cozy", "居心地のいい", "温馨"),
    "mysterious": ("mysterious", "神秘的", "神秘"),
    "peaceful": ("peaceful", "穏やか", "宁静"),
    "epic": ("epic", "壮大", "史诗"),
    "lonely": ("lonely", "孤独", "孤独"),
    "dreamy": ("dreamy", "夢のような", "梦幻"),
    "retro": ("retro", "レトロ", "复古"),
    "original character": ("original character", "オリジナルキャラクター", "原创角色"),
    "AI art": ("AI art", "AIアート", "AI绘画"),
}

EXTRA_TAGS: dict[str, tuple[str, ...]] = {
    "cat": ("cute", "cozy", "original character", "portrait"),
    "girl": ("portrait", "original character", "dreamy", "cute"),
    "dragon": ("fantasy", "epic", "mysterious"),
    "castle": ("fantasy", "landscape", "mysterious", "epic"),
    "forest": ("landscape", "peaceful", "mysterious", "autumn"),
    "ocean": ("landscape", "summer", "peaceful", "lonely"),
    "robot": ("sci-fi", "retro", "original character", "lonely"),
    "flowers": ("spring", "peaceful", "cute", "dreamy"),
}
SEASON_TAGS: tuple[str, ...] = ("night", "sunset", "rain", "snow", "spring", "summer", "autumn", "winter")

# Term explanations: style / palette / subject name -> a one-sentence definition.
DEFINITIONS: dict[str, str] = {
    "cel shading": "flat areas of colour with hard-edged shadows and bold dark outlines, like animation cels",
    "watercolor": "translucent washes of pigment that bleed into each other over visible paper grain",
    "pencil sketch": "grey graphite lines with cross-hatching for shading on white paper",
    "pixel art": "a picture built from large square pixels and a small palette, like old video games",
    "impasto oil painting": "thick oil paint laid on in short visible brush strokes that catch the light",
    "ink line art": "black ink lines of varying weight on a pale ground with little or no colour",
    "pointillism": "a picture made of many small separate dots of pure colour",
    "halftone comic": "printed comic look with screen-tone dot patterns and heavy black contours",
    "bright warm colors": "sunny yellows, oranges and reds that feel cheerful and energetic",
    "dark cool colors": "deep blues and teals in low light that feel quiet, sad or mysterious",
    "calm pastel": "soft pale pinks, mints and lilacs that feel gentle and relaxing",
    "high contrast red": "saturated reds against black with strong contrast that feels intense or angry",
    "misty gray": "muted greys and desaturated tones like fog that feel melancholic and still",
    "vivid neon": "glowing magenta, cyan and lime on dark backgrounds that feel exciting and surprising",
    "cat": "a small furry pet animal with pointed ears, whiskers and a long tail",
    "girl": "a young female character, usually shown from the waist up",
    "dragon": "a winged reptile-like creature from legends with a long neck and tail",
    "castle": "a fortified building with towers, walls and battlements",
    "forest": "a large area covered with trees",
    "ocean": "the open sea with waves meeting the horizon",
    "robot": "a machine shaped like a person or creature, with metal parts",
    "flowers": "blooming plants with colourful petals on green stems",
}

ADJECTIVES: tuple[tuple[str, str, str], ...] = (
    ("Quiet", "静かな", "安静的"), ("Golden", "黄金の", "金色的"), ("Lost", "失われた", "迷失的"),
    ("Little", "小さな", "小小的"), ("Midnight", "真夜中の", "午夜的"), ("Dreaming", "夢見る", "做梦的"),
    ("Ancient", "古の", "古老的"), ("Wandering", "さまよう", "流浪的"), ("Silver", "銀の", "银色的"),
    ("Hidden", "隠された", "隐藏的"), ("Brave", "勇敢な", "勇敢的"), ("Gentle", "やさしい", "温柔的"),
    ("Burning", "燃える", "燃烧的"), ("Sleepy", "眠たい", "困倦的"), ("Distant", "遠い", "遥远的"),
)
PLACES: tuple[tuple[str, str, str], ...] = (
    ("at Dawn", "夜明けに", "在黎明"), ("in the Rain", "雨の中で", "在雨中"), ("under the Stars", "星空の下で", "在星空下"),
    ("by the Sea", "海辺で", "在海边"), ("in Spring", "春に", "在春天"), ("at Dusk", "夕暮れに", "在黄昏"),
    ("in the Mist", "霧の中で", "在雾中"), ("of Summer", "夏の", "夏日的"), ("after School", "放課後に", "放学后"),
    ("in Winter", "冬に", "在冬天"),
)
TITLE_NOUNS: dict[str, tuple[str, str, str]] = {s: NAMES[s] for s in SUBJECTS}
TITLE_NOUNS["flowers"] = ("Flowers", "花々", "花朵")

CHARACTER_NAMES: tuple[tuple[str, str, str], ...] = (
    ("Mika", "ミカ", "美香"), ("Luna", "ルナ", "露娜"), ("Sora", "ソラ", "天空"), ("Kiki", "キキ", "琪琪"),
    ("Haru", "ハル", "小春"), ("Rin", "リン", "小凛"), ("Yuki", "ユキ", "小雪"), ("Momo", "モモ", "桃桃"),
    ("Aoi", "アオイ", "小葵"), ("Nano", "ナノ", "纳诺"), ("Pip", "ピップ", "皮普"), ("Toto", "トト", "托托"),
    ("Ember", "エンバー", "余烬"), ("Bolt", "ボルト", "螺栓"), ("Nori", "ノリ", "海苔"), ("Saki", "サキ", "早纪"),
    ("Ren", "レン", "小莲"), ("Kai", "カイ", "阿凯"), ("Tama", "タマ", "小玉"), ("Zeta", "ゼータ", "泽塔"),
    ("Hoshi", "ホシ", "星星"), ("Miso", "ミソ", "味噌"), ("Aria", "アリア", "艾莉亚"), ("Orion", "オリオン", "猎户"),
)
SERIES_WORDS: tuple[tuple[str, str, str], ...] = (
    ("Chronicles", "年代記", "编年史"), ("Diaries", "日記", "日记"), ("Adventures", "冒険", "冒险"),
    ("Tales", "物語", "物语"), ("Days", "の日々", "的日子"), ("Songs", "の歌", "之歌"),
    ("Journeys", "の旅", "之旅"), ("Memories", "の記憶", "的回忆"),
)

# Valence (unpleasant -1 .. pleasant +1) and arousal (calm -1 .. excited +1): the mood link.
EMOTION_VA: dict[str, tuple[float, float]] = {
    "anger": (-0.6, 0.8), "disgust": (-0.7, 0.2), "fear": (-0.6, 0.6), "joy": (0.8, 0.5),
    "neutral": (0.0, 0.0), "sadness": (-0.7, -0.6), "surprise": (0.3, 0.8),
}
PALETTE_VA: dict[str, tuple[float, float]] = {
    "bright_warm": (0.8, 0.5), "dark_cool": (-0.5, -0.3), "pastel_calm": (0.5, -0.7),
    "high_contrast_red": (-0.4, 0.9), "misty_gray": (-0.3, -0.6), "vivid_neon": (0.4, 0.9),
}
