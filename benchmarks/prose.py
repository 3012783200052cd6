"""Varied English prose of a given length, never the same text twice.

Guards cache their findings by text, so a benchmark that repeated one prompt
would time cache hits. These prompts are built from a pool of everyday
sentences with random names, numbers, emails, phone numbers and cities mixed
in, so the PII guard has entities to find and the NER model real sentences to
parse. Nothing is read from disk; a seed makes a run reproducible.
"""

from __future__ import annotations

import random

_FIRST = ["Alice", "Bruno", "Chen", "Dana", "Elif", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Keiko", "Luis",
          "Maya", "Noor", "Oscar", "Priya", "Quentin", "Rosa", "Sven", "Tara", "Umar", "Vera", "Wen", "Yusuf"]
_LAST = ["Andersen", "Baptiste", "Castillo", "Dubois", "Eriksen", "Fischer", "Garcia", "Hoffmann", "Ivanova",
         "Jensen", "Kowalski", "Larsen", "Moreau", "Nakamura", "Okafor", "Petrov", "Rossi", "Schmidt", "Tanaka"]
_CITIES = ["Lyon", "Porto", "Leeds", "Graz", "Ghent", "Malmo", "Turin", "Bergen", "Cork", "Utrecht", "Brno",
           "Denver", "Austin", "Quebec", "Adelaide", "Osaka", "Pune", "Nairobi", "Bilbao", "Tallinn"]
_THINGS = ["the quarterly report", "the onboarding guide", "the garden shed", "the choir rehearsal", "the new printer",
           "the kitchen renovation", "the science fair", "the team offsite", "the library catalogue", "the bike repair",
           "the customer survey", "the release notes", "the volunteer rota", "the recipe book", "the chess club"]
_SENTENCES = [
    "{name} asked whether {thing} could be finished by {day}.",
    "Please send the draft to {email} before {hour} o'clock.",
    "The meeting in {city} was moved to room {number} on the {ordinal} floor.",
    "{name} thinks {thing} needs about {number} more hours of work.",
    "We counted {number} replies, most of them from people in {city}.",
    "You can reach {name} on {phone} if the door is locked.",
    "The summary should mention {thing} and the feedback from {name}.",
    "Last {day}, {name} and {other} reviewed {thing} together.",
    "Could you rewrite this paragraph so that it sounds friendlier and shorter?",
    "The budget line for {thing} went from {number} to {number2} units.",
    "{name} from {city} wrote that the figures in section {number} look right.",
    "I would like a short list of questions to ask about {thing}.",
    "Keep the tone neutral and explain each step in plain words.",
    "The previous version forgot to credit {name} for the photographs.",
    "Our neighbour in {city} lent us a ladder for {thing}.",
    "Write to {email} with the invoice number {number}{number2}.",
    "The workshop starts at {hour} and ends after lunch, around {hour2}.",
    "{name} prefers the second option because it is easier to maintain.",
    "A copy of {thing} is on the shelf next to the window.",
    "Summarise the main points in three sentences for {name}.",
]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth"]


class Prose:
    """A source of unique prompts; ``text(chars)`` returns about ``chars`` characters."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)
        self._seen: set[str] = set()

    def _name(self) -> str:
        return f"{self._random.choice(_FIRST)} {self._random.choice(_LAST)}"

    def sentence(self) -> str:
        pick = self._random
        first, last = pick.choice(_FIRST), pick.choice(_LAST)
        return pick.choice(_SENTENCES).format(
            name=self._name(), other=self._name(), city=pick.choice(_CITIES), thing=pick.choice(_THINGS),
            day=pick.choice(_DAYS), ordinal=pick.choice(_ORDINALS), number=pick.randint(2, 980),
            number2=pick.randint(10, 9999), hour=pick.randint(7, 11), hour2=pick.randint(1, 5),
            email=f"{first.lower()}.{last.lower()}@example.{pick.choice(['com', 'org', 'net'])}",
            phone=f"({pick.randint(201, 989)}) 555-{pick.randint(100, 9999):04d}",
        )

    def text(self, chars: int) -> str:
        """About ``chars`` characters of sentences, cut at a word boundary; never returned before."""
        while True:
            sentences: list[str] = []
            length = 0
            while length < chars:
                sentences.append(self.sentence())
                length += len(sentences[-1]) + 1
            text = " ".join(sentences)
            if len(text) > chars:
                cut = text.rfind(" ", 0, chars)
                text = text[:cut if cut > chars // 2 else chars].rstrip(" ,")
            if text not in self._seen:
                self._seen.add(text)
                return text
