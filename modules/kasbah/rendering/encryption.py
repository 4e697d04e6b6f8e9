"""encryption.yaml: the API servers' encryption at rest of Secrets (EncryptionConfiguration, KMS v2).

Secrets are written encrypted by the KMS v2 provider (site.kms: a plugin on every control-plane host, on a Unix
socket, whose keys the campus holds); `identity` after it reads what was stored before encryption was turned on,
until those Secrets are rewritten (`kubectl get secrets -A -o json | kubectl replace -f -`). kube-apiserver reads
it with `--encryption-provider-config`; the control_plane role writes it on every control-plane host.
"""

from __future__ import annotations

import yaml

from kasbah.planning.model import KmsProvider

API_VERSION = "apiserver.config.k8s.io/v1"
PATH = "/etc/kubernetes/kasbah/encryption.yaml"  # on every control-plane host (the control_plane role)


def encryption_config(kms: KmsProvider) -> bytes:
    doc = {
        "apiVersion": API_VERSION,
        "kind": "EncryptionConfiguration",
        "resources": [
            {
                "resources": ["secrets"],
                "providers": [
                    {
                        "kms": {
                            "apiVersion": "v2",
                            "name": kms.name,
                            "endpoint": f"unix://{kms.socket}",
                            "timeout": f"{kms.timeout_seconds}s",
                        }
                    },
                    {"identity": {}},
                ],
            }
        ],
    }
    head = (
        "---\n# Managed by kasbah: kube-apiserver --encryption-provider-config, from site.kms: Secrets encrypted at\n"
        f"# rest by the KMS v2 plugin on this host, its keys held in {kms.jurisdiction}; do not edit.\n"
    )
    return (head + yaml.safe_dump(doc, sort_keys=False)).encode()
