"""EBS volume rules EC2 enforces on RunInstances' block device mappings and moto does not:
volume types, and which take provisioned IOPS / throughput within which limits.

From the EBS user guide's "Amazon EBS volume types" table (gp3: 3,000-16,000 IOPS,
125-1,000 MiB/s, at most 0.25 MiB/s per IOPS and 500 IOPS per GiB; io1: 100-64,000 IOPS,
50 per GiB; io2: 100-256,000 IOPS, 1,000 per GiB; IOPS required for io1/io2, refused for
gp2/st1/sc1/standard; throughput only for gp3). Codes as EC2 answers them
(InvalidParameterValue, InvalidParameterCombination); message wording approximated.
"""

from __future__ import annotations

from collections.abc import Mapping

VOLUME_TYPES = ("standard", "io1", "io2", "gp2", "gp3", "sc1", "st1")
_IOPS = {"gp3": (3000, 16000, 500), "io1": (100, 64000, 50), "io2": (100, 256000, 1000)}


def check_block_devices(form: Mapping[str, str]) -> tuple[str, str] | None:
    """(code, message) of the first mapping EC2 would refuse, or None."""
    index = 1
    while f"BlockDeviceMapping.{index}.DeviceName" in form:
        ebs = f"BlockDeviceMapping.{index}.Ebs."
        kind = form.get(ebs + "VolumeType", "gp2")
        iops = form.get(ebs + "Iops")
        throughput = form.get(ebs + "Throughput")
        size = form.get(ebs + "VolumeSize")
        if kind not in VOLUME_TYPES:
            return (
                "InvalidParameterValue",
                f"Value ({kind}) for parameter volumeType is invalid. "
                f"Valid values: {', '.join(VOLUME_TYPES)}.",
            )
        if kind in ("io1", "io2") and iops is None:
            return (
                "InvalidParameterCombination",
                f"The parameter iops must be specified for {kind} volumes.",
            )
        if iops is not None:
            if kind not in _IOPS:
                return (
                    "InvalidParameterCombination",
                    f"The parameter iops is not supported for {kind} volumes.",
                )
            low, high, per_gib = _IOPS[kind]
            if not low <= int(iops) <= high:
                return (
                    "InvalidParameterValue",
                    f"Volume iops of {iops} is outside the {kind} range of {low} to {high}.",
                )
            if size is not None and int(iops) > per_gib * int(size) and int(iops) > low:
                return (
                    "InvalidParameterValue",
                    f"Iops to volume size ratio of {int(iops) / int(size):g} is too high; "
                    f"maximum is {per_gib}.",
                )
        if throughput is not None:
            if kind != "gp3":
                return (
                    "InvalidParameterCombination",
                    f"The parameter throughput is not supported for {kind} volumes.",
                )
            if not 125 <= int(throughput) <= 1000:
                return (
                    "InvalidParameterValue",
                    f"Throughput of {throughput} MiB/s is outside the gp3 range of 125 to 1000.",
                )
            if int(throughput) > int(iops or 3000) / 4:
                return (
                    "InvalidParameterValue",
                    f"Throughput of {throughput} MiB/s is too high for {iops or 3000} iops; "
                    "at most 0.25 MiB/s per iops.",
                )
        index += 1
    return None
