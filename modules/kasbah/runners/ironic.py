"""Day 0 on OpenStack Ironic: enrol the Plan's nodes, bring them to `available`, deploy them.

Ironic is the engine (its state machine, its Redfish driver, its conductors); kasbah only says
what each node is, from the Plan and the rack's hardware manifest, and reads back where each
node is. It speaks Ironic's REST API (standalone, no Keystone: Metal3's way of running it).

Per node, every run converges, whatever state an earlier (or interrupted) run left:

    absent      -> create it (redfish driver, the BMC's address and system, its conductor group =
                   its hall), then one port per NIC MAC (the in-band NIC boots)
    enroll      -> manage (Ironic checks it can reach the BMC: power state over Redfish)
    manageable  -> (BIOS settings of the rack profile not yet applied) clean with the redfish BIOS
                   interface's apply_configuration step, no ramdisk: Ironic sets the attributes,
                   reboots the node and checks them; then provide (cleaning, where the site enables it)
    available   -> (--deploy) active, with the node's configuration drive
    failed      -> each failure state has one way back, tried once a run; the error and the fix
                   are reported for the node; the rack's other nodes carry on

A tray replaced in its slot (the manifest's serial or MACs changed) keeps its Ironic node (named
after the Plan's node) but loses its ports and its deployment: it is undeployed, its ports are
rewritten, and it is provisioned again, flagged `replaced` so its burn-in runs again.

BMC credentials come from a file or the environment, never from the command line; they are
sent to Ironic (which stores them and masks them in every answer) and to nothing else.

The parts: `ironic_client` (the REST client and its errors), `ironic_targets` (what each node is to
Ironic, its credentials, keys and configuration drive); this module holds the run: the state
machine, the `Provisioner` and each node's `Result`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kasbah.runners.ironic_client import API_VERSION, Ironic, IronicError, transient
from kasbah.runners.ironic_targets import (
    NETPLAN_FILE,
    Credentials,
    Deployment,
    Target,
    bios_cleaning,
    config_drive,
    driver_info,
    limiter,
    load_credentials,
    public_keys,
    recorded_bios,
    targets,
)

__all__ = [
    "API_VERSION",
    "BIOS_ACTION",
    "FAILED",
    "FIX",
    "IN_FLIGHT",
    "NETPLAN_FILE",
    "RECOVER",
    "STABLE",
    "TRANSIENT_TRIES",
    "Credentials",
    "Deployment",
    "Ironic",
    "IronicError",
    "Progress",
    "Provisioner",
    "Result",
    "Target",
    "config_drive",
    "limiter",
    "load_credentials",
    "public_keys",
    "targets",
]

STABLE = {"available", "active", "manageable", "enroll"}
FAILED = {"deploy failed", "clean failed", "inspect failed", "rescue failed", "error", "service failed"}
# the one way back from each failure state (Ironic's state machine)
RECOVER = {"deploy failed": "deleted", "clean failed": "manage", "inspect failed": "manage", "service failed": "abort"}
FIX = {
    "enroll": "check the BMC: reachable from the conductor at the Plan's OOB address, the right credentials "
    "(--bmc-credentials), the system path of the rack profile (bmc.system)",
    "deploy failed": "read the error; a second run cleans the node and deploys it again",
    "clean failed": "read the error; a second run puts it back to manageable and cleans it again",
    "maintenance": "kasbah leaves a node an operator put in maintenance: when it is ready, "
    "`baremetal node maintenance unset NODE`, then run again",
    "bios": "check the rack profile's bmc.bios against the BMC's attribute registry (GET <system>/Bios and its "
    "AttributeRegistry): names and values are the vendor's; or remove bmc.bios if the BMC cannot set them",
    "timeout": "the node did not reach its state in time: look at it with `baremetal node show`, then run again",
}

Progress = Callable[[str], None]
BIOS_ACTION = "applying BIOS settings"  # a node's action (a deferred one is taken back)
TRANSIENT_TRIES = 5  # an overloaded Ironic's failures tolerated per node (and per listing) in a run


@dataclass
class Result:
    node: str
    rack: str
    state: str
    actions: list[str] = field(default_factory=list)
    error: str = ""
    fix: str = ""
    replaced: bool = False

    @property
    def ok(self) -> bool:
        return not self.error

    def as_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "rack": self.rack,
            "state": self.state,
            "ok": self.ok,
            "actions": self.actions,
            "replaced": self.replaced,
            "error": self.error,
            "fix": self.fix,
        }


# Nodes Ironic moves at once for one run. Its conductor's work per node is CPU-bound (the BMC password's PBKDF2 on
# every Redfish session, 0.5 s each): asked for a whole hall at once, it shares its cores among 1,424 nodes and none
# finishes before all do (tests/benchmarks/bench_day0.py). In bounded waves, nodes finish steadily at the same rate.
IN_FLIGHT = 64


class Provisioner:
    """Brings a set of targets to `available` (or `active`), node by node, reporting each, `in_flight` at a time."""

    def __init__(
        self,
        ironic: Ironic,
        credentials: Callable[[str], Credentials],
        deployment: Deployment | None = None,
        progress: Progress | None = None,
        workers: int = 8,
        timeout: float = 1800.0,
        poll: float = 1.0,
        in_flight: int = IN_FLIGHT,
    ) -> None:
        self.ironic = ironic
        self.credentials = credentials
        self.deployment = deployment
        self.progress = progress or (lambda _: None)
        self.workers = workers
        self.timeout = timeout  # a node's, from its first move; and the longest the run may go without progress
        self.poll = poll
        self.in_flight = max(1, in_flight)
        self._lock = threading.Lock()
        self._transient: dict[str, int] = {}  # node uuid -> transient failures of its moves this run

    # ------------------------------------------------------------------------------ enrolment
    def run(self, wanted: Sequence[Target]) -> list[Result]:
        goal = "active" if self.deployment else "available"
        results = {t.name: Result(t.name, t.rack, "absent") for t in wanted}
        by_name = {t.name: t for t in wanted}
        fields = (
            "uuid", "name", "provision_state", "target_provision_state", "last_error", "extra", "driver_info",
            "deploy_interface", "instance_info", "bios_interface",
        )  # fmt: skip
        known = self.ironic.nodes(fields)
        ports = self.ironic.ports()
        self.progress(f"enrolling {len(wanted):,} nodes ({sum(t.name in known for t in wanted):,} known to Ironic)")

        def enrol(t: Target) -> None:
            r = results[t.name]
            try:
                node = known.get(t.name)
                if node is None:
                    node = self._create(t)
                    r.actions.append("enrolled")
                else:
                    self._update(t, node, r)
                self._ports(t, node, ports.get(node["uuid"], []), r)
                r.state = node["provision_state"]
            except IronicError as exc:
                r.error = str(exc)
                r.fix = "run again once Ironic is done with the node" if "409" in r.error else FIX["enroll"]

        with ThreadPoolExecutor(self.workers) as pool:
            list(pool.map(enrol, wanted))
        # nodes whose BMC holds the rack profile's BIOS settings (Ironic applied them, kasbah recorded it; a
        # replaced tray's record went with the old tray)
        bios_ok = {
            t.name
            for t in wanted
            if not t.bios or ((known.get(t.name) or {}).get("extra") or {}).get("kasbah_bios") == recorded_bios(t)
        }
        # ------------------------------------------------------------------- the state machine
        recovered: set[str] = set()
        pending = {n for n, r in results.items() if r.ok}
        acted: dict[str, str] = {}  # node -> the state it was in when it was last moved
        started: dict[str, float] = {}  # node -> when its first move was taken (its own deadline runs from there)
        progress_at, last_done = time.monotonic(), -1
        while pending:
            now = self._poll(
                ("name", "provision_state", "target_provision_state", "last_error", "uuid", "maintenance", "fault",
                 "maintenance_reason")
            )  # fmt: skip
            moving = sum(
                1
                for name in pending
                if (n := now.get(name)) and n.get("target_provision_state") and n["provision_state"] not in FAILED
            )
            moves: list[tuple[str, str, str, dict[str, Any]]] = []  # (node, uuid, target, more of the request)
            for name in sorted(pending):
                n = now.get(name)
                r = results[name]
                if n is None:
                    r.error, r.fix = "deleted from Ironic during the run", "run again"
                    continue
                state, target = n["provision_state"], n.get("target_provision_state")
                r.state = state
                if target and state not in FAILED:  # Ironic is moving it: wait (a failed state keeps its target)
                    continue
                if state == goal and (goal == "active" or name in bios_ok):  # an active node keeps its BIOS
                    continue
                if n.get("maintenance") and not n.get("fault"):  # a person's, not a failure's: theirs to lift
                    r.error = f"in maintenance: {n.get('maintenance_reason') or 'no reason given'}"
                    r.fix = FIX["maintenance"]
                    continue
                if state in FAILED or (state == "enroll" and acted.get(name) == "enroll" and n.get("last_error")):
                    way = RECOVER.get(state)
                    if way and name not in recovered:
                        recovered.add(name)
                        r.actions.append(f"{state} -> {way}")
                        if n.get("maintenance") and n.get("fault") == "clean failure":
                            # Ironic fences a node whose cleaning failed; the retry needs the fence lifted
                            self._unfence(n["uuid"], r)
                        moves.append((name, n["uuid"], way, {}))
                        acted[name] = state
                        continue
                    r.error = n.get("last_error") or state
                    bios_failed = state == "clean failed" and BIOS_ACTION in r.actions
                    r.fix = (
                        FIX["bios"] if bios_failed else FIX.get(state, "read the error; fix the node, then run again")
                    )
                    continue
                if name not in bios_ok and state in ("manageable", "available"):
                    t = by_name[name]
                    if acted.get(name) == "bios" and state == "manageable" and not n.get("last_error"):
                        # the cleaning that applied them ended well: Ironic read them back after the reboot
                        self._record_bios(t, n["uuid"], r)
                        bios_ok.add(name)
                    elif state == "available":
                        acted[name] = state
                        r.actions.append("manage (BIOS settings to apply)")
                        moves.append((name, n["uuid"], "manage", {}))
                        continue
                    else:
                        acted[name] = "bios"
                        r.actions.append(BIOS_ACTION)
                        moves.append((name, n["uuid"], "clean", bios_cleaning(t)))
                        continue
                step = {"enroll": "manage", "manageable": "provide"}.get(state)
                if step is None and state == "available" and goal == "active":
                    assert self.deployment is not None
                    moves.append(
                        (name, n["uuid"], "active", {"configdrive": config_drive(by_name[name], self.deployment)})
                    )
                    acted[name] = state
                    r.actions.append("deploying")
                    continue
                if step is None:
                    r.error, r.fix = f"in state `{state}`, which kasbah does not move", "look at the node in Ironic"
                    continue
                if acted.get(name) == state and state == "enroll":
                    continue
                acted[name] = state
                r.actions.append(step)
                moves.append((name, n["uuid"], step, {}))
            pending = {
                n
                for n in pending
                if results[n].ok and (results[n].state != goal or (goal == "available" and n not in bios_ok))
            }
            deferred = 0
            # at most in_flight nodes moving at once; the others keep their turn for a later poll
            held = moves[max(0, self.in_flight - moving) :]
            moves = moves[: max(0, self.in_flight - moving)]
            for name, _, _, _ in held:
                results[name].actions.pop()
                recovered.discard(name)
                acted.pop(name, None)
            if moves:
                with ThreadPoolExecutor(self.workers) as pool:
                    moved = list(pool.map(lambda m: self._move(m[1], m[2], m[3], results[m[0]]), moves))
                for (name, _, _, _), ok in zip(moves, moved, strict=True):
                    if ok:
                        started.setdefault(name, time.monotonic())
                    if ok or results[name].error:
                        continue
                    # Ironic did not take it (busy with the node, or at its concurrency limit): asked again next poll
                    deferred += 1
                    results[name].actions.pop()
                    recovered.discard(name)
                    acted.pop(name, None)  # nothing happened to it (a BIOS cleaning that did not start applied nothing)
            done = len(results) - len(pending)
            waiting = f" ({deferred:,} deferred: Ironic busy or at its concurrency limit)" if deferred else ""
            queued = f", {len(held):,} waiting their turn" if held else ""
            self.progress(f"{done:,}/{len(results):,} nodes {goal} or stopped{waiting}{queued}")
            if not pending:
                break
            clock = time.monotonic()
            if done != last_done or moves:
                progress_at, last_done = clock, done
            late = {n for n in pending if clock - started.get(n, clock) > self.timeout}
            if clock - progress_at > self.timeout:
                late = set(pending)  # nothing moved for a whole timeout: Ironic is stuck, not slow
            for name in late:
                results[name].error = f"still `{results[name].state}` after {self.timeout:.0f} s"
                results[name].fix = FIX["timeout"]
            pending -= late
            if not pending:
                break
            time.sleep(self.poll)
        return [results[t.name] for t in wanted]

    def _move(self, uuid: str, target: str, more: dict[str, Any], r: Result) -> bool:
        """Ask Ironic for one transition; whether it took it."""
        body: dict[str, Any] = {"target": target, **more}
        try:
            if target == "active":
                # what to deploy, again: tearing down a failed deployment clears the node's instance_info
                ops = [
                    {"op": "add", "path": f"/instance_info/{k}", "value": v} for k, v in self._instance_info().items()
                ]
                self.ironic.call("PATCH", f"/nodes/{uuid}", ops)
            self.ironic.call("PUT", f"/nodes/{uuid}/states/provision", body)
            return True
        except IronicError as exc:
            text = str(exc)
            if "answered 409" in text or "answered 503" in text:
                # 409: a conductor is busy with it (a move of an earlier poll); 503: Ironic's max_concurrent_deploy
                # or max_concurrent_clean is reached (it rejects, it does not queue): the next poll asks again
                return False
            if transient(text) and self._strikes(uuid) <= TRANSIENT_TRIES:
                # an overloaded Ironic (its database locked, an answer that timed out, a move that did go through
                # before the timeout): the next poll reads where the node is and asks again if it must
                return False
            r.error, r.fix = text, "read the error; run again"
            return False

    def _strikes(self, uuid: str) -> int:
        with self._lock:
            self._transient[uuid] = self._transient.get(uuid, 0) + 1
            return self._transient[uuid]

    def _poll(self, fields: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Every node's state; an overloaded Ironic gets a few more chances before the run gives up."""
        for attempt in range(1, TRANSIENT_TRIES + 1):
            try:
                return self.ironic.nodes(fields)
            except IronicError as exc:
                if attempt == TRANSIENT_TRIES or not transient(str(exc)):
                    raise
                time.sleep(2 * attempt)
        raise AssertionError("unreachable")

    def _unfence(self, uuid: str, r: Result) -> None:
        try:
            self.ironic.call("DELETE", f"/nodes/{uuid}/maintenance")
        except IronicError as exc:
            r.error, r.fix = str(exc), "read the error; run again"

    def _record_bios(self, t: Target, uuid: str, r: Result) -> None:
        try:
            self.ironic.call(
                "PATCH", f"/nodes/{uuid}", [{"op": "add", "path": "/extra/kasbah_bios", "value": recorded_bios(t)}]
            )
            r.actions.append(f"BIOS settings applied ({', '.join(k for k, _ in t.bios)})")
        except IronicError as exc:
            r.error, r.fix = str(exc), "read the error; run again"

    def _instance_info(self) -> dict[str, Any]:
        d = self.deployment
        if d is None:
            return {}
        if d.kind == "iso":
            return {"boot_iso": d.url}
        return {
            "image_source": d.url,
            "image_checksum": d.checksum.removeprefix("sha256:"),
            "image_os_hash_algo": "sha256",
        }

    def _settle(self, uuid: str) -> str:
        """Wait until Ironic ends the node's transition; its state then."""
        deadline = time.monotonic() + self.timeout
        while True:
            n = self.ironic.call("GET", f"/nodes/{uuid}?fields=provision_state,target_provision_state,last_error")
            if not n.get("target_provision_state"):
                return str(n["provision_state"])
            if time.monotonic() > deadline:
                raise IronicError(f"node {uuid} still `{n['provision_state']}` after {self.timeout:.0f} s")
            time.sleep(self.poll)

    def _deploy_interface(self) -> str:
        """ramdisk: a live ISO booted from virtual media; direct: Ironic's agent writes a disk image."""
        return "ramdisk" if self.deployment and self.deployment.kind == "iso" else "direct"

    def _create(self, t: Target) -> dict[str, Any]:
        body = {
            "name": t.name,
            "driver": "redfish",
            "driver_info": driver_info(t, self.credentials(t.rack), self.deployment),
            "conductor_group": t.hall,
            "resource_class": f"kasbah-{t.pool}",
            "boot_interface": "redfish-virtual-media",
            "deploy_interface": self._deploy_interface(),
            "network_interface": "noop",
            "instance_info": self._instance_info(),
            "extra": {"kasbah_serial": t.serial, "kasbah_rack": t.rack, "kasbah_macs": list(t.macs)},
        }
        if t.bios:
            body["bios_interface"] = "redfish"
        return self.ironic.call("POST", "/nodes", body)  # type: ignore[no-any-return]

    def _update(self, t: Target, node: dict[str, Any], r: Result) -> None:
        extra = node.get("extra") or {}
        info = node.get("driver_info") or {}
        ops: list[dict[str, Any]] = []
        if extra.get("kasbah_serial") not in (None, t.serial) or extra.get("kasbah_macs") not in (None, list(t.macs)):
            r.replaced = True
            r.actions.append(f"hardware replaced ({extra.get('kasbah_serial')} -> {t.serial})")
            if "kasbah_bios" in extra:  # the new tray's BIOS is as it left the factory
                ops.append({"op": "remove", "path": "/extra/kasbah_bios"})
                del extra["kasbah_bios"]
            if node["provision_state"] == "active":
                # the old tray's deployment goes first (Ironic cleans the node): nothing of it may reach the new one
                self.ironic.call("PUT", f"/nodes/{node['uuid']}/states/provision", {"target": "deleted"})
                r.actions.append("undeploying")
                node["provision_state"] = self._settle(node["uuid"])
                node["instance_info"] = {}  # tearing down clears it
        for key, want in (
            ("redfish_address", t.bmc_address),
            ("redfish_system_id", t.system),
            ("redfish_username", self.credentials(t.rack).username),
        ):
            if info.get(key) != want:
                ops.append({"op": "add", "path": f"/driver_info/{key}", "value": want})
        access = bool(ops)
        if access or node["provision_state"] == "enroll":
            # Ironic masks the stored password, so it cannot be compared: it is sent again whenever the BMC's
            # access changes or the node never got past enrolment (wrong credentials, fixed since)
            ops.append(
                {"op": "add", "path": "/driver_info/redfish_password", "value": self.credentials(t.rack).password}
            )
        want_extra = {"kasbah_serial": t.serial, "kasbah_rack": t.rack, "kasbah_macs": list(t.macs)}
        for key, value in want_extra.items():
            if extra.get(key) != value:
                ops.append({"op": "add", "path": f"/extra/{key}", "value": value})
        if self.deployment is not None:
            instance = node.get("instance_info") or {}
            for key, value in self._instance_info().items():
                if instance.get(key) != value:
                    ops.append({"op": "add", "path": f"/instance_info/{key}", "value": value})
            interface = self._deploy_interface()
            if node.get("deploy_interface") != interface:
                ops.append({"op": "add", "path": "/deploy_interface", "value": interface})
        if t.bios and node.get("bios_interface") != "redfish":
            ops.append({"op": "add", "path": "/bios_interface", "value": "redfish"})
        if t.bios and (extra.get("kasbah_bios") != recorded_bios(t)) and node["provision_state"] == "active":
            r.actions.append("BIOS settings changed: applied when the node is provisioned again")
        if ops:
            self.ironic.call("PATCH", f"/nodes/{node['uuid']}", ops)
        if access:
            r.actions.append("BMC access updated")

    def _ports(self, t: Target, node: dict[str, Any], have: list[dict[str, Any]], r: Result) -> None:
        want = {m.lower(): i == 0 for i, m in enumerate(t.macs)}
        for p in have:
            if p["address"].lower() not in want:
                self.ironic.call("DELETE", f"/ports/{p['uuid']}")
        present = {p["address"].lower() for p in have}
        added = 0
        for mac, boots in want.items():
            if mac not in present:
                self.ironic.call("POST", "/ports", {"node_uuid": node["uuid"], "address": mac, "pxe_enabled": boots})
                added += 1
        if added and "enrolled" not in r.actions:
            r.actions.append(f"{added} port(s) written")
