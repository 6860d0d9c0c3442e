"""Azure Blob containers on a cloud VM end to end (fake Azure, the VM a real sshd on loopback,
Azurite for Blob): the node's rclone copies an az:// COPY mount and syncs a MOUNT one
COPY-style (the VM's login cannot open /dev/fuse here), writing it back when the job ends.
Azurite's endpoint is path-style (http://127.0.0.1:PORT/ACCOUNT), which rclone cannot use
with a key: the daemon hands the nodes an account SAS made from the job's connection string.
A real `rclone mount` of an Azurite container through the kernel, as root, is in
test_remote_buckets.py."""

from __future__ import annotations

import json
from pathlib import Path

from azure.storage.blob import BlobServiceClient

from skyd.testing.cloud_world import CloudWorld
from skyd.testing.storage_emulators import AZURITE_ACCOUNT, azurite
from tests.storage.vm_job import run_task

TASK = f"""\
resources:
  cloud: azure
  region: eastus
  instance_type: Standard_D4s_v5
file_mounts:
  ~/data:
    source: az://{AZURITE_ACCOUNT}/lab-vm-az/train
    mode: COPY
  ~/out:
    source: https://{AZURITE_ACCOUNT}.blob.core.windows.net/lab-vm-az-out
    mode: MOUNT
setup: test -s ~/data/a.txt
run: |
  cat ~/data/a.txt ~/data/sub/b.txt
  echo result > ~/out/model.txt
"""


async def test_azure_containers_on_a_fake_azure_vm(tmp_path: Path) -> None:
    with azurite() as blob:
        service = BlobServiceClient.from_connection_string(blob.connection_string)
        data = service.create_container("lab-vm-az")
        data.upload_blob("train/a.txt", b"alpha\n")
        data.upload_blob("train/sub/b.txt", b"beta\n")
        out = service.create_container("lab-vm-az-out")
        world = CloudWorld(tmp_path / "world", boot_delay_s=0.5)
        await world.start()
        try:
            secrets = {"AZURE_STORAGE_CONNECTION_STRING": blob.connection_string}
            job, log, shown, text = await run_task(world, tmp_path, TASK, secrets)
        finally:
            await world.stop()
        assert job["state"] == "SUCCEEDED", (job["reason"], log)
        assert job["placement"]["provider"] == "azure"
        assert "alpha\nbeta\n" in log
        assert "through an account SAS valid 7 days" in log, log
        assert out.download_blob("model.txt").readall() == b"result\n"
        mounts = shown["task"]["storage_mounts"]
        assert mounts["~/data"]["how"] == "copied before setup"
        assert mounts["~/out"]["how"] == (
            "copied before setup (no FUSE: /dev/fuse is not usable by this login); "
            "written back when the job ends"
        )
        line = next(t for t in text.splitlines() if "bucket ~/out" in t)
        assert "(MOUNT): copied before setup (no FUSE:" in line, text
        # neither the key nor the SAS made from it is shown
        assert "sig=" not in json.dumps(shown) and blob.connection_string not in json.dumps(shown)
        assert world.machines.running() == []
