"""The site: its jurisdictions, addressing, fabric defaults, admin zone, platform (GitOps and charts),
day-0 provisioning and backups, and `site.yaml` as a whole."""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from typing import Annotated

from pydantic import (
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from kasbah.config.catalog import Catalog
from kasbah.config.fields import (
    BRANCH_PATTERN,
    CHART_VERSION_PATTERN,
    CHECKSUM_PATTERN,
    DOMAIN_PATTERN,
    IMAGE_KIND_PATTERN,
    MAX_AIR_RACK_KW,
    MAX_FABRICS,
    MAX_HALLS,
    MAX_NIC_GBPS,
    MAX_RAILS,
    MAX_SITE_MW,
    MAX_SU_PER_HALL,
    MAX_SU_RACKS,
    MAX_SWITCHES_PER_FABRIC,
    MIRROR_URL_PATTERN,
    IPNetwork,
    Model,
    Name,
)


class GitOpsController(StrEnum):
    """The controller that syncs each cluster's rendered tree."""

    ARGOCD = "argocd"
    FLUX = "flux"


class Destination(Model):
    """An address range a jurisdiction allows egress to."""

    name: Name
    cidr: IPNetwork
    ports: list[Annotated[int, Field(ge=1, le=65535)]] = Field(default_factory=lambda: [443])


class Jurisdiction(Model):
    """A legal area for data residency, with the egress destinations it allows."""

    name: Name
    description: str = ""
    egress: list[Destination] = Field(default_factory=list)


class Network(Model):
    """An address pool carved site → hall → scalable unit → rack, `per_rack` addresses a rack."""

    supernet: IPNetwork
    per_rack: Annotated[int, Field(gt=0, le=65536)]
    mtu: Annotated[int, Field(ge=1280, le=9216)] | None = Field(
        None, description="The nodes' interface MTU on this network; unset: 1500, 9000 on storage and compute."
    )

    @field_validator("per_rack")
    @classmethod
    def _power_of_two(cls, v: int) -> int:
        if v & (v - 1):
            raise ValueError(
                f"{v} is not a power of two (a subnet size); fix: use {1 << (v.bit_length() - 1)} or {1 << v.bit_length()}"
            )
        return v


class PodNetwork(Model):
    """Pod ranges: one block a cluster, one `node_prefix` a node inside it."""

    supernet: IPNetwork
    cluster_prefix: Annotated[int, Field(ge=1, le=127)]
    node_prefix: Annotated[int, Field(ge=1, le=128)]


class ServiceNetwork(Model):
    supernet: IPNetwork
    cluster_prefix: Annotated[int, Field(ge=1, le=128)]


class Reservations(Model):
    """Index space reserved up front so that growth never renumbers anything."""

    halls: Annotated[int, Field(gt=0, le=MAX_HALLS)]
    scalable_units_per_hall: Annotated[int, Field(gt=0, le=MAX_SU_PER_HALL)]
    racks_per_scalable_unit: Annotated[int, Field(gt=0, le=MAX_SU_RACKS)]
    rails: Annotated[int, Field(gt=0, le=MAX_RAILS)]
    fabrics: Annotated[int, Field(gt=0, le=MAX_FABRICS)]
    switches_per_fabric: Annotated[int, Field(gt=0, le=MAX_SWITCHES_PER_FABRIC)]


class Addressing(Model):
    reserve: Reservations
    oob: Network
    inband: Network
    storage: Network
    compute: Network = Field(description="Split into `reserve.rails` ranges, one a compute rail.")
    loopback: IPNetwork
    pods: PodNetwork
    services: ServiceNetwork


class FabricDefaults(Model):
    compute_switch: dict[Annotated[int, Field(gt=0, le=MAX_NIC_GBPS)], Name] = Field(
        description="Compute-fabric switch model by NIC speed in Gb/s."
    )
    storage_switch: Name
    oob_switch: Name


class AdminZone(Model):
    """Where the management plane (BMC/out-of-band, Kubernetes control plane, node SSH) may be reached from."""

    networks: list[IPNetwork] = Field(
        default_factory=list, description="Operators' bastions and CI runners; empty: reachable from no network."
    )
    dns_resolvers: list[IPNetwork] = Field(
        default_factory=list, description="Site resolvers CoreDNS forwards to; empty: cluster names only."
    )


def _userinfo(url: str) -> str:
    """The `user[:password]` part of a URL's authority, if any."""
    authority = url.split("//", 1)[-1].split("/", 1)[0]
    return authority.rsplit("@", 1)[0] if "@" in authority else ""


class ChartSource(Model):
    """Where one Helm chart comes from, pinned: a chart in an HTTPS repository, or an OCI reference."""

    chart: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^\S+$")]
    version: Annotated[str, StringConstraints(pattern=CHART_VERSION_PATTERN)]
    repository: Annotated[str, StringConstraints(pattern=r"^https://\S+$")] | None = Field(
        default=None, description="The chart repository (a mirror on a sovereign site); none for an oci:// chart."
    )

    @model_validator(mode="after")
    def _source(self) -> ChartSource:
        oci = self.chart.startswith("oci://")
        if oci and self.repository:
            raise ValueError("an oci:// chart names its registry itself; fix: remove `repository`")
        if not oci and not self.repository:
            raise ValueError(
                f"chart {self.chart} needs a `repository` (https://...), or write it as an oci:// reference"
            )
        if self.repository and _userinfo(self.repository):
            raise ValueError("credentials in a repository URL end up in state and logs; fix: remove `user:password@`")
        return self


class GitOps(Model):
    """The GitOps controller that syncs each cluster's tree, and the repository it reads them from."""

    controller: GitOpsController = GitOpsController.ARGOCD
    repository: Annotated[str, StringConstraints(pattern=r"^(https|ssh)://\S+$")] = Field(
        description="The Git repository the rendered trees are published to (on the campus)."
    )
    branch: Annotated[str, StringConstraints(pattern=BRANCH_PATTERN)] = "rendered"
    sources: list[IPNetwork] = Field(
        min_length=1, description="Addresses of the Git server (and its mirrors): the controller's only egress."
    )

    @field_validator("repository")
    @classmethod
    def _no_credentials(cls, v: str) -> str:
        user = _userinfo(v)
        # ssh://git@host/... names an account, not a secret; a password or an HTTPS user is a credential
        if user and (":" in user or v.startswith("https://")):
            raise ValueError(
                "credentials in the repository URL end up in state and logs; fix: remove them "
                "(the controller's repository credentials are a secret of the cluster, not of the environment)"
            )
        return v


class Platform(Model):
    """What every cluster runs: the GitOps controller and the pinned Helm charts of the platform's releases."""

    gitops: GitOps
    charts: dict[Name, ChartSource] = Field(
        description="Each Helm release of the platform (cilium, kueue, gpu-operator, ...) and its pinned chart."
    )
    registry: (
        Annotated[
            str,
            StringConstraints(
                pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9._-]+)*$", max_length=200
            ),
        ]
        | None
    ) = Field(
        default=None,
        description="The site's container registry (host[:port][/path]): tenants' pods run images from it only; "
        "unset: any registry (the admission policy says so).",
    )


class NodeImage(Model):
    """The node OS image on the site's mirror (never a public URL: the nodes have no route out)."""

    kind: Annotated[str, Field(pattern=IMAGE_KIND_PATTERN)] = Field(
        "disk",
        description="disk: a whole-disk image Ironic's agent writes to the node's disk; "
        "iso: a live image the node boots from virtual media (diskless nodes, labs).",
    )
    url: Annotated[str, StringConstraints(pattern=MIRROR_URL_PATTERN, max_length=500)]
    checksum: Annotated[str, StringConstraints(pattern=CHECKSUM_PATTERN)] = Field(
        description="sha256 of the image file, as `sha256:<hex>`: Ironic checks it before booting the node."
    )


class Provisioning(Model):
    """Day 0: the network services that reach racked nodes before they have an OS, and what Ironic deploys."""

    domain: Annotated[str, StringConstraints(pattern=DOMAIN_PATTERN, max_length=120)] = Field(
        "kasbah.internal", description="The site's names live under `<site>.<domain>`."
    )
    dns_servers: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = Field(
        default_factory=list,
        description="The authoritative DNS servers of the site's zones (their NS records and glue); empty: ns1 with no address.",
    )
    image: NodeImage | None = Field(None, description="The OS image Ironic writes to a node, from the site's mirror.")


class BackupTarget(Model):
    """Where backups go: a directory of the campus's own storage, mounted on the hosts that write them."""

    name: Name
    jurisdiction: Name = Field(description="Where the data lies; every tenant whose objects it holds must allow it.")
    path: Annotated[str, StringConstraints(pattern=r"^/[A-Za-z0-9._/-]*$", max_length=200)] = Field(
        description="An absolute directory on the writing hosts (a mount of the campus storage, storage_client)."
    )
    description: str = ""


class EtcdBackups(Model):
    """Scheduled snapshots of every cluster's etcd, from each control-plane host."""

    target: Name = Field(description="A site.backups.targets entry.")
    every_minutes: Annotated[int, Field(ge=5, le=1440)] = 60
    keep: Annotated[int, Field(ge=1, le=10000)] = Field(
        default=48, description="Snapshots kept per cluster and host; older ones are removed after a good snapshot."
    )


class WorkloadBackups(Model):
    """Scheduled backups of every tenant's namespaces, each to a target in the tenant's jurisdictions."""

    targets: list[Name] = Field(
        min_length=1,
        description="site.backups.targets entries, in preference order: a tenant's backups go to the first one in its "
        "jurisdictions.",
    )
    every_minutes: Annotated[int, Field(ge=15, le=10080)] = 1440
    keep: Annotated[int, Field(ge=1, le=10000)] = Field(default=14, description="Backups kept per tenant and cluster.")


class Backups(Model):
    targets: list[BackupTarget] = Field(default_factory=list)
    etcd: EtcdBackups | None = Field(default=None, description="Unset: no etcd snapshots (the report says so).")
    workloads: WorkloadBackups | None = Field(
        default=None, description="Unset: tenants' volumes and objects are not backed up by the platform."
    )


CLAIM_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"


class Issuer(Model):
    """An OpenID Connect issuer the API servers trust for one tenant's (or a reseller's customers') users.

    kasbah writes its claim mappings: every username becomes `<tenant>:<claim>` and every group
    `kasbah:<tenant>:<group>`, so an issuer never mints an identity another tenant's RoleBindings accept.
    """

    name: Name
    url: Annotated[str, StringConstraints(min_length=1, max_length=300)] = Field(
        description="The issuer URL, exactly as in its tokens' `iss` claim (https, no query or fragment)."
    )
    jurisdiction: Name = Field(description="Where the identity provider runs; every tenant it serves must allow it.")
    audiences: list[Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^\S+$")]] = Field(
        default_factory=lambda: ["kasbah"], min_length=1, description="Accepted `aud` values (any one)."
    )
    username_claim: Annotated[str, StringConstraints(pattern=CLAIM_PATTERN)] = "sub"
    groups_claim: Annotated[str, StringConstraints(pattern=CLAIM_PATTERN)] = "groups"
    tenant_claim: Annotated[str, StringConstraints(pattern=CLAIM_PATTERN)] | None = Field(
        default=None,
        description="Only for an issuer shared by several tenants: the claim naming the tenant a token is for "
        "(kasbah accepts only the tenants that name the issuer).",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.fullmatch(r"https://[^\s?#/]+(/[^\s?#]*)?", v):
            raise ValueError(
                f"`{v}` is not an https URL without query or fragment: the API servers fetch the issuer's signing "
                "keys from it and accept only tokens whose `iss` is exactly it; fix: write the issuer's https:// URL"
            )
        if _userinfo(v):
            raise ValueError("credentials in an issuer URL end up in state and logs; fix: remove `user:password@`")
        return v


class Identity(Model):
    """Who may log in to the clusters: the operator's administrators (the admin zone's issuer) and tenants' issuers."""

    issuers: list[Issuer] = Field(default_factory=list)
    admin_issuer: Name | None = Field(
        default=None,
        description="The issuer of the operator's own administrators (the admin zone's): the only one that reaches "
        "cluster-scoped objects.",
    )


class MirrorKind(StrEnum):
    """What a site mirror serves."""

    PACKAGES = "packages"  # Debian repositories (apt): the nodes' packages
    CHARTS = "charts"  # Helm chart repositories: the platform's releases
    REGISTRY = "registry"  # container images (and oci:// charts), pulled through containerd's hosts.toml


class Mirror(Model):
    """A mirror on the campus: what the site serves itself, in place of the upstreams it lists.

    A URL of an upstream is served as `<url>/<upstream host><upstream path>`; a registry mirror serves an
    upstream registry's images under `<url>/v2/<upstream host>/...` (a proxy-cache project per upstream).
    """

    name: Name
    kind: MirrorKind
    url: Annotated[
        str, StringConstraints(pattern=r"^https://[a-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$", max_length=300)
    ] = Field(description="The mirror's base URL (https, no credentials, no query).")
    jurisdiction: Name = Field(description="Where the mirror runs; every tenant it serves must allow it.")
    upstreams: list[
        Annotated[str, StringConstraints(pattern=r"^(https?://)?[a-z0-9.-]+(:[0-9]{1,5})?(/\S*)?$", max_length=300)]
    ] = Field(
        default_factory=list,
        description="What it mirrors: URL prefixes of repositories (https://pkgs.k8s.io), or registry hosts (nvcr.io).",
    )


class SinkKind(StrEnum):
    LOGS = "logs"  # pods' logs (the cluster's log collector ships them)
    TELEMETRY = "telemetry"  # the metering rules' recorded series (each cluster's Prometheus writes them)


class SinkScope(StrEnum):
    PLATFORM = "platform"  # receives every tenant's data of its kind
    TENANT = "tenant"  # receives only the data of the tenants that name it (their `sinks:`)


class Sink(Model):
    """Where logs or telemetry leave a cluster for: declared, with the jurisdiction the data then lies in."""

    name: Name
    kind: SinkKind
    url: Annotated[str, StringConstraints(min_length=1, max_length=300)] = Field(
        description="The sink's https endpoint (no credentials: the collector's are a secret of the cluster)."
    )
    jurisdiction: Name = Field(description="Where the sink stores what it receives.")
    scope: SinkScope = Field(
        SinkScope.PLATFORM,
        description="platform: every tenant's data (every tenant must allow its jurisdiction); "
        "tenant: only the tenants that name it in their `sinks`.",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if _userinfo(v):  # said without the value: it holds a secret
            raise ValueError(
                "the sink URL carries credentials, which would end up in the rendered tree and logs; fix: remove "
                "`user:password@` (the collector's credentials are a secret of the cluster)"
            )
        if not re.fullmatch(r"https://[^\s/?#]+(/[^\s?#]*)?", v):
            raise ValueError(f"`{v}` is not an https URL without query or fragment; fix: write the sink's https:// URL")
        return v


class Storage(Model):
    """The campus's storage pools as Kubernetes storage: one StorageClass a storage pool, in the campus's
    jurisdiction; tenants' volumes come from the classes of their jurisdictions only."""

    provisioner: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$", max_length=63)] = Field(
        description="The CSI driver that serves the storage pools (its name, as in the StorageClass)."
    )
    parameters: dict[
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$", max_length=253)],
        Annotated[str, StringConstraints(max_length=1024)],
    ] = Field(default_factory=dict, description="The driver's parameters; `{pool}` is the storage pool's name.")


class Kms(Model):
    """Encryption at rest of the clusters' Secrets: the API servers' KMS v2 provider, a plugin on every control-plane
    host whose keys the campus holds (its HSM). kasbah writes the EncryptionConfiguration; the plugin is the site's."""

    name: Name = Field(description="The provider's name in the EncryptionConfiguration (renaming it re-encrypts).")
    socket: Annotated[str, StringConstraints(pattern=r"^/[A-Za-z0-9._/-]+\.sock$", max_length=200)] = Field(
        "/var/run/kmsplugin/socket.sock", description="The plugin's Unix socket on each control-plane host."
    )
    jurisdiction: Name = Field(description="Where the keys are held; every tenant's Secrets depend on them.")
    timeout_seconds: Annotated[int, Field(ge=1, le=60)] = 3


class Site(Model):
    name: Name
    description: str = ""
    renewable_supply_mw: Annotated[float, Field(gt=0, le=MAX_SITE_MW)] = Field(
        description="Facility power the supply can deliver."
    )
    pue: Annotated[float, Field(ge=1.0, le=3.0)]
    air_cooling_ceiling_kw: Annotated[float, Field(gt=0, le=MAX_AIR_RACK_KW)] = Field(
        description="Most an air-cooled rack may draw."
    )
    jurisdictions: list[Jurisdiction] = Field(min_length=1)
    jurisdiction: Name | None = Field(
        default=None,
        description="The jurisdiction the campus lies in: its own names (under <site>.<domain>) are served there; "
        "unset: the first of `jurisdictions`.",
    )
    mirrors: list[Mirror] = Field(
        default_factory=list,
        description="The site's mirrors (packages, charts, registry): nodes and clusters fetch from them, never upstream.",
    )
    storage: Storage | None = Field(
        default=None, description="Storage pools as StorageClasses; unset: no tenant volume has a class of the Plan."
    )
    kms: Kms | None = Field(
        default=None, description="Secrets encrypted at rest with a KMS v2 plugin; unset: stored as etcd holds them."
    )
    sinks: list[Sink] = Field(
        default_factory=list, description="Log and telemetry sinks; none: nothing leaves the clusters' own stores."
    )
    addressing: Addressing
    fabrics: FabricDefaults
    admin_zone: AdminZone = Field(default_factory=AdminZone)
    identity: Identity = Field(default_factory=Identity)
    platform: Platform
    provisioning: Provisioning = Field(default_factory=lambda: Provisioning())
    backups: Backups = Field(default_factory=Backups)
    phases: list[Name] = Field(min_length=1, description="Phase names, in build order.")
    source: str = ""


class SiteDocument(Model):
    """`site.yaml`: the site, its catalog, and the ordered list of phases."""

    site: Site
    catalog: Catalog
