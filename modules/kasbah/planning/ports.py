"""Well-known ports of the platform, one definition each: host flows, manifests, bootstrap and inventory read them here.

Upstream defaults (Kubernetes "Ports and Protocols"; Cilium "Firewall Rules"; the RoCEv2 UDP port;
DCGM's host engine). A site that moves one changes it here and every projection follows.
"""

from __future__ import annotations

SSH = 22  # also Git over ssh:// (the GitOps controller's source)
HTTPS = 443  # Git over https://, chart repositories
DNS = 53
KUBE_APISERVER = 6443
ETCD = (2379, 2380)  # client, peer
KUBELET = 10250
CILIUM_VXLAN = 8472
CILIUM_HEALTH = 4240
NODE_EXPORTER = 9100
DCGM_EXPORTER = 9400
DCGM_HOSTENGINE = 5555
ROCE_V2 = 4791
# Admission webhooks the platform's controllers serve (Kueue's, among others)
WEBHOOK = 9443
# Tenants and platform pods expose metrics here, by convention; the monitoring namespace scrapes it
METRICS = (9000, 9999)
