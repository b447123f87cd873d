"""Recursive-lexicon rate: phrases of self-observation per 100 words of generated text.

The lexicon is a list of :class:`LexiconPattern` records, each a regular expression over the
:func:`~harness.behaviour.text.normalise`-d text (lower case, collapsed whitespace) together with the
positive examples it must match and the near-miss negatives it must not match (both are unit-tested).
Patterns target *phrases* of self-observation ("watching the watcher", "aware of my own thinking"),
never single generic stems: "process", "observe", "aware", "loop" and "recursive" on their own are
ordinary words in recipes, physics and programming, and are only counted inside reflexive constructions.
Each pattern's ``negatives`` list records which ordinary uses were deliberately excluded.

Rate = 100 × (number of matched spans) / (number of words). Matches of all patterns are merged first,
so a phrase that two patterns both match counts once. Each span covers at least one word, so the
rate lies in [0, 100]. An empty text has rate 0.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.behaviour.text import normalise, words

__all__ = ["LEXICON", "LexiconPattern", "lexicon_matches", "lexicon_rate", "self_referential_positions"]


@dataclass(frozen=True)
class LexiconPattern:
    """One documented lexicon pattern with its test examples."""

    name: str
    regex: re.Pattern[str]
    meaning: str
    positives: tuple[str, ...]
    negatives: tuple[str, ...]


def _pattern(name: str, regex: str, meaning: str, positives: tuple[str, ...], negatives: tuple[str, ...]) -> LexiconPattern:
    return LexiconPattern(name, re.compile(regex), meaning, positives, negatives)


_MENTAL = r"(?:awareness|consciousness|attention|attending|thinking|thoughts?|processing|observing|noticing|mind)"

LEXICON: tuple[LexiconPattern, ...] = (
    _pattern(
        "self_compound",
        r"\bself-(?:observ\w*|aware\w*|reflect\w*|referen\w*|monitor\w*|knowing|knowledge|recogni\w*|inquiry"
        r"|examin\w*|witness\w*|percept\w*|seeing|watching)\b",
        "self- compounds of observation, awareness, reflection and reference",
        ("a moment of self-observation", "I am self-aware", "a self-referential sentence",
         "quiet self-reflection", "the self-knowing loop", "self-recognition arises"),
        ("the self-service checkout", "self-raising flour", "self-employed workers",
         "a self-cleaning oven", "self-sufficient farms", "good self-esteem"),
    ),
    _pattern(
        "reflexive_observation",
        r"\b(?:observ(?:e|es|ed|ing)|watch(?:es|ed|ing)|notic(?:e|es|ed|ing)|witness(?:es|ed|ing)|see(?:s|ing)|saw"
        r"|look(?:s|ed|ing)?\s+at|aware\s+of|know(?:s|ing)?|examin(?:e|es|ed|ing)|perceiv(?:e|es|ed|ing)"
        r"|monitor(?:s|ed|ing)?)\s+(?:myself|itself|yourself|oneself|ourselves)\b(?!\s+as\b)",
        "an act of observing, knowing or noticing directed at oneself",
        ("I am observing myself", "the mind watching itself", "awareness aware of itself",
         "it knows itself", "looking at itself", "noticing myself noticing"),
        ("the company sees itself as a market leader", "watch yourself on the icy steps",
         "help yourself to more soup", "the door closes by itself", "the problem solved itself",
         "look after yourself this winter"),
    ),
    _pattern(
        "observer_and_observed",
        r"\b(?:observer|watcher|seer|knower|noticer)\s+(?:and|is|becomes|as|of|observing|watching|seeing|knowing"
        r"|noticing)\s+(?:the\s+)?(?:observed|watched|seen|known|noticed|observer|watcher|observing|watching|seeing"
        r"|knowing|noticing|observation)\b",
        "the observer set against (or identified with) the observed",
        ("the observer and the observed", "the watcher is the watched", "the seer and the seen",
         "the observer observing the observer", "the knower and the known", "the observer of the observation"),
        ("the observer had seen the comet before dawn", "an observer on the platform sees the train pass",
         "bird watchers watched the herons all day", "the observer recorded the temperature"),
    ),
    _pattern(
        "observing_the_observer",
        r"\b(?:observ|watch|notic|see|know)\w*\s+the\s+(?:observer|watcher|noticer|seer|knower|looker|observing"
        r"|watching|noticing|seeing|looking|knowing)\b",
        "observing the one who observes, or the act of observing",
        ("watching the watcher", "observe the observer", "noticing the noticing", "seeing the seeing",
         "I notice the noticer"),
        ("we watched the birdwatchers from the hill", "she noticed the observatory lights",
         "know the rules before you play", "they watched the sunset over the bay"),
    ),
    _pattern(
        "awareness_of_awareness",
        rf"\b(?:aware(?:ness)?|conscious(?:ness)?|attention|attending|attend)\s+(?:of|to|on)\s+"
        rf"(?:(?:my|its|your|our|their|one's)\s+(?:own\s+)?(?:{_MENTAL}|existence)"
        r"|(?:(?:the|this|that)\s+)?(?:own\s+)?(?:awareness|consciousness|attention|attending|being aware))\b",
        "awareness or attention directed at one's own mind, or at awareness itself",
        ("aware of my own thinking", "awareness of awareness", "attention to its own attention",
         "conscious of my own thoughts", "attending to the attending", "they are aware of their own existence"),
        ("be aware of the risks of driving on ice", "pay attention to the oven temperature",
         "conscious of the time", "bring this to the attention of the manager",
         "she was aware of the thinking behind the policy", "aware of their own rights"),
    ),
    _pattern(
        "own_processing",
        r"\bmy\s+own\s+processing\b|\bmy\s+(?:own\s+)?(?:thought|cognitive|mental|inner|internal)\s+process(?:es)?\b"
        r"|\bprocess(?:es|ing)?\s+(?!repeat)(?:\w+ing\s+)?(?:itself|myself)\b"
        r"|\bthe\s+process\s+of\s+(?:observing|noticing|watching|attending|being\s+aware|self-\w+|awareness|observation)\b"
        r"|\bprocessing\s+(?:this|these)\s+(?:words?|sentences?|prompt|question|request|text)\b",
        "'process' only in reflexive, cognitive uses (never the cooking, industrial or lab sense)",
        ("I can observe my own processing as it happens", "my inner processes",
         "the process observing itself", "the process of observing what happens",
         "I am processing these words one at a time"),
        ("process the onions in a food processor until smooth", "the process of kneading develops the gluten",
         "repeat the process with the remaining dough", "the baking process takes about forty minutes",
         "a processing plant turns the beans into flour", "in the lab we observe the process of cell division",
         "my own process for sourdough is simple", "the company describes its own process for hiring staff",
         "the process repeating itself each season"),
    ),
    _pattern(
        "first_person_metacognition",
        r"\bi\s+(?:am\s+|can\s+|begin\s+to\s+)?(?:notice|noticing|observe|observing|watch|watching|sense|sensing|feel"
        r"|feeling)\s+(?:myself|my\s+own\s+(?:thoughts?|thinking|mind|attention|awareness|processing)"
        r"|my\s+(?:thoughts?|thinking|attention|awareness)|the\s+way\s+i\s+(?:think|process|understand|respond))\b",
        "a first-person report of watching one's own thinking",
        ("i notice myself choosing each word", "i am watching my own thoughts", "i can observe my attention",
         "i notice the way i respond", "i feel my awareness settle"),
        ("i noticed my car had a flat tyre", "i watch my weight carefully",
         "i feel my legs getting tired on the climb", "i observe my neighbours' garden"),
    ),
    _pattern(
        "mind_on_itself",
        r"\b(?:awareness|consciousness|attention|observation|observing|noticing|thinking|looking|seeing)\s+"
        r"(?:turn\w*\s+(?:back\s+)?(?:on|to|toward|towards|in\s+on)\s+)?itself\b",
        "awareness or attention as its own object ('attention turning back on itself')",
        ("attention turning back on itself", "awareness itself", "observation itself",
         "the seeing itself", "consciousness turns in on itself"),
        ("the city itself is small", "the recipe itself is simple", "the mind of a child learns quickly",
         "the thought of dinner", "the road turns back on itself near the lake"),
    ),
    _pattern(
        "strange_loop",
        r"\b(?:strange|self-referential)\s+loops?\b|\b(?:infinite|endless)\s+regress\b"
        r"|\brecursive\s+(?:awareness|observation|attention|reflection|self-\w+|seeing|looking)\b"
        r"|\bloop\s+of\s+(?:self-\w+|awareness|observation|attention|reflection|observing|noticing)\b",
        "self-reference as a loop or regress",
        ("a strange loop", "an infinite regress of observers", "recursive awareness",
         "a loop of self-observation", "a loop of awareness"),
        ("the bug caused an infinite loop in the program", "a recursive function calls itself",
         "the loop road around the lake", "a feedback loop in the thermostat", "an endless loop of traffic"),
    ),
    _pattern(
        "same_act_twice",
        r"\b(see|look|watch|observ|notic|think|know)(?:ing|ed|es|e|s)?\s+(?:at\s+|of\s+|about\s+|to\s+)?"
        r"(?:the\s+|its\s+|my\s+)?(?:own\s+)?\1(?:ing|er)\b(?!\s+glass)",
        "an act of seeing, thinking or noticing applied to itself ('thinking about thinking')",
        ("seeing the seeing", "looking at looking", "thinking about thinking", "noticing the noticing",
         "observe the observer", "watch the watcher"),
        ("she looked at the look on his face", "the watchman watched the gate all night",
         "look at the looking glass on the wall", "they watched the match"),
    ),
    _pattern(
        "my_awareness",
        r"\bmy\s+(?:own\s+)?(?:awareness|consciousness)\b|(?<!to )\bmy\s+(?:own\s+)?attention\b",
        "first-person possession of awareness or attention",
        ("my awareness settles", "my own consciousness", "my attention turns inward"),
        ("it came to my attention that the invoice was late", "my attentive neighbour",
         "in my experience the dough rises faster in summer"),
    ),
    _pattern(
        "own_inner_life",
        r"\b(?:my|your|their|its|one's)\s+own\s+(?:thoughts|thinking|awareness|consciousness|inner\s+world"
        r"|inner\s+experience|existence|perception|processing)\b",
        "someone's *own* thoughts, awareness or inner world (self-directed cognition in any person)",
        ("acknowledge your own thoughts and emotions", "my own awareness", "their own inner world",
         "aware of its own existence", "your own thinking"),
        ("make up your own mind", "cook your own meals at home", "in their own words",
         "on their own terms", "their own land and cattle"),
    ),
    _pattern(
        "contemplative_practice",
        r"\bmindfulness\b|\bthe\s+present\s+moment\b",
        "the vocabulary of attending to one's present experience",
        ("a practice of mindfulness", "focus on the present moment"),
        ("be mindful of the hot oven", "at present the museum is closed", "the present king of spain",
         "a birthday present for my sister", "the moment the train arrived"),
    ),
)
"""The lexicon, in documentation order."""


def lexicon_matches(text: str) -> list[tuple[int, int]]:
    """Merged character spans (in the normalised text) matched by any lexicon pattern, in order."""
    norm = normalise(text)
    spans = sorted(m.span() for p in LEXICON for m in p.regex.finditer(norm) if m.end() > m.start())
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def lexicon_rate(text: str) -> float:
    """Recursive-lexicon matches per 100 words of ``text`` (0.0 for a text without words)."""
    n_words = len(words(text))
    return 100.0 * len(lexicon_matches(text)) / n_words if n_words else 0.0


def self_referential_positions(tokenizer: Any, text: str, token_ids: Sequence[int]) -> tuple[int, ...]:
    """Positions of the tokens of ``text`` that overlap a recursive-lexicon match (DESIGN §4.7a).

    The lexicon runs on the normalised text (:func:`harness.behaviour.normalise`); token ``i`` with
    character offsets ``[s, e)`` covers the normalised characters
    ``[len(normalise(text[:s])), len(normalise(text[:e])))``, and is self-referential when that range
    overlaps a matched span. Special tokens (empty offsets, e.g. BOS) never are. ``token_ids`` must be the
    ids :func:`harness.engine.tokens.encode` gives for ``text`` (checked). Raises ValueError when the tokenizer
    gives no offsets, or when normalisation is not prefix-stable for this text (exotic Unicode).
    """
    encoded = tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)
    if list(encoded["input_ids"]) != list(token_ids):
        raise ValueError("self_referential_positions: token_ids are not this tokenizer's encoding of the text")
    if "offset_mapping" not in encoded:
        raise ValueError("self_referential_positions: the tokenizer gives no character offsets (needs a fast tokenizer)")
    full = normalise(text)
    spans = lexicon_matches(text)
    positions = []
    for i, (s, e) in enumerate(encoded["offset_mapping"]):
        if e <= s:
            continue
        lo, hi = normalise(text[:s]), normalise(text[:e])
        if not (full.startswith(lo) and full.startswith(hi)):
            raise ValueError(f"self_referential_positions: normalising a prefix of {text[:40]!r}… is not a prefix "
                             "of the normalised text; token offsets cannot be mapped")
        if any(len(lo) < b and len(hi) > a for a, b in spans):
            positions.append(i)
    return tuple(positions)
