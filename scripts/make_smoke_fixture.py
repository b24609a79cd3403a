"""Write the smoke profile's review fixture and its tiny WordPiece vocabulary.

The reviews are made up here from phrase templates (none comes from a real data set), so the fixture can ship
with the package. Run from the repository root: ``python scripts/make_smoke_fixture.py``.
"""

import csv
import random
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "bertpeft" / "resources" / "smoke"

PLACES = [
    "the diner",
    "this cafe",
    "the taco shop",
    "our hotel",
    "the bakery",
    "this pizza place",
    "the noodle bar",
    "the steakhouse",
    "this salon",
    "the car wash",
    "the sushi spot",
    "the brewery",
]
GOOD = [
    "the food was delicious",
    "the staff were friendly and quick",
    "everything tasted fresh",
    "the service was excellent",
    "prices were fair and portions generous",
    "we loved the cozy room",
    "the coffee was perfect",
    "our server was attentive and kind",
    "the dessert was amazing",
    "it was clean and bright",
    "the wait was short",
    "they fixed my order with a smile",
]
BAD = [
    "the food was cold and bland",
    "the staff were rude and slow",
    "everything tasted stale",
    "the service was terrible",
    "prices were high and portions tiny",
    "the room was dirty and loud",
    "the coffee was burnt",
    "our server ignored us",
    "the dessert was awful",
    "the tables were sticky",
    "we waited an hour",
    "they got my order wrong twice",
]
OPEN_GOOD = ["Great visit to {p}.", "I really like {p}.", "Five stars for {p}!", "{p} never lets me down."]
OPEN_BAD = ["Bad visit to {p}.", "I really dislike {p}.", "One star for {p}.", "{p} let me down again."]
CLOSE_GOOD = ["We will come back soon.", "Highly recommended.", "Best in town.", "Worth every penny."]
CLOSE_BAD = ["We will not come back.", "Avoid this place.", "Worst in town.", "A waste of money."]


def review(rng: random.Random, positive: bool) -> str:
    place = rng.choice(PLACES)
    opener = rng.choice(OPEN_GOOD if positive else OPEN_BAD).format(p=place)
    body = rng.sample(GOOD if positive else BAD, k=rng.randint(1, 4))
    close = rng.choice(CLOSE_GOOD if positive else CLOSE_BAD)
    text = f"{opener} " + ", and ".join(body) + f". {close}"
    return text[0].upper() + text[1:]


def unique_review(rng: random.Random, positive: bool, seen: set[str]) -> str:
    """A review whose text (whitespace normalised) no earlier row of either file has: the fixture has no duplicate,
    so no test review leaks from the training file."""
    while True:
        text = review(rng, positive)
        key = " ".join(text.split())
        if key not in seen:
            seen.add(key)
            return text


def main() -> None:
    rng = random.Random(20261123)
    OUT.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    for split, n in (("train", 160), ("test", 64)):
        rows = [(i % 2, unique_review(rng, bool(i % 2), seen)) for i in range(n)]
        rng.shuffle(rows)
        with open(OUT / f"{split}.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["label", "text"])
            writer.writerows(rows)
    words = set()
    for part in PLACES + GOOD + BAD + OPEN_GOOD + OPEN_BAD + CLOSE_GOOD + CLOSE_BAD:
        words.update(part.lower().replace("{p}", " ").replace(".", " ").replace("!", " ").split())
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    punctuation = [".", ",", "!", "?", "'", "-"]
    (OUT / "vocab.txt").write_text("\n".join(specials + punctuation + sorted(words)) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
