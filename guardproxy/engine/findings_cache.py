"""Findings remembered per segment, so a chat's resent history is not scanned again.

A chat client resends the whole conversation every turn, so without this turn
20 would scan twenty turns of text. For a guard that declares ``cacheable``
(its findings for a segment depend only on the segment's text and role and on
the guard's settings; see ``guardproxy.guards.base.Guard``), the engine keeps
one bounded LRU per guard instance (the instance fixes the settings). Keys are
the segment's role and a BLAKE2b digest of its text, never the text; values
are the segment's findings numbered as segment 0, renumbered on a hit.

Used from the event loop only, so there is no lock.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import OrderedDict
from collections.abc import Sequence

from guardproxy.guards.base import Finding, Segment

SegmentKey = tuple[str | None, bytes]


def segment_key(segment: Segment) -> SegmentKey:
    return segment.role, hashlib.blake2b(segment.text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _numbered(findings: Sequence[Finding], segment: int) -> list[Finding]:
    return [f if f.segment == segment else dataclasses.replace(f, segment=segment) for f in findings]


class FindingsCache:
    """A bounded LRU of segment key -> that segment's findings (as segment 0)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[SegmentKey, tuple[Finding, ...]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: SegmentKey) -> tuple[Finding, ...] | None:
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def put(self, key: SegmentKey, findings: Sequence[Finding]) -> None:
        if self._size == 0:
            return
        self._items[key] = tuple(_numbered(findings, 0))
        self._items.move_to_end(key)
        if len(self._items) > self._size:
            self._items.popitem(last=False)

    def lookup(self, keys: Sequence[SegmentKey]) -> CacheLookup:
        return CacheLookup(self, keys)


class CacheLookup:
    """One run's segments as one guard's cache knows them: ``missing`` must be scanned."""

    def __init__(self, cache: FindingsCache, keys: Sequence[SegmentKey]) -> None:
        self._cache = cache
        self._keys = keys
        self._known = [cache.get(key) for key in keys]
        self.missing = [index for index, found in enumerate(self._known) if found is None]

    def complete(self, scanned: Sequence[Finding]) -> list[Finding]:
        """All findings, numbered as in the run, given the (valid) findings of a scan
        of the ``missing`` segments numbered as in that scan; remembers the latter."""
        fresh: list[list[Finding]] = [[] for _ in self.missing]
        for finding in scanned:
            fresh[finding.segment].append(finding)
        for position, index in enumerate(self.missing):
            self._cache.put(self._keys[index], fresh[position])
            self._known[index] = tuple(fresh[position])
        return [f for index, found in enumerate(self._known) for f in _numbered(found or (), index)]
