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
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from PIL import Image

from tweetmaker.synthetic_images import MOTIFS, decompression_bomb_png, render_image  # noqa: F401 - re-exported

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
