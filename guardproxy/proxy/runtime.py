"""The running proxy's state: settings, the current policy set and client keys, the
engine and the upstream clients, plus reloading policies and keys on file change or
SIGHUP."""

from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import suppress
from pathlib import Path

import aiohttp
import httpx
import watchfiles

from guardproxy.audit.sink import EvidenceSink
from guardproxy.config import Settings
from guardproxy.engine import Engine
from guardproxy.heap import settle_heap
from guardproxy.keys import ClientKeys, load_keys
from guardproxy.policy import PolicyError, PolicySet, load_policy_set
from guardproxy.proxy.upstream import GuardUpstreamClient, stream_timeout
from guardproxy.telemetry import Telemetry

log = logging.getLogger("guardproxy.policy")


class Runtime:
    def __init__(self, settings: Settings, upstream_keys: dict[str, str] | None = None,
                 telemetry: Telemetry | None = None, admin_key: str | None = None) -> None:
        self.settings = settings
        self.admin_key = admin_key
        self.client_keys: ClientKeys | None = None  # with --keys-file: the keys in force
        self.upstream_keys = upstream_keys or {}  # per upstream (openai, anthropic, azure): the operator's key
        self.upstream_key = self.upstream_keys.get("openai")
        # Each upstream's base URL (None: not configured), worked out once instead of per request.
        self.upstream_bases = {name: settings.upstream_base_of(name) for name in ("openai", "anthropic", "azure")}
        self.stream_timeout = stream_timeout(settings.connect_timeout, settings.upstream_timeout)
        self.telemetry = telemetry or Telemetry.disabled()
        self.engine = Engine(settings.guard_threads)
        self._client: httpx.AsyncClient | None = None
        self.session: aiohttp.ClientSession | None = None  # the relay's, while the app runs
        self._policies: PolicySet | None = None
        self._reload_lock = asyncio.Lock()
        self.reloads = {"ok": 0, "rejected": 0}
        self.evidence: EvidenceSink | None = None  # the audit trail and shadow policies, while the app runs

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
        configured, else the client's own ``Authorization`` (never with a keys file: a client
        key is the proxy's, not the upstream's)."""
        if self.upstream_key:
            authorization: str | None = f"Bearer {self.upstream_key}"
        else:
            authorization = None if self.settings.keys_file else client_authorization
        return GuardUpstreamClient(self.client, self.settings.upstream_base, authorization)

    @property
    def ready(self) -> bool:
        return self._policies is not None and self._client is not None

    def _load(self) -> PolicySet:
        policies = load_policy_set(self.settings.policy)
        if self.client_keys is not None:  # a policy that drops a key's chain would lock that key out
            unbound = self.client_keys.unbound(policies)
            if unbound:
                raise PolicyError([f"{self.client_keys.source}: {problem}" for problem in unbound])
        self.engine.prepare(policies.all_policies())
        return policies

    async def load_initial(self) -> None:
        """Load at start-up; an invalid policy or keys file stops the start (PolicyError). What
        is loaded then is moved out of the garbage collector's sight, once (``heap.settle_heap``)."""
        policies = await asyncio.to_thread(self._load)
        if self.settings.keys_file:
            self.client_keys = await asyncio.to_thread(load_keys, self.settings.keys_file, policies)
            log.info("client keys loaded: %d from %s (%s)", len(self.client_keys.entries), self.settings.keys_file,
                     self.client_keys.digest)
        self._policies = policies
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
            dropped = self.engine.retain(policies.all_policies())
            self.reloads["ok"] += 1
            self.telemetry.policy_reloaded(ok=True)
            self.telemetry.policy_loaded(policies)
            log.info("policy reloaded (%s): %s -> %s; %d guard instances no longer used", reason, old,
                     policies.digest, dropped)
            return True

    async def reload_keys(self, reason: str) -> bool:
        """Swap in the keys file on disk if it is valid and every key's chain is loaded;
        otherwise keep the keys in force."""
        path = self.settings.keys_file
        if not path:
            return False
        async with self._reload_lock:
            try:
                keys = await asyncio.to_thread(load_keys, path, self._policies)
            except PolicyError as exc:
                self.reloads["rejected"] += 1
                for problem in exc.problems:
                    log.error("keys reload rejected (%s): %s", reason, problem)
                log.error("the previous keys stay in force")
                return False
            old = self.client_keys.digest if self.client_keys else "none"
            self.client_keys = keys
            log.info("client keys reloaded (%s): %s -> %s, %d keys", reason, old, keys.digest, len(keys.entries))
            return True

    def _is_keys_file(self, changed: str) -> bool:
        if not self.settings.keys_file:
            return False
        keys = Path(self.settings.keys_file).resolve()
        path = Path(changed)
        return path.resolve() == keys or (path.parent.resolve() == keys.parent and path.name == "..data")

    def _is_policy_file(self, changed: str) -> bool:
        """A policy file, or Kubernetes' ``..data`` symlink, which a ConfigMap
        update swaps to a new directory instead of writing the files."""
        root = Path(self.settings.policy).resolve()
        path = Path(changed)
        if self._policies is not None and path.suffix in (".yaml", ".yml") and any(
                path.resolve().parent == Path(shadow.source).resolve().parent
                for shadow in self._policies.shadows.values()):
            return True
        if root.is_dir():
            return path.parent.resolve() == root and (path.suffix in (".yaml", ".yml") or path.name == "..data")
        return path.resolve() == root or (path.parent.resolve() == root.parent and path.name == "..data")

    async def watch(self, stop: asyncio.Event) -> None:
        """Reload when a policy file (or the keys file) changes. Watches the directories,
        since editors often replace a file rather than write it in place."""
        root = Path(self.settings.policy).resolve()
        targets = {root if root.is_dir() else root.parent}
        if self._policies is not None:  # shadows named when the proxy started; a new one needs SIGHUP
            targets |= {Path(shadow.source).resolve().parent for shadow in self._policies.shadows.values()}
        if self.settings.keys_file:
            targets.add(Path(self.settings.keys_file).resolve().parent)
        try:
            async for changes in watchfiles.awatch(
                *targets, stop_event=stop, debounce=300, step=50, recursive=False
            ):
                if any(self._is_policy_file(path) for _, path in changes):
                    await self.reload("file changed")
                if any(self._is_keys_file(path) for _, path in changes):
                    await self.reload_keys("file changed")
        except (OSError, RuntimeError) as exc:
            log.error("policy watcher stopped: %s; reload with SIGHUP instead", exc)

    def install_sighup(self) -> bool:
        """Reload on SIGHUP. Only possible in the main thread (not in tests' servers)."""
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self._reload_all("SIGHUP")))
        except (ValueError, RuntimeError, NotImplementedError):
            return False
        return True

    async def _reload_all(self, reason: str) -> None:
        await self.reload(reason)
        await self.reload_keys(reason)

    def remove_sighup(self) -> None:
        with suppress(ValueError, RuntimeError, NotImplementedError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
