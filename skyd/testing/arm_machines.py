"""What makes a fake Azure VM a real machine: addresses from the FakeVmHost for public IPs
and NICs, and an sshd exactly while the VM's power state is running (FakeAzure mixes it in)."""

from __future__ import annotations

from typing import Any

from skyd.testing.fake_vm import FakeVmHost


class ArmMachines:
    """Mixed into FakeAzure, whose tables these read."""

    machines: FakeVmHost | None
    vms: dict[tuple[str, str], dict[str, Any]]
    nics: dict[tuple[str, str], dict[str, Any]]
    ips: dict[tuple[str, str], dict[str, Any]]

    def _address(self, existing: dict[str, Any] | None, otherwise: str) -> str:
        """A new IP resource's address: a fake machine's loopback address when there are any."""
        if self.machines is None:
            return otherwise
        for config in (existing or {}).get("properties", {}).get("ipConfigurations", []):
            if config.get("properties", {}).get("privateIPAddress"):
                return str(config["properties"]["privateIPAddress"])
        if existing is not None and existing["properties"].get("ipAddress"):
            return str(existing["properties"]["ipAddress"])
        return self.machines.allocate()

    def _addresses_in_use(self) -> set[str]:
        used = {ip["properties"].get("ipAddress") for ip in self.ips.values()}
        used |= {private_of(nic) for nic in self.nics.values()}
        return {a for a in used if a}

    def _drop_network(self, table: dict[tuple[str, str], dict[str, Any]], key: Any) -> None:
        resource = table.pop(key, None)
        if self.machines is None or resource is None:
            return
        for address in (resource["properties"].get("ipAddress"), private_of(resource)):
            if address and address not in self._addresses_in_use():
                self.machines.release(address)

    def _power(self, vm: dict[str, Any], power: str) -> None:
        """Set a VM's power state; its machine runs sshd exactly while it is running."""
        vm["_power"] = power
        if self.machines is None:
            return
        vm_id = f"{key_of(vm['id'])[0]}/{vm['name']}"
        if power == "running":
            address = self._vm_address(vm)
            self.machines.create(vm_id, address=address)
            self.machines.boot(vm_id, os_profile_logins(vm))
        elif power in ("", "deallocating", "deallocated", "stopping", "stopped"):
            self.machines.halt(vm_id)

    def _drop_vm(self, key: tuple[str, str]) -> None:
        vm = self.vms.pop(key, None)
        if vm is not None and self.machines is not None:
            self.machines.destroy(f"{key[0]}/{vm['name']}")

    def _vm_address(self, vm: dict[str, Any]) -> str | None:
        for ref in vm["properties"].get("networkProfile", {}).get("networkInterfaces", []):
            nic = self.nics.get(key_of(ref["id"]))
            if nic is not None and private_of(nic):
                return private_of(nic)
        return None


def os_profile_logins(vm: dict[str, Any]) -> dict[str, list[str]]:
    """The admin user and the ssh public keys a VM's osProfile delivers."""
    profile = vm["properties"].get("osProfile", {})
    user = profile.get("adminUsername")
    keys = profile.get("linuxConfiguration", {}).get("ssh", {}).get("publicKeys", [])
    return {str(user): [str(k.get("keyData", "")) for k in keys]} if user else {}


def private_of(nic: dict[str, Any]) -> str | None:
    for config in nic.get("properties", {}).get("ipConfigurations", []):
        address = config.get("properties", {}).get("privateIPAddress")
        if address:
            return str(address)
    return None


def key_of(resource_id: str) -> tuple[str, str]:
    parts = resource_id.strip("/").split("/")
    lowered = [p.lower() for p in parts]
    return parts[lowered.index("resourcegroups") + 1], parts[-1]
