"""Kubernetes' own rules that no JSON-Schema engine knows: names, labels, quantities, formats, and their messages."""

from __future__ import annotations

import binascii
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Final, TypeAlias

# A path is the tuple of keys from the object's root; the dotted text is only built for issues.
Path: TypeAlias = tuple[str | int, ...]
Found: TypeAlias = list[tuple[Path, str]]

_PLAIN_KEY = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")
_SHOWN_CHARS = 60
_LISTED_NAMES = 12


def path_text(path: Sequence[str | int]) -> str:
    text = ""
    for key in path:
        if isinstance(key, int):
            text += f"[{key}]"
        elif _PLAIN_KEY.match(key):
            text += f".{key}" if text else key
        else:
            text += f"[{json.dumps(key)}]"
    return text


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str | date):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def show(value: Any) -> str:
    """A short, truncated rendering of a value for a message."""
    if isinstance(value, Mapping):
        keys = ", ".join(str(k) for k in list(value)[:5])
        more = ", …" if len(value) > 5 else ""
        return f"{{{keys}{more}}}"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, date):
        value = value.isoformat()
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def got(value: Any) -> str:
    return f"got {type_name(value)} {show(value)}" if value is not None else "got null"


def name_list(names: Iterable[str]) -> str:
    items = [str(n) for n in names]
    shown = ", ".join(items[:_LISTED_NAMES])
    return shown + (f", … ({len(items)} in all)" if len(items) > _LISTED_NAMES else "")


def plain_json(value: Any) -> Any:
    """value as JSON has it: YAML dates as text, every key a string."""
    if isinstance(value, Mapping):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_json(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat() + ("Z" if value.tzinfo is None else "")
    if isinstance(value, date):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float):
        return value
    return str(value)


# --------------------------------------------------------------------------------------------
# Value rules.

QUANTITY: Final = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_DNS1123_LABEL_RE: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN_RE: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035_LABEL_RE: Final = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME_RE: Final = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE_RE: Final = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_RFC3339_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_DATE_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_UUID_RE: Final = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
INT_RANGES: Final = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
# The string formats the API server enforces; any other format is accepted, as there.
STRING_FORMATS: Final = frozenset({"date-time", "date", "uuid", "byte", "ipv4", "ipv6", "cidr"})
_ANNOTATIONS_MAX_BYTES = 256 * 1024

QUANTITY_WORDS: Final = "is not a valid quantity (examples: 500m, 4, 1.5, 16Gi, 2Ti)"
# Friendlier words for patterns that recur across upstream schemas.
_PATTERN_WORDS: Final = {
    QUANTITY: QUANTITY_WORDS,
    _DNS1123_SUBDOMAIN_RE.pattern: "must be a DNS-1123 subdomain (lowercase letters, digits, '-' and '.')",
    _DNS1123_LABEL_RE.pattern: "must be a DNS-1123 label (lowercase letters, digits and '-')",
}


def pattern_words(pattern: str) -> str:
    """What a value that does not match an upstream pattern is told."""
    if pattern.startswith("^(?:(?:25[0-5]"):
        return "is not a valid IPv4 or IPv6 CIDR (e.g. 10.0.0.0/8, fd00::/8)"
    shown = pattern if len(pattern) <= 80 else pattern[:79] + "…"
    return _PATTERN_WORDS.get(pattern, f"does not match the pattern {shown}")


def dns_subdomain_problem(value: str) -> str | None:
    if len(value) > 253:
        return f"must be no more than 253 characters (has {len(value)})"
    if not _DNS1123_SUBDOMAIN_RE.match(value):
        return "must be a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
    return None


def dns_label_problem(value: str) -> str | None:
    if len(value) > 63:
        return f"must be no more than 63 characters (has {len(value)})"
    if not _DNS1123_LABEL_RE.match(value):
        return "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit"
    return None


def dns1035_label_problem(value: str) -> str | None:
    if len(value) > 63:
        return f"must be no more than 63 characters (has {len(value)})"
    if not _DNS1035_LABEL_RE.match(value):
        return "must be a DNS-1035 label: lowercase letters, digits and '-', starting with a letter"
    return None


def path_segment_problem(value: str) -> str | None:
    if value in (".", ".."):
        return f"may not be {value!r}"
    for bad in ("/", "%"):
        if bad in value:
            return f"may not contain {bad!r}"
    return None


def qualified_name_problem(key: str) -> str | None:
    prefix, slash, name = key.rpartition("/")
    if slash and not prefix:
        return "prefix before '/' must not be empty"
    if slash and (problem := dns_subdomain_problem(prefix)) is not None:
        return f"prefix {prefix!r} {problem}"
    if not name:
        return "name part must not be empty"
    if len(name) > 63:
        return f"name part must be no more than 63 characters (has {len(name)})"
    if not _QUALIFIED_NAME_RE.match(name):
        return "name part must consist of alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric"
    return None


def format_problem(fmt: str, value: Any) -> str | None:
    """The API server's check for the formats it enforces; unknown formats are accepted."""
    if fmt in INT_RANGES:
        if isinstance(value, int) and not isinstance(value, bool):
            low, high = INT_RANGES[fmt]
            if not low <= value <= high:
                return f"{value} does not fit in {fmt} ({low}..{high})"
        return None
    if isinstance(value, date) or not isinstance(value, str):
        return None
    problem: str | None = None
    if fmt == "date-time":
        problem = None if _RFC3339_RE.match(value) else "is not an RFC 3339 date-time (e.g. 2025-01-31T12:00:00Z)"
    elif fmt == "date":
        problem = None if _DATE_RE.match(value) else "is not a date (YYYY-MM-DD)"
    elif fmt == "uuid":
        problem = None if _UUID_RE.match(value) else "is not a UUID"
    elif fmt == "byte":
        try:
            binascii.a2b_base64(value.encode("ascii"), strict_mode=True)
        except (binascii.Error, UnicodeEncodeError):
            problem = "is not valid base64 (encode the value, or use stringData)"
    elif fmt in ("ipv4", "ipv6"):
        try:
            address = ipaddress.ip_address(value)
            if address.version != int(fmt[-1]):
                problem = f"is not an {fmt.upper()} address"
        except ValueError:
            problem = f"is not an {fmt.upper()} address"
    elif fmt == "cidr":
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            problem = "is not a CIDR (e.g. 10.0.0.0/8)"
    return None if problem is None else f"{show(value)} {problem}"


# --------------------------------------------------------------------------------------------
# Which kinds are cluster-scoped, and how their objects may be named.

# Built-in kinds that are not namespaced (kubectl api-resources --namespaced=false); every
# other built-in kind with object metadata is namespaced.
CLUSTER_SCOPED: Final = frozenset(
    {
        ("", "ComponentStatus"),
        ("", "Namespace"),
        ("", "Node"),
        ("", "PersistentVolume"),
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding"),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("apiregistration.k8s.io", "APIService"),
        ("authentication.k8s.io", "SelfSubjectReview"),
        ("authentication.k8s.io", "TokenReview"),
        ("authorization.k8s.io", "SelfSubjectAccessReview"),
        ("authorization.k8s.io", "SelfSubjectRulesReview"),
        ("authorization.k8s.io", "SubjectAccessReview"),
        ("certificates.k8s.io", "CertificateSigningRequest"),
        ("certificates.k8s.io", "ClusterTrustBundle"),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
        ("internal.apiserver.k8s.io", "StorageVersion"),
        ("networking.k8s.io", "IngressClass"),
        ("networking.k8s.io", "IPAddress"),
        ("networking.k8s.io", "ServiceCIDR"),
        ("node.k8s.io", "RuntimeClass"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("resource.k8s.io", "DeviceClass"),
        ("resource.k8s.io", "DeviceTaintRule"),
        ("resource.k8s.io", "ResourceClass"),
        ("resource.k8s.io", "ResourceSlice"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("storage.k8s.io", "CSIDriver"),
        ("storage.k8s.io", "CSINode"),
        ("storage.k8s.io", "StorageClass"),
        ("storage.k8s.io", "VolumeAttachment"),
        ("storage.k8s.io", "VolumeAttributesClass"),
        ("storagemigration.k8s.io", "StorageVersionMigration"),
    }
)

# Name rules that differ from the default DNS-1123 subdomain (k8s.io/kubernetes pkg/apis/*/validation).
_NameRule: TypeAlias = Callable[[str], "str | None"]
_NAME_RULES: Final[dict[tuple[str, str], _NameRule]] = {
    ("", "Namespace"): dns_label_problem,
    ("", "Service"): dns1035_label_problem,
    ("rbac.authorization.k8s.io", "Role"): path_segment_problem,
    ("rbac.authorization.k8s.io", "ClusterRole"): path_segment_problem,
    ("rbac.authorization.k8s.io", "RoleBinding"): path_segment_problem,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): path_segment_problem,
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"): path_segment_problem,
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"): path_segment_problem,
}
_NAME_MAX_LENGTH: Final = {("batch", "CronJob"): 52}


def check_metadata(metadata: Mapping[str, Any], group: str, kind: str, namespaced: bool, out: Found) -> None:
    """ObjectMeta rules the OpenAPI schema cannot express (apimachinery ValidateObjectMeta)."""
    root: Path = ("metadata",)
    name = metadata.get("name")
    if name is None:
        out.append(((*root, "name"), "required field is missing (apply and GitOps need a fixed name)"))
    elif isinstance(name, str):
        rule = _NAME_RULES.get((group, kind), dns_subdomain_problem)
        problem = rule(name) if name else "must not be empty"
        max_length = _NAME_MAX_LENGTH.get((group, kind))
        if problem is None and max_length is not None and len(name) > max_length:
            problem = f"must be no more than {max_length} characters for a {kind} (has {len(name)})"
        if problem is not None:
            out.append(((*root, "name"), f"{show(name)} {problem}"))
    namespace = metadata.get("namespace")
    if namespaced:
        if namespace is None or namespace == "":
            out.append(
                (
                    (*root, "namespace"),
                    f"{kind} is namespaced; set metadata.namespace "
                    "(otherwise it lands in whatever namespace the applying client defaults to)",
                )
            )
        elif isinstance(namespace, str) and (problem := dns_label_problem(namespace)) is not None:
            out.append(((*root, "namespace"), f"{show(namespace)} {problem}"))
    elif namespace not in (None, ""):
        out.append(((*root, "namespace"), f"{kind} is cluster-scoped and takes no namespace; remove {show(namespace)}"))
    for field in ("labels", "annotations"):
        entries = metadata.get(field)
        if isinstance(entries, Mapping):
            _check_entries(field, entries, (*root, field), out)


def _check_entries(field: str, entries: Mapping[Any, Any], where: Path, out: Found) -> None:
    total = 0
    for key, value in entries.items():
        key_text = str(key)
        problem = qualified_name_problem(key_text.lower() if field == "annotations" else key_text)
        if problem is not None:
            out.append(((*where, key_text), f"invalid {field[:-1]} key {show(key_text)}: {problem}"))
        if field == "labels" and isinstance(value, str):
            if len(value) > 63:
                out.append(((*where, key_text), f"label value {show(value)} is longer than 63 characters"))
            elif not _LABEL_VALUE_RE.match(value):
                out.append(
                    (
                        (*where, key_text),
                        f"label value {show(value)} must be empty or alphanumerics, '-', '_' or '.', "
                        "starting and ending with an alphanumeric",
                    )
                )
        total += len(key_text) + (len(value) if isinstance(value, str) else 0)
    if field == "annotations" and total > _ANNOTATIONS_MAX_BYTES:
        out.append((where, f"annotations total {total} bytes, more than the 256 KiB the API server accepts"))
