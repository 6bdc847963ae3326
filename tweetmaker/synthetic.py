"""The synthetic twin of the AI Tweets corpus, written in exactly the Kaggle layout.

Real tweets cannot be downloaded on offline machines, so tests, CI, benchmarks and the offline demo use this
twin. Every tweet is drawn from latent attributes -- a topic drawn as a recognisable motif, a dominant colour,
a count of motifs laid out on a grid and a background style -- and its text and hashtags mention those
attributes in words, with synonyms, varied order and the noise of real tweets (emoji, URLs, @mentions).
Matching text to image therefore has to be learned, and relevance can be judged by attribute as well as by
the exact pair. The same seed always gives the same bytes.

    python -m tweetmaker.synthetic --output_dir DIR [--rows 3000] [--seed 0] [--bad_rows]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import struct
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from PIL import Image, ImageDraw

TOPICS = ("robot", "brain", "chip", "rocket", "cloud", "chart", "eye", "lightbulb")
COLORS = {
    "red": (215, 30, 35),
    "green": (30, 150, 60),
    "blue": (35, 75, 215),
    "yellow": (235, 195, 20),
    "purple": (135, 45, 175),
    "orange": (245, 125, 20),
    "gray": (105, 105, 105),
}
BACKGROUNDS = ("plain", "gradient", "stripes", "dots")
MAX_COUNT = 4
CSV_COLUMNS = (
    "id", "image_id", "text", "hashtags", "date", "username", "likes", "retweets", "replies",
    "attr_topic", "attr_color", "attr_count", "attr_background",
)

# Words a person would use for each attribute: (singular, plural) for topics, so counts read naturally.
TOPIC_WORDS = {
    "robot": [("robot", "robots"), ("android", "androids"), ("robotic assistant", "robotic assistants"),
              ("humanoid bot", "humanoid bots")],
    "brain": [("brain", "brains"), ("neural net", "neural nets"), ("digital mind", "digital minds"),
              ("cortex", "cortices")],
    "chip": [("chip", "chips"), ("processor", "processors"), ("GPU", "GPUs"), ("silicon die", "silicon dies")],
    "rocket": [("rocket", "rockets"), ("spaceship", "spaceships"), ("launch vehicle", "launch vehicles"),
               ("rocketship", "rocketships")],
    "cloud": [("cloud", "clouds"), ("cloud server", "cloud servers"), ("data cloud", "data clouds"),
              ("cloud platform", "cloud platforms")],
    "chart": [("chart", "charts"), ("bar graph", "bar graphs"), ("metrics dashboard", "metrics dashboards"),
              ("growth chart", "growth charts")],
    "eye": [("eye", "eyes"), ("camera eye", "camera eyes"), ("vision sensor", "vision sensors"),
            ("watchful eye", "watchful eyes")],
    "lightbulb": [("lightbulb", "lightbulbs"), ("bright idea", "bright ideas"), ("light bulb", "light bulbs"),
                  ("glowing bulb", "glowing bulbs")],
}
COLOR_WORDS = {
    "red": ["red", "crimson", "scarlet"],
    "green": ["green", "emerald", "lime-green"],
    "blue": ["blue", "cobalt", "navy-blue"],
    "yellow": ["yellow", "golden", "sunny yellow"],
    "purple": ["purple", "violet", "lilac"],
    "orange": ["orange", "tangerine", "amber"],
    "gray": ["gray", "grey", "slate"],
}
COUNT_WORDS = {1: ["a single", "one", "a lone"], 2: ["two", "a pair of", "twin"], 3: ["three", "a trio of"],
               4: ["four", "a quartet of"]}
BACKGROUND_WORDS = {
    "plain": ["on a plain background", "on a clean backdrop", "minimal style"],
    "gradient": ["on a soft gradient", "with a gradient backdrop", "gradient vibes"],
    "stripes": ["on a striped background", "with stripes behind", "striped backdrop"],
    "dots": ["on a polka-dot background", "with dots everywhere", "dotted backdrop"],
}
TOPIC_TAGS = {
    "robot": ["Robotics", "Robots", "Robot", "HumanoidRobots"],
    "brain": ["NeuralNetworks", "Neuroscience", "BrainInspiredAI", "NeuralNets"],
    "chip": ["Semiconductors", "GPU", "Chips", "Hardware"],
    "rocket": ["SpaceTech", "Rockets", "SpaceX", "LaunchDay"],
    "cloud": ["CloudComputing", "Cloud", "AWS", "Serverless"],
    "chart": ["DataViz", "Analytics", "Charts", "Metrics"],
    "eye": ["ComputerVision", "Vision", "CV", "ImageRecognition"],
    "lightbulb": ["Innovation", "Ideas", "Creativity", "Inspiration"],
}
GENERIC_TAGS = ["AI", "MachineLearning", "ArtificialIntelligence", "Tech", "DataScience", "GenAI", "ML"]
TEMPLATES = [
    "{count} {color} {topic} {background}",
    "Look at {count} {color} {topic}!",
    "Today's mood: {color} {topic} {background}",
    "{topic_cap} in {color}, {background}",
    "Can't stop thinking about {count} {topic} {background}",
    "New drop: {color} {topic}",
    "What do you see? {count} {topic}, {color} of course",
    "Our latest render shows {count} {color} {topic}",
    "{color_cap} {topic} are the future",
    "Behold: {topic} {background}, all {color}",
    "Sketching {count} {topic} tonight",
    "Hot take: {color} {topic} beat everything else",
    "{count} {topic} walk into a lab {background}",
    "The {color} {topic} nobody asked for",
    "My new wallpaper: {topic} {background}",
    "Is this the best {topic} art? {color} and bold",
]
EMOJI = ["🚀", "🤖", "🔥", "✨", "💡", "🧠", "📈", "👀", "☁️", "🎉", "🙌", "💯"]
NOISE_WORDS = ["honestly", "wow", "thread 🧵", "lol", "big news", "finally", "ngl", "RT", "imo", "so cool"]
MENTIONS = ["@OpenAI", "@huggingface", "@GoogleAI", "@nvidia", "@ylecun", "@karpathy", "@MetaAI", "@kaggle"]
USERNAMES = [f"{first}{second}" for first in ("ai", "ml", "data", "neural", "deep", "tech")
             for second in ("_guru", "wizard", "nerd", "fan", "daily", "labs", "notes")]
PALE_BACKGROUNDS = [(246, 245, 240), (236, 240, 246), (244, 238, 232), (238, 246, 238), (248, 248, 248)]
BAD_ROW_KINDS = ("missing_file", "truncated_jpeg", "not_an_image", "path_traversal", "decompression_bomb",
                 "absolute_path")


@dataclass(frozen=True)
class SyntheticTweet:
    """One tweet of the twin with the latent attributes it was drawn from."""

    id: str
    image_id: str
    text: str
    hashtags: str
    date: str
    username: str
    likes: int
    retweets: int
    replies: int
    topic: str
    color: str
    count: int
    background: str

    def csv_row(self) -> dict[str, object]:
        return {
            "id": self.id, "image_id": self.image_id, "text": self.text, "hashtags": self.hashtags,
            "date": self.date, "username": self.username, "likes": self.likes, "retweets": self.retweets,
            "replies": self.replies, "attr_topic": self.topic, "attr_color": self.color,
            "attr_count": self.count, "attr_background": self.background,
        }


def generate_corpus(
    output_dir: str | Path, rows: int = 3000, seed: int = 0, test_fraction: float = 0.2, bad_rows: bool = False
) -> dict[str, object]:
    """Write ``train.csv``, ``test.csv`` and ``images/`` under ``output_dir``; return a summary.

    With ``bad_rows=True`` a few broken rows of every kind in ``BAD_ROW_KINDS`` are added to both splits, plus
    rows with an empty text and hashtags (which are good rows). The summary lists the bad rows by id and kind.
    """
    if rows < 2:
        raise ValueError(f"rows must be at least 2 (one per split), got {rows}.")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}.")
    output = Path(output_dir)
    images_dir = output / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    tweets = [_draw_tweet(rng, index, images_dir) for index in range(rows)]
    test_count = max(1, round(rows * test_fraction))
    splits = {"train": tweets[:-test_count], "test": tweets[-test_count:]}
    rows_by_split: dict[str, list[dict[str, object]]] = {
        name: [tweet.csv_row() for tweet in part] for name, part in splits.items()
    }
    bad: dict[str, str] = {}
    if bad_rows:
        for split_name, split_rows in rows_by_split.items():
            bad.update(_inject_bad_rows(rng, split_name, split_rows, images_dir))
    for split_name, split_rows in rows_by_split.items():
        with open(output / f"{split_name}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            writer.writerows(split_rows)
    summary = {
        "seed": seed,
        "rows": {name: len(part) for name, part in rows_by_split.items()},
        "bad_rows": bad,
    }
    (output / "synthetic_manifest.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    return summary


def _draw_tweet(rng: random.Random, index: int, images_dir: Path) -> SyntheticTweet:
    topic = rng.choice(TOPICS)
    color = rng.choice(list(COLORS))
    count = rng.randint(1, MAX_COUNT)
    background = rng.choice(BACKGROUNDS)
    tweet_id = f"syn{index:06d}"
    image_id = _write_image(rng, images_dir, tweet_id, topic, color, count, background)
    # Some topics are a little more popular than others, as on real Twitter.
    likes = int(rng.lognormvariate(3.0 + (0.25 * TOPICS.index(topic)) % 1.5, 1.2))
    start = datetime(2023, 1, 1)
    date = start + timedelta(seconds=rng.randrange(int(timedelta(days=900).total_seconds())))
    return SyntheticTweet(
        id=tweet_id,
        image_id=image_id,
        text=_compose_text(rng, topic, color, count, background),
        hashtags=_compose_hashtags(rng, topic, color),
        date=date.strftime("%Y-%m-%d %H:%M:%S"),
        username=rng.choice(USERNAMES),
        likes=likes,
        retweets=sum(rng.random() < 0.15 for _ in range(min(likes, 2000))),
        replies=sum(rng.random() < 0.05 for _ in range(min(likes, 2000))),
        topic=topic,
        color=color,
        count=count,
        background=background,
    )


def _compose_text(rng: random.Random, topic: str, color: str, count: int, background: str) -> str:
    singular, plural = rng.choice(TOPIC_WORDS[topic])
    template = rng.choice(TEMPLATES)
    # Not every tweet says everything: the topic is always named, other attributes only sometimes,
    # so the text tower has to learn which words matter.
    mentions_count = "{count}" in template and rng.random() < 0.8
    topic_word = plural if (count > 1 and mentions_count) or "{count}" not in template and count > 1 else singular
    slots = {
        "topic": topic_word,
        "topic_cap": topic_word[:1].upper() + topic_word[1:],
        "color": rng.choice(COLOR_WORDS[color]) if rng.random() < 0.75 else "",
        "count": rng.choice(COUNT_WORDS[count]) if mentions_count else "",
        "background": rng.choice(BACKGROUND_WORDS[background]) if rng.random() < 0.5 else "",
    }
    slots["color_cap"] = slots["color"][:1].upper() + slots["color"][1:]
    text = " ".join(template.format(**slots).split())
    text = text.replace(" ,", ",").replace(" !", "!").strip(" ,")
    extras = []
    if rng.random() < 0.4:
        extras.append(rng.choice(NOISE_WORDS))
    if rng.random() < 0.5:
        extras.append(rng.choice(EMOJI))
    if rng.random() < 0.3:
        extras.append(rng.choice(MENTIONS))
    if rng.random() < 0.3:
        extras.append(f"https://t.co/{''.join(rng.choices('abcdefghijkmnpqrstuvwxyz0123456789', k=10))}")
    rng.shuffle(extras)
    if extras and rng.random() < 0.3:
        return " ".join([extras[0], text, *extras[1:]])
    return " ".join([text, *extras])


def _compose_hashtags(rng: random.Random, topic: str, color: str) -> str:
    tags = rng.sample(TOPIC_TAGS[topic], k=rng.randint(1, 2))
    tags += rng.sample(GENERIC_TAGS, k=rng.randint(0, 3))
    if rng.random() < 0.15:
        tags.append(color.capitalize())
    rng.shuffle(tags)
    if rng.random() < 0.1:  # real users repeat a tag in another case: "#AI #ai"
        tags.append(rng.choice(tags).lower())
    return " ".join(f"#{tag}" for tag in tags)


def _write_image(
    rng: random.Random, images_dir: Path, tweet_id: str, topic: str, color: str, count: int, background: str
) -> str:
    width = rng.randrange(200, 561, 8)
    height = int(width * rng.choice((0.75, 1.0, 1.0, 1.25, 0.5625)))
    image = render_image(topic, color, count, background, (width, height), seed=rng.randrange(2**31))
    # Real tweet images come in many modes and formats; the conversion and the towers must cope with all.
    kind = rng.choices(["jpeg", "png", "rgba", "palette", "gray"], weights=[50, 20, 10, 10, 10])[0]
    if kind == "gray" and color != "gray":
        kind = "jpeg"
    if kind == "jpeg":
        name = f"{tweet_id}.jpg"
        image.save(images_dir / name, format="JPEG", quality=rng.choice((80, 90, 95)))
    elif kind == "gray":
        name = f"{tweet_id}.jpg"
        image.convert("L").save(images_dir / name, format="JPEG", quality=90)
    elif kind == "png":
        name = f"{tweet_id}.png"
        image.save(images_dir / name, format="PNG")
    elif kind == "rgba":
        name = f"{tweet_id}.png"
        with_alpha = image.convert("RGBA")
        with_alpha.putalpha(255)
        with_alpha.save(images_dir / name, format="PNG")
    else:
        name = f"{tweet_id}.png"
        image.quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(images_dir / name, format="PNG")
    return name


def render_image(
    topic: str, color: str, count: int, background: str, size: tuple[int, int], seed: int = 0
) -> Image.Image:
    """Draw ``count`` motifs of ``topic`` in ``color`` on a ``background``-style canvas of ``size`` pixels.

    Backgrounds use pale, unsaturated tones so the motif colour dominates every picture.
    """
    rng = random.Random(seed)
    width, height = size
    base = rng.choice(PALE_BACKGROUNDS)
    image = Image.new("RGB", size, base)
    draw = ImageDraw.Draw(image)
    _paint_background(draw, background, size, base, rng)
    columns = 1 if count == 1 else 2
    rows = 1 if count <= 2 else 2
    cell_w, cell_h = width / columns, height / rows
    cells = [(c, r) for r in range(rows) for c in range(columns)][:count]
    for column, row in cells:
        side = min(cell_w, cell_h) * rng.uniform(0.6, 0.8)
        cx = (column + 0.5) * cell_w + rng.uniform(-0.05, 0.05) * cell_w
        cy = (row + 0.5) * cell_h + rng.uniform(-0.05, 0.05) * cell_h
        box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
        MOTIFS[topic](draw, box, COLORS[color], base)
    return image


def _paint_background(draw: ImageDraw.ImageDraw, style: str, size: tuple[int, int], base: tuple[int, int, int],
                      rng: random.Random) -> None:
    width, height = size
    shade = tuple(max(0, channel - 22) for channel in base)
    if style == "gradient":
        for y in range(height):
            t = y / max(1, height - 1)
            draw.line([(0, y), (width, y)], fill=tuple(int(b + (s - b) * t) for b, s in zip(base, shade)))
    elif style == "stripes":
        step = rng.randrange(12, 28)
        for x in range(-height, width, step * 2):
            draw.polygon([(x, 0), (x + step, 0), (x + step + height, height), (x + height, height)], fill=shade)
    elif style == "dots":
        step = rng.randrange(14, 26)
        for y in range(step // 2, height, step):
            for x in range(step // 2, width, step):
                draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=shade)


def _robot(draw, box, color, base):
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    draw.rectangle([x0 + 0.15 * w, y0 + 0.25 * h, x1 - 0.15 * w, y1 - 0.05 * h], fill=color)
    for ex in (0.35, 0.65):
        draw.ellipse([x0 + (ex - 0.08) * w, y0 + 0.42 * h, x0 + (ex + 0.08) * w, y0 + 0.58 * h], fill=base)
    draw.rectangle([x0 + 0.35 * w, y0 + 0.72 * h, x0 + 0.65 * w, y0 + 0.8 * h], fill=base)
    draw.line([(x0 + 0.5 * w, y0 + 0.25 * h), (x0 + 0.5 * w, y0 + 0.08 * h)], fill=color, width=max(2, int(w / 20)))
    draw.ellipse([x0 + 0.44 * w, y0, x0 + 0.56 * w, y0 + 0.12 * h], fill=color)


def _brain(draw, box, color, base):
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    draw.ellipse([x0, y0 + 0.15 * h, x0 + 0.6 * w, y1 - 0.15 * h], fill=color)
    draw.ellipse([x0 + 0.4 * w, y0 + 0.15 * h, x1, y1 - 0.15 * h], fill=color)
    line = max(2, int(w / 30))
    draw.line([(x0 + 0.5 * w, y0 + 0.2 * h), (x0 + 0.5 * w, y1 - 0.2 * h)], fill=base, width=line)
    for fy in (0.35, 0.5, 0.65):
        draw.arc([x0 + 0.1 * w, y0 + (fy - 0.1) * h, x0 + 0.45 * w, y0 + (fy + 0.1) * h], 200, 340, fill=base,
                 width=line)
        draw.arc([x0 + 0.55 * w, y0 + (fy - 0.1) * h, x0 + 0.9 * w, y0 + (fy + 0.1) * h], 200, 340, fill=base,
                 width=line)


def _chip(draw, box, color, base):
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    draw.rectangle([x0 + 0.2 * w, y0 + 0.2 * h, x1 - 0.2 * w, y1 - 0.2 * h], fill=color)
    draw.rectangle([x0 + 0.35 * w, y0 + 0.35 * h, x1 - 0.35 * w, y1 - 0.35 * h], fill=base)
    pin = max(2, int(w / 25))
    for i in range(5):
        t = 0.27 + i * 0.115
        draw.line([(x0 + t * w, y0 + 0.05 * h), (x0 + t * w, y0 + 0.2 * h)], fill=color, width=pin)
        draw.line([(x0 + t * w, y1 - 0.2 * h), (x0 + t * w, y1 - 0.05 * h)], fill=color, width=pin)
        draw.line([(x0 + 0.05 * w, y0 + t * h), (x0 + 0.2 * w, y0 + t * h)], fill=color, width=pin)
        draw.line([(x1 - 0.2 * w, y0 + t * h), (x1 - 0.05 * w, y0 + t * h)], fill=color, width=pin)


def _rocket(draw, box, color, base):
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    draw.rectangle([x0 + 0.38 * w, y0 + 0.3 * h, x0 + 0.62 * w, y0 + 0.8 * h], fill=color)
    draw.polygon([(x0 + 0.38 * w, y0 + 0.3 * h), (x0 + 0.5 * w, y0), (x0 + 0.62 * w, y0 + 0.3 * h)], fill=color)
    draw.polygon([(x0 + 0.38 * w, y0 + 0.6 * h), (x0 + 0.2 * w, y1), (x0 + 0.38 * w, y0 + 0.85 * h)], fill=color)
    draw.polygon([(x0 + 0.62 * w, y0 + 0.6 * h), (x0 + 0.8 * w, y1), (x0 + 0.62 * w, y0 + 0.85 * h)], fill=color)
    draw.ellipse([x0 + 0.44 * w, y0 + 0.38 * h, x0 + 0.56 * w, y0 + 0.5 * h], fill=base)


def _cloud(draw, box, color, base):
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    draw.ellipse([x0, y0 + 0.4 * h, x0 + 0.45 * w, y0 + 0.85 * h], fill=color)
    draw.ellipse([x0 + 0.2 * w, y0 + 0.15 * h, x0 + 0.75 * w, y0 + 0.7 * h], fill=color)
    draw.ellipse([x0 + 0.55 * w, y0 + 0.35 * h, x1, y0 + 0.85 * h], fill=color)
    draw.rectangle([x0 + 0.22 * w, y0 + 0.6 * h, x0 + 0.78 * w, y0 + 0.85 * h], fill=color)


def _chart(draw, box, color, base):
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    for i, top in enumerate((0.6, 0.35, 0.1)):
        left = x0 + (0.1 + i * 0.3) * w
        draw.rectangle([left, y0 + top * h, left + 0.22 * w, y1 - 0.08 * h], fill=color)
    draw.line([(x0, y1 - 0.05 * h), (x1, y1 - 0.05 * h)], fill=color, width=max(2, int(h / 30)))


def _eye(draw, box, color, base):
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    draw.ellipse([x0, y0 + 0.25 * h, x1, y1 - 0.25 * h], fill=color)
    draw.ellipse([x0 + 0.3 * w, y0 + 0.3 * h, x1 - 0.3 * w, y1 - 0.3 * h], fill=base)
    draw.ellipse([x0 + 0.42 * w, y0 + 0.42 * h, x1 - 0.42 * w, y1 - 0.42 * h], fill=color)


def _lightbulb(draw, box, color, base):
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    draw.ellipse([x0 + 0.2 * w, y0, x1 - 0.2 * w, y0 + 0.65 * h], fill=color)
    draw.rectangle([x0 + 0.36 * w, y0 + 0.55 * h, x1 - 0.36 * w, y0 + 0.8 * h], fill=color)
    for i in range(3):
        y = y0 + (0.83 + i * 0.06) * h
        draw.line([(x0 + 0.38 * w, y), (x1 - 0.38 * w, y)], fill=color, width=max(2, int(h / 40)))
    draw.arc([x0 + 0.35 * w, y0 + 0.15 * h, x1 - 0.35 * w, y0 + 0.45 * h], 180, 360, fill=base,
             width=max(2, int(w / 30)))


MOTIFS = {"robot": _robot, "brain": _brain, "chip": _chip, "rocket": _rocket, "cloud": _cloud, "chart": _chart,
          "eye": _eye, "lightbulb": _lightbulb}


def _inject_bad_rows(rng: random.Random, split: str, rows: list[dict[str, object]], images_dir: Path
                     ) -> dict[str, str]:
    """Append one broken row of every kind (and one blank-text row, which is good) to ``rows``."""
    bad: dict[str, str] = {}
    template = dict(rows[0])
    for kind in BAD_ROW_KINDS:
        tweet_id = f"bad-{split}-{kind}"
        row = dict(template, id=tweet_id, text=f"broken row ({kind})")
        if kind == "missing_file":
            row["image_id"] = f"{tweet_id}.jpg"
        elif kind == "truncated_jpeg":
            good = render_image("robot", "red", 1, "plain", (320, 240), seed=rng.randrange(2**31))
            path = images_dir / f"{tweet_id}.jpg"
            good.save(path, format="JPEG", quality=90)
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
            row["image_id"] = path.name
        elif kind == "not_an_image":
            path = images_dir / f"{tweet_id}.jpg"
            path.write_bytes(b"<html><body>this is not a picture</body></html>\n" * 20)
            row["image_id"] = path.name
        elif kind == "path_traversal":
            row["image_id"] = "../train.csv"
        elif kind == "absolute_path":
            row["image_id"] = "/etc/hostname"
        elif kind == "decompression_bomb":
            path = images_dir / f"{tweet_id}.png"
            path.write_bytes(decompression_bomb_png(20_000, 20_000))
            row["image_id"] = path.name
        rows.append(row)
        bad[tweet_id] = kind
    blank = dict(template, id=f"blank-{split}", text="", hashtags="")
    rows.append(blank)
    return bad


def decompression_bomb_png(width: int, height: int) -> bytes:
    """A valid, tiny PNG (1-bit, all black) that decodes to ``width`` x ``height`` pixels.

    Built chunk by chunk with zlib so that making it costs a few megabytes, not the gigabytes it expands to.
    """
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # bit depth 1, grayscale
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description="Write the synthetic twin of the AI Tweets corpus (Kaggle layout).")
    parser.add_argument("--output_dir", required=True, help="Directory for train.csv, test.csv and images/.")
    parser.add_argument("--rows", type=int, default=3000, help="Number of good tweets (default 3000).")
    parser.add_argument("--seed", type=int, default=0, help="Random seed; the same seed gives the same bytes.")
    parser.add_argument("--test_fraction", type=float, default=0.2, help="Share of tweets in test.csv.")
    parser.add_argument("--bad_rows", action="store_true", help="Also write broken rows, for testing the converter.")
    args = parser.parse_args(argv)
    summary = generate_corpus(args.output_dir, rows=args.rows, seed=args.seed, test_fraction=args.test_fraction,
                              bad_rows=args.bad_rows)
    print(f"Wrote the synthetic twin to {args.output_dir}: {summary['rows']} rows, {len(summary['bad_rows'])} bad.")
    return summary


if __name__ == "__main__":
    main()
