"""A synthetic text classification set for the text trainer tests, built on the fly (no download)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _words(text: str) -> list[str]:
    return text.split()


TOPICS = {
    "computing": _words("server laptop keyboard software compile database network python code debug memory "
                        "processor cloud browser linux"),
    "cooking": _words("recipe oven flour butter sugar bake kitchen onion garlic simmer boil pepper dough salad chef"),
    "sports": _words("goal match team player coach referee stadium score league football tennis racket tournament "
                     "season striker"),
}
# Shared words carry no class signal: the models must find the topic words among them.
NOISE = _words("the a of and to in it was is very quite today yesterday really some with for on this that we they")


def topic_texts(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """``n`` sentences (classes in turn) of 2-4 topic words shuffled among 3-7 noise words; target ``topic``."""
    rng = np.random.default_rng(seed)
    names = sorted(TOPICS)
    texts, labels = [], []
    for i in range(n):
        topic = names[i % len(names)]
        words = [*rng.choice(TOPICS[topic], size=rng.integers(2, 5)), *rng.choice(NOISE, size=rng.integers(3, 8))]
        rng.shuffle(words)
        sentence = " ".join(str(w) for w in words)
        texts.append(sentence[0].upper() + sentence[1:] + ".")
        labels.append(topic)
    return pd.DataFrame({"text": texts}), pd.Series(labels, name="topic")
