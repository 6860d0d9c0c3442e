#!/usr/bin/env bash
# OpenSSH server for the ssh provider's tests and the fake clouds' VMs (tests start their own sshd).
set -euo pipefail
if [ ! -x /usr/sbin/sshd ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server openssh-client rsync
fi
command -v rsync >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rsync
mkdir -p /run/sshd
