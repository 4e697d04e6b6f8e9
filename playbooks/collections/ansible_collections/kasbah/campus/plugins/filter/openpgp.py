"""`openpgp_key`: what a repository's armored OpenPGP public key says about itself (fingerprint, expiry).

For pinning repository signing keys by fingerprint (common's signing_key tasks): the fingerprint is
computed from the primary key's own material (RFC 4880 v4: SHA-1 over 0x99, length and the key
packet), so a key with the pinned fingerprint is the pinned key whatever else the file says. The
expiry is read from the primary key's newest self-certification (key expiration time subpacket);
it decides only when to warn and refetch: apt (gpgv) checks the signatures themselves.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import struct
from typing import Any


class OpenPGPError(ValueError):
    pass


def _dearmor(text: str) -> bytes:
    lines = text.strip().splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("-----BEGIN PGP PUBLIC KEY BLOCK"))
    except StopIteration:
        raise OpenPGPError("not an armored OpenPGP public key (no BEGIN PGP PUBLIC KEY BLOCK line)") from None
    body: list[str] = []
    in_headers = True
    for line in lines[start + 1 :]:
        line = line.strip()
        if line.startswith("-----END"):
            break
        if in_headers:
            if not line:
                in_headers = False
            elif ":" not in line:  # no armor headers at all
                in_headers = False
                body.append(line)
            continue
        if line.startswith("="):  # the CRC24 checksum line
            break
        body.append(line)
    try:
        return base64.b64decode("".join(body), validate=True)
    except ValueError as exc:
        raise OpenPGPError(f"the armored key is not valid base64: {exc}") from None


def _packets(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    i = 0
    while i < len(data):
        head = data[i]
        if not head & 0x80:
            raise OpenPGPError(f"byte {i}: not an OpenPGP packet header")
        if head & 0x40:  # new format
            tag = head & 0x3F
            first = data[i + 1]
            if first < 192:
                length, i = first, i + 2
            elif first < 224:
                length, i = ((first - 192) << 8) + data[i + 2] + 192, i + 3
            elif first == 255:
                length, i = struct.unpack(">I", data[i + 2 : i + 6])[0], i + 6
            else:
                raise OpenPGPError("partial-length packets do not occur in public keys")
        else:  # old format
            tag, kind = (head >> 2) & 0x0F, head & 0x03
            size = (1, 2, 4)[kind] if kind < 3 else 0
            if not size:
                raise OpenPGPError("indeterminate-length packets do not occur in public keys")
            length = int.from_bytes(data[i + 1 : i + 1 + size], "big")
            i += 1 + size
        out.append((tag, data[i : i + length]))
        i += length
    return out


def _subpackets(block: bytes) -> list[tuple[int, bytes]]:
    out = []
    i = 0
    while i < len(block):
        first = block[i]
        if first < 192:
            length, i = first, i + 1
        elif first < 255:
            length, i = ((first - 192) << 8) + block[i + 1] + 192, i + 2
        else:
            length, i = struct.unpack(">I", block[i + 1 : i + 5])[0], i + 5
        out.append((block[i] & 0x7F, block[i + 1 : i + length]))
        i += length
    return out


def key_info(armored: str) -> dict[str, Any]:
    """{fingerprint, created, expires (ISO date or None), uids} of the first primary key in `armored`."""
    packets = _packets(_dearmor(armored))
    if not packets or packets[0][0] != 6:
        raise OpenPGPError("the key does not start with a public key packet")
    body = packets[0][1]
    if body[0] != 4:
        raise OpenPGPError(f"version {body[0]} keys are not read here (v4 only)")
    created = struct.unpack(">I", body[1:5])[0]
    fingerprint = hashlib.sha1(b"\x99" + len(body).to_bytes(2, "big") + body).hexdigest().upper()  # RFC 4880 v4 fingerprint
    key_id = bytes.fromhex(fingerprint[-16:])
    uids: list[str] = []
    newest: tuple[int, int | None] | None = None  # (signature time, expiry seconds)
    for tag, packet in packets[1:]:
        if tag == 14:  # subkeys and their binding signatures follow: the primary's own are done
            break
        if tag == 13:
            uids.append(packet.decode("utf-8", "replace"))
        if tag != 2 or packet[0] != 4 or packet[1] not in (0x10, 0x11, 0x12, 0x13, 0x1F):
            continue
        hashed_len = struct.unpack(">H", packet[4:6])[0]
        hashed = _subpackets(packet[6 : 6 + hashed_len])
        rest = packet[6 + hashed_len :]
        unhashed = _subpackets(rest[2 : 2 + struct.unpack(">H", rest[:2])[0]])
        issuers = {v for t, v in hashed + unhashed if t == 16} | {v[-8:] for t, v in hashed + unhashed if t == 33}
        if issuers and key_id not in issuers:
            continue  # a certification by another key
        when = next((struct.unpack(">I", v)[0] for t, v in hashed if t == 2), 0)
        expiry = next((struct.unpack(">I", v)[0] for t, v in hashed if t == 9), None)
        if newest is None or when >= newest[0]:
            newest = (when, expiry or None)

    def day(ts: int) -> str:
        return datetime.datetime.fromtimestamp(ts, datetime.UTC).date().isoformat()

    expires = day(created + newest[1]) if newest and newest[1] else None
    return {"fingerprint": fingerprint, "created": day(created), "expires": expires, "uids": uids}


def openpgp_key(armored: str) -> dict[str, Any]:
    try:
        return key_info(armored)
    except (OpenPGPError, IndexError, struct.error) as exc:
        from ansible.errors import AnsibleFilterError

        raise AnsibleFilterError(f"openpgp_key: {exc}") from None


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"openpgp_key": openpgp_key}
