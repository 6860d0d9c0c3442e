"""Which offerings skyd can give a faster network for `network_tier: best`, and what it
becomes there (EFA on AWS, gVNIC + Tier_1 on GCP, accelerated networking on Azure).

Sources (read 2026-12-06):
- AWS: the EC2 user guide's "Elastic Fabric Adapter" page, section "Supported instance
  types" (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/efa.html#efa-instance-types),
  as published in awsdocs/amazon-ec2-user-guide doc_source/efa.md at commit 0147f87 (the
  last version of that repository); and p5.48xlarge and p5e.48xlarge from the user guide's
  "Maximize network bandwidth on accelerated computing instances with EFA"
  (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/p5-efa.html: P5 and P5e take an
  EFA on each of up to 32 network cards). Other families AWS added later (g6, g6e, p5en,
  trn2, …) are not in the table, so they are left out for `best` rather than launched
  without EFA.
- GCP: "Configure per VM Tier_1 networking performance"
  (https://cloud.google.com/compute/docs/networking/configure-vm-with-high-bandwidth-configuration),
  Requirements: N2, N2D, C2, C2D or C3 VMs with at least 30 vCPUs, using gVNIC.
- Azure: "Accelerated Networking overview"
  (https://learn.microsoft.com/en-us/azure/virtual-network/accelerated-networking-overview):
  most general-purpose and compute-optimized sizes with 2+ vCPUs, 4+ on hyperthreaded
  sizes. skyd's rule: 4+ vCPUs (holds whether the size is hyperthreaded or not), and never
  an A- or B-series size (A and the first B-series lack it; Bsv2 is left out too, to keep
  the rule simple), nor the older GPU generations (NC, NCv2, NCv3, NV, NVv3), whose size
  pages were not checked here: left out rather than refused at launch.
Lab pools (local, ssh, slurm, kubernetes) keep their own network: not excluded.
"""

from __future__ import annotations

import re

from skyd.catalog.instance_types import gce_machine_type
from skyd.model import POOL_CLOUDS, Offer

# Every instance type the AWS source lists as taking an EFA, by category.
AWS_EFA_TYPES = frozenset(
    {
        # general purpose
        *("m5dn.24xlarge", "m5dn.metal", "m5n.24xlarge", "m5n.metal", "m5zn.12xlarge"),
        *("m5zn.metal", "m6a.32xlarge", "m6a.48xlarge", "m6a.metal", "m6i.32xlarge"),
        *("m6i.metal", "m6id.32xlarge", "m6id.metal"),
        # compute optimized
        *("c5n.18xlarge", "c5n.9xlarge", "c5n.metal", "c6a.32xlarge", "c6a.48xlarge"),
        *("c6a.metal", "c6gn.16xlarge", "c6i.32xlarge", "c6i.metal", "c6id.32xlarge"),
        *("c6id.metal", "c7g.16xlarge", "hpc6a.48xlarge"),
        # memory optimized
        *("r5dn.24xlarge", "r5dn.metal", "r5n.24xlarge", "r5n.metal", "r6a.48xlarge"),
        *("r6a.metal", "r6i.32xlarge", "r6i.metal", "r6id.32xlarge", "r6id.metal"),
        *("x2d.32xlarge", "x2d.metal", "x2ed.32xlarge", "x2ed.metal", "x2iezn.12xlarge"),
        *("x2iezn.metal", "x2idn.32xlarge", "x2iedn.32xlarge", "hpc6id.32xlarge"),
        # storage optimized
        *("i3en.24xlarge", "i3en.12xlarge", "i3en.metal", "i4i.32xlarge", "i4i.metal"),
        "im4gn.16xlarge",
        # accelerated computing
        *("dl1.24xlarge", "g4dn.8xlarge", "g4dn.12xlarge", "g4dn.metal", "g5.48xlarge"),
        *("inf1.24xlarge", "p3dn.24xlarge", "p4d.24xlarge", "trn1.32xlarge"),
        # p5-efa.html
        *("p5.48xlarge", "p5e.48xlarge"),
    }
)
GCP_TIER1_SERIES = frozenset({"n2", "n2d", "c2", "c2d", "c3"})
GCP_TIER1_MIN_VCPUS = 30
AZURE_ACCELERATED_MIN_VCPUS = 4
_AZURE_NO_ACCELERATED = re.compile(
    r"^(Basic_A|Standard_A|Standard_B\d"
    # the older GPU generations (NC, NCv2, NCv3, NV, NVv3): not confirmed from their size
    # pages here, so left out to be safe
    r"|Standard_NC\d+r?(_Promo)?$|Standard_NC\d+r?s_v[23]$|Standard_NV\d+(_Promo)?$"
    r"|Standard_NV\d+s_v3$)",
    re.IGNORECASE,
)

AWS_BEST = "EFA interface"
GCP_BEST = "gVNIC + Tier_1 networking"
AZURE_BEST = "accelerated networking"
POOL_BEST = "the cluster's own network (skyd does not choose it)"


def aws_efa(instance_type: str) -> bool:
    return instance_type in AWS_EFA_TYPES


def gcp_tier1(instance_type: str, vcpus: float) -> bool:
    series = gce_machine_type(instance_type).split("-", 1)[0]
    return series in GCP_TIER1_SERIES and vcpus >= GCP_TIER1_MIN_VCPUS


def azure_accelerated(vm_size: str, vcpus: float) -> bool:
    return vcpus >= AZURE_ACCELERATED_MIN_VCPUS and not _AZURE_NO_ACCELERATED.match(vm_size)


def best_network(offer: Offer) -> str | None:
    """What `network_tier: best` becomes on `offer`, or None when skyd cannot give it a
    faster network (the offering is then left out for such a task)."""
    if offer.cloud in POOL_CLOUDS:
        return POOL_BEST
    if offer.cloud == "aws":
        return AWS_BEST if aws_efa(offer.instance_type) else None
    if offer.cloud == "gcp":
        return GCP_BEST if gcp_tier1(offer.instance_type, offer.vcpus) else None
    if offer.cloud == "azure":
        return AZURE_BEST if azure_accelerated(offer.instance_type, offer.vcpus) else None
    return None
