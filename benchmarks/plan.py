"""How long and how many: the sizes of a full run and of a ``--quick`` smoke run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    quick: bool
    wrk_seconds: int  # each measured wrk run
    rounds: int  # pass-through: measured runs per target and cell, the targets taking turns
    warmup_seconds: int  # one wrk run per target and mode before its measured runs
    concurrencies: tuple[int, ...]
    ttft_requests: int  # streamed requests per TTFT row
    guard_requests: dict[int, int]  # prompt length -> requests per policy
    conversations: int
    turns: int
    scaling_lengths: tuple[int, ...]
    scaling_requests: int  # per prompt length, and per chain of the guard-count sweep
    worker_seconds: int
    worker_bodies: int  # distinct bodies wrk rotates through for the full policy
    seed: int = 20260


FULL = Plan(quick=False, wrk_seconds=2, rounds=3, warmup_seconds=1, concurrencies=(1, 16, 64), ttft_requests=200,
            guard_requests={200: 30, 2_000: 30, 20_000: 8}, conversations=5, turns=20,
            scaling_lengths=(250, 500, 750, 1_000, 2_000, 4_000, 8_000), scaling_requests=15,
            worker_seconds=5, worker_bodies=8_000)

QUICK = Plan(quick=True, wrk_seconds=1, rounds=1, warmup_seconds=1, concurrencies=(1, 16, 64), ttft_requests=12,
             guard_requests={200: 5, 2_000: 5, 20_000: 2}, conversations=2, turns=20,
             scaling_lengths=(250, 500, 1_000, 4_000), scaling_requests=3, worker_seconds=2, worker_bodies=1_000)
