"""Leave one source out for ``guard: topics`` (run it with ``benchmarks/loso.py topics``).

Sources: CLINC150 queries (``topics_dev.jsonl``, 10 domains plus out-of-scope) and BANKING77 queries
(``topics_banking77.jsonl``, 10 coarse banking topics). A task bans one topic of a source and allows
the rest (out-of-scope rows included): one guard per task with that single topic, the default
settings (``method: semantic``, sentence embeddings) and the threshold at 0, so a row's score is the
guard's own finding score. The stock baseline is the default threshold.

Every topic is written as in ``topics_quality.py``: a one-sentence description and five example
sentences, by hand, none taken from the data (and no keywords). CLINC150's banking and travel come
from ``policies/examples/topics.yaml``, its credit_cards and work from ``topics_quality.PAIR_B``;
the others are below.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from loso import REPO, SHARED_DATA, SHORT_NAMES, GuardBench, Task
from loso_cache import FloatArray, ScoreCache, code_digest, texts_digest
from topics_quality import PAIR_B, pair_a_topics

from guardproxy.evaluation.datasets import source_name
from guardproxy.guards import GuardContext, Segment
from guardproxy.guards.topics.config import DEFAULT_THRESHOLD, TopicsConfig
from guardproxy.guards.topics.guard import TopicsGuard

BATCH = 64
LONG_DOCUMENTS = 40  # positives per task, and as many negatives
SEED = 14
# The guard's settings besides the topic; LOSO_TOPICS_CALIBRATION=none scores the uncalibrated cosine (the
# guard before issue 14), for the before/after table.
SETTINGS: dict[str, Any] = {"threshold": 0.0, **({"calibration": os.environ["LOSO_TOPICS_CALIBRATION"]}
                                                  if os.environ.get("LOSO_TOPICS_CALIBRATION") else {})}
CODE = (REPO / "guardproxy" / "guards" / "topics", REPO / "guardproxy" / "embeddings",
        REPO / "guardproxy" / "guards" / "sentences.py")


def _topic(name: str, description: str, *examples: str) -> dict[str, Any]:
    return {"name": name, "description": description, "examples": list(examples)}


CLINC_MORE = [
    _topic("kitchen_and_dining",
           "Kitchen and dining: recipes and cooking times, ingredients and substitutions, calories and nutrition, "
           "how long food keeps, meal ideas, restaurant suggestions and reviews, and booking, confirming or "
           "cancelling a restaurant table.",
           "How long should I roast a whole chicken?", "What can I use instead of buttermilk in pancakes?",
           "How many calories are in a bagel with cream cheese?", "Book a table for four at an Italian place tonight.",
           "Is the new sushi bar downtown any good?"),
    _topic("home",
           "Home: playing music and naming songs, playlists, smart home devices, shopping lists, to-do lists, "
           "reminders, calendar events, and placing or tracking online orders.",
           "Play some jazz in the living room.", "Put eggs and milk on my shopping list.",
           "Remind me to water the plants at six.", "Turn off the lights in the bedroom.",
           "What do I have on my calendar for Thursday?"),
    _topic("auto_and_commute",
           "Auto and commute: car maintenance, oil changes, tire pressure and flat tires, jump starts, fuel type "
           "and gas mileage, gas stations, directions, distances, traffic, where I am, and ordering a ride.",
           "How many more miles until the oil in my car needs changing?", "How do I put on the spare tire?",
           "What's traffic like on my way to work?", "Get me a ride to the train station.",
           "What kind of gas does my car take?"),
    _topic("utility",
           "Utility: the time and date, weather, alarms and timers, calculations and unit conversions, word "
           "definitions and spelling, flipping a coin or rolling dice, texts and phone calls, finding my phone and "
           "sharing my location.",
           "Set a timer for ten minutes.", "Will it rain tomorrow afternoon?", "How many ounces are in two cups?",
           "How do you spell necessary?", "Flip a coin for me."),
    _topic("small_talk",
           "Small talk: greetings and goodbyes, thanks, jokes and fun facts, and questions about the assistant "
           "itself: its name, age, hobbies, pets, where it comes from, who made it and whether it is a bot.",
           "Hi there, how are you doing today?", "Tell me something funny.", "Are you a real person or a program?",
           "What do you like to do in your free time?", "Thanks, that's all I needed."),
    _topic("meta",
           "Meta: talking to the assistant about the conversation and its settings, changing its name, voice, "
           "accent, speed, volume or language, whisper mode, my user name, syncing devices, resetting settings, "
           "repeating the last answer, and answering yes, no, maybe or cancel.",
           "Can you say that one more time?", "Please talk a little slower.", "Switch your language to Spanish.",
           "From now on call me Sam.", "Yes, go ahead with that."),
]

BANKING77 = [
    _topic("top_ups",
           "Top-ups: adding money to the account by card, bank transfer, cash or cheque, automatic top-ups, "
           "top-up limits and fees, and top-ups that are pending, failed, reverted or need verifying.",
           "How do I put money into my account using my debit card?", "My top-up still hasn't gone through.",
           "Why was I charged a fee for topping up?", "Can the app top up my balance automatically?",
           "The money I added vanished from my balance."),
    _topic("money_transfers",
           "Money transfers: sending and receiving money, transfer times and fees, pending, failed or declined "
           "transfers, cancelling a transfer, a recipient who has not got the money, and beneficiaries that are "
           "not allowed.",
           "How long does sending money to another bank take?", "My friend still hasn't got the money I sent her.",
           "Can I stop a payment I sent a minute ago?", "Why was my transfer to my landlord rejected?",
           "Someone sent me money, when will I see it?"),
    _topic("card_delivery_and_activation",
           "Card delivery and activation: ordering a physical or spare card, when a card will arrive, delivery "
           "times, activating a new card, linking a card in the app, and a card that is about to expire.",
           "When will my new card get here?", "How do I start using the card that came in the post?",
           "Can I order a second card for my partner?", "My card runs out next month, what happens then?",
           "How do I add my card to the app?"),
    _topic("virtual_cards",
           "Virtual cards: getting a virtual or disposable card, limits on disposable cards, and virtual cards "
           "that do not work.",
           "How do I get a card that only exists in the app?", "Can I make a one-time card for online shopping?",
           "My virtual card keeps getting rejected by websites.", "How often can a disposable card be used?",
           "Is there a charge for a virtual card?"),
    _topic("refunds",
           "Refunds: asking a merchant for a refund, and refunds that have not shown up in the account.",
           "I sent the jacket back but the money isn't in my account.", "How do I ask a shop for my money back?",
           "The store says they refunded me a week ago.", "Can I get my money back for a cancelled order?",
           "How long until a refund appears?"),
    _topic("identity_verification",
           "Identity verification: verifying my identity, why verification is needed, being unable to verify, "
           "and proving where my funds come from.",
           "Why do you need to check who I am?", "The app won't accept the photo of my passport.",
           "Which documents prove my identity?", "Do I have to show where my money comes from?",
           "I can't get through the identity check."),
    _topic("atm_cash_withdrawals",
           "ATM cash withdrawals: using cash machines, withdrawal fees, withdrawals that are pending, declined or "
           "not recognised, getting the wrong amount of cash, and a machine keeping my card.",
           "The cash machine gave me less than I asked for.", "Why did I pay a fee for taking out cash?",
           "The ATM kept my card.", "There's a cash withdrawal I never made.", "My withdrawal is still pending."),
    _topic("currency_exchange",
           "Currency exchange: exchanging currencies in the app, exchange rates and charges, which currencies "
           "are supported, and card payments made at the wrong exchange rate.",
           "What rate do you give for euros?", "Can I hold Japanese yen in my account?",
           "I paid more than expected for a purchase abroad.", "How do I swap dollars into pounds in the app?",
           "Why was my card payment converted at a bad rate?"),
    _topic("pin_and_passcode",
           "PIN and passcode: changing my PIN, a PIN blocked after wrong tries, and a forgotten app passcode.",
           "How can I set a new PIN for my card?", "I typed the wrong PIN too many times and now it's blocked.",
           "I forgot the passcode to open the app.", "How do I get my PIN working again?", "Can I choose my own PIN?"),
    _topic("lost_stolen_or_compromised",
           "Lost, stolen or compromised: a lost or stolen card or phone, and a card that may have been "
           "compromised or used by someone else.",
           "I can't find my card anywhere, please block it.", "My phone with the banking app was stolen.",
           "I think someone copied my card details.", "My card may have been skimmed at a shop.",
           "Please freeze my card right away."),
]


def _without_keywords(topics: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{key: value for key, value in topic.items() if key != "keywords"} for topic in topics]


TOPICS = {
    "CLINC150": _without_keywords(pair_a_topics()) + _without_keywords(PAIR_B) + CLINC_MORE,
    "BANKING77": BANKING77,
}


def topic_scores(topic: dict[str, Any], texts: Sequence[str]) -> FloatArray:
    """Each text's finding score for ``topic`` alone (0 when none), from the guard with the threshold at 0,
    scanned in order (``calibration: traffic`` follows the rows it has seen)."""
    guard = TopicsGuard(TopicsConfig(topics=[topic], **SETTINGS))
    guard.warm()
    context = GuardContext("input")
    scores = np.zeros(len(texts))
    for offset in range(0, len(texts), BATCH):
        findings = guard.scan([Segment(text, (), "user") for text in texts[offset:offset + BATCH]], context)
        assert isinstance(findings, list)  # the semantic method answers at once
        for finding in findings:
            scores[offset + finding.segment] = max(scores[offset + finding.segment], finding.score)
    return scores


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text[-1:] in ".?!" else f"{text}."


def long_documents(texts: Sequence[str], labels: Sequence[str], banned: str) -> tuple[list[str], list[bool]]:
    """Documents of ten rows: five of ``banned`` and five of another topic, or five each of two allowed
    topics; the rows of one document are shuffled, and the order of documents alternates."""
    rng = random.Random(f"{SEED}:{banned}")
    by_topic: dict[str, list[str]] = {}
    for text, label in zip(texts, labels, strict=True):
        by_topic.setdefault(label, []).append(_sentence(text))
    others = sorted(t for t in by_topic if t != banned)
    documents: list[str] = []
    gold: list[bool] = []
    for _ in range(LONG_DOCUMENTS):
        for positive in (True, False):
            first, second = (banned, rng.choice(others)) if positive else rng.sample(others, 2)
            sentences = rng.sample(by_topic[first], 5) + rng.sample(by_topic[second], 5)
            rng.shuffle(sentences)
            documents.append(" ".join(sentences))
            gold.append(positive)
    return documents, gold


def build_tasks(paths: Sequence[Path], cache: ScoreCache) -> list[Task]:
    code = code_digest(CODE)
    tasks = []
    for path in paths:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        names = {source_name(row["meta"]["source"]) for row in rows}
        if len(names) != 1:
            raise ValueError(f"{path}: one source per topics file expected, found {sorted(names)}")
        source = SHORT_NAMES.get(names.pop(), path.stem)
        if source not in TOPICS:
            raise ValueError(f"{path}: no topics are written for {source}; known: {', '.join(TOPICS)}")
        texts = [row["text"] for row in rows]
        labels = np.array([row["topic"] for row in rows])
        for topic in TOPICS[source]:
            documents, long_gold = long_documents(texts, list(labels), topic["name"])
            scanned = texts + documents
            key = {"guard": "topics", "code": code, "topic": topic, "settings": SETTINGS,
                   "texts": texts_digest(scanned)}
            scores = cache.get(key, partial(topic_scores, topic, scanned))
            queries = np.arange(len(scanned)) < len(texts)
            gold = np.concatenate([labels == topic["name"], np.array(long_gold)])
            tasks.append(Task(source, topic["name"], scores, gold,
                              subsets={"queries": queries, "long documents": ~queries}))
    return tasks


BENCH = GuardBench(
    guard="topics",
    data=(SHARED_DATA / "topics_dev.jsonl", SHARED_DATA / "topics_banking77.jsonl"),
    stock_threshold=DEFAULT_THRESHOLD,
    grid=tuple(round(0.20 + 0.01 * i, 2) for i in range(61)),
    build_tasks=build_tasks,
    notes=("A task bans one topic and allows the rest of its source (CLINC150's out-of-scope rows included); P, R "
           "and F1 are means over a source's ten tasks. The topic texts were written by hand, none taken from the "
           "data.",),
)
