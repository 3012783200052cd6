"""The running proxy's state: settings, the current policy set, the engine and
the upstream clients, plus reloading policies on file change or SIGHUP."""

from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import suppress
from pathlib import Path

import aiohttp
import httpx
import watchfiles

from guardproxy.config import Settings
from guardproxy.engine import Engine
from guardproxy.heap import settle_heap
from guardproxy.policy import PolicyError, PolicySet, load_policy_set
from guardproxy.proxy.upstream import GuardUpstreamClient
from guardproxy.telemetry import Telemetry

log = logging.getLogger("guardproxy.policy")


class Runtime:
    def __init__(self, settings: Settings, upstream_keys: dict[str, str] | None = None,
                 telemetry: Telemetry | None = None) -> None:
        self.settings = settings
        self.upstream_keys = upstream_keys or {}  # per upstream (openai, anthropic, azure): the operator's key
        self.upstream_key = self.upstream_keys.get("openai")
        self.telemetry = telemetry or Telemetry.disabled()
        self.engine = Engine(settings.guard_threads)
        self._client: httpx.AsyncClient | None = None
        self.session: aiohttp.ClientSession | None = None  # the relay's, while the app runs
        self._policies: PolicySet | None = None
        self._reload_lock = asyncio.Lock()
        self.reloads = {"ok": 0, "rejected": 0}

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("the upstream client exists only while the app runs")
        return self._client

    @client.setter
    def client(self, client: httpx.AsyncClient | None) -> None:
        self._client = client

    @property
    def policies(self) -> PolicySet:
        if self._policies is None:
            raise RuntimeError("no policy is loaded")
        return self._policies

    def guard_upstream(self, client_authorization: str | None) -> GuardUpstreamClient:
        """The upstream as guards may call it, with the operator's key if one is
        configured, else the client's own ``Authorization``."""
        authorization = f"Bearer {self.upstream_key}" if self.upstream_key else client_authorization
        return GuardUpstreamClient(self.client, self.settings.upstream_base, authorization)

    @property
    def ready(self) -> bool:
        return self._policies is not None and self._client is not None

    def _load(self) -> PolicySet:
        policies = load_policy_set(self.settings.policy)
        self.engine.prepare([item.policy for item in policies.policies])
        return policies

    async def load_initial(self) -> None:
        """Load at start-up; an invalid policy stops the start (PolicyError). What is loaded
        then is moved out of the garbage collector's sight, once (``heap.settle_heap``)."""
        self._policies = await asyncio.to_thread(self._load)
        self.telemetry.policy_loaded(self._policies)
        log.info("policy loaded: %s from %s", self._policies.digest, self.settings.policy)
        settle_heap()

    async def reload(self, reason: str) -> bool:
        """Swap in the policy on disk if it is valid; otherwise keep the current one.

        After a swap, the guard instances only the old policies used are dropped (requests
        still running under those keep theirs until they end). The heap is not settled again:
        ``gc.freeze`` would also freeze whatever requests in flight hold, for good."""
        async with self._reload_lock:
            try:
                policies = await asyncio.to_thread(self._load)
            except PolicyError as exc:
                self.reloads["rejected"] += 1
                self.telemetry.policy_reloaded(ok=False)
                for problem in exc.problems:
                    log.error("policy reload rejected (%s): %s", reason, problem)
                log.error("the previous policy stays in force")
                return False
            except Exception as exc:  # a guard failing to build must not take the proxy down
                self.reloads["rejected"] += 1
                self.telemetry.policy_reloaded(ok=False)
                log.error("policy reload rejected (%s): %s: %s", reason, type(exc).__name__, exc)
                return False
            old = self._policies.digest if self._policies else "none"
            self._policies = policies
            dropped = self.engine.retain([item.policy for item in policies.policies])
            self.reloads["ok"] += 1
            self.telemetry.policy_reloaded(ok=True)
            self.telemetry.policy_loaded(policies)
            log.info("policy reloaded (%s): %s -> %s; %d guard instances no longer used", reason, old,
                     policies.digest, dropped)
            return True

    def _is_policy_file(self, changed: str) -> bool:
        """A policy file, or Kubernetes' ``..data`` symlink, which a ConfigMap
        update swaps to a new directory instead of writing the files."""
        root = Path(self.settings.policy).resolve()
        path = Path(changed)
        if root.is_dir():
            return path.parent.resolve() == root and (path.suffix in (".yaml", ".yml") or path.name == "..data")
        return path.resolve() == root or (path.parent.resolve() == root.parent and path.name == "..data")

    async def watch(self, stop: asyncio.Event) -> None:
        """Reload when a policy file changes. Watches the directory, since editors
        often replace a file rather than write it in place."""
        root = Path(self.settings.policy).resolve()
        target = root if root.is_dir() else root.parent
        try:
            async for changes in watchfiles.awatch(
                target, stop_event=stop, debounce=300, step=50, recursive=False
            ):
                if any(self._is_policy_file(path) for _, path in changes):
                    await self.reload("file changed")
        except (OSError, RuntimeError) as exc:
            log.error("policy watcher stopped: %s; reload with SIGHUP instead", exc)

    def install_sighup(self) -> bool:
        """Reload on SIGHUP. Only possible in the main thread (not in tests' servers)."""
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self.reload("SIGHUP")))
        except (ValueError, RuntimeError, NotImplementedError):
            return False
        return True

    def remove_sighup(self) -> None:
        with suppress(ValueError, RuntimeError, NotImplementedError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
