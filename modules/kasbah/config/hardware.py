"""What the integrator delivered: each rack's manifest, slot by slot (serials and MAC addresses)."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    Field,
    StringConstraints,
)

from kasbah.config.fields import (
    MAC_PATTERN,
    MAX_SLOT,
    NAME_PATTERN,
    SERIAL_PATTERN,
    Model,
)

Mac = Annotated[str, StringConstraints(pattern=MAC_PATTERN, to_lower=True)]


class SlotHardware(Model):
    """One tray or server as the integrator delivered it: the row of its manifest."""

    slot: Annotated[int, Field(gt=0, le=MAX_SLOT)] = Field(
        description="Position in the rack as the Plan numbers it (node n01 is slot 1)."
    )
    serial: Annotated[str, StringConstraints(pattern=SERIAL_PATTERN)]
    bmc_mac: Mac
    inband_mac: Mac = Field(description="The in-band NIC: the node boots and is reached through it.")
    storage_mac: Mac | None = None
    rail_macs: list[Mac] = Field(default_factory=list, description="One NIC per compute rail, rail 0 first.")


class RackManifest(Model):
    """`hardware/<rack>.yaml`: what arrived in one rack, slot by slot (an integrator's spreadsheet, one row a slot)."""

    rack: Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=60)]
    integrator: str = ""
    slots: list[SlotHardware] = Field(min_length=1)


class HardwareDocument(Model):
    hardware: RackManifest
