#!/bin/sh
# Start a throwaway OpenSSH server on 127.0.0.1 for skyd's ssh tests.
#
# Usage: scripts/start-sshd.sh DIR PORT [--install]
#   DIR gets everything: host key, client key (id_ed25519), authorized_keys,
#   known_hosts (for [127.0.0.1]:PORT), sshd_config, sshd.pid, sshd.log, and env
#   (shell lines: SKYD_SSHD_PORT, SKYD_SSHD_USER, SKYD_SSHD_KEY, SKYD_SSHD_KNOWN_HOSTS).
#   --install  apt-get install openssh-server first when /usr/sbin/sshd is missing (root).
# Stop it with: kill "$(cat DIR/sshd.pid)"
# Logins are by key only, for the user running this script, and only on loopback.
set -eu

dir=${1:?usage: start-sshd.sh DIR PORT [--install]}
port=${2:?usage: start-sshd.sh DIR PORT [--install]}
install=${3:-}
sshd=/usr/sbin/sshd

if [ ! -x "$sshd" ]; then
    if [ "$install" = "--install" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openssh-server
    else
        echo "start-sshd.sh: $sshd not found; install openssh-server or pass --install as root" >&2
        exit 3
    fi
fi

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
user=$(id -un)
[ -f "$dir/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C skyd-test-host -f "$dir/host_ed25519"
[ -f "$dir/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C skyd-test-client -f "$dir/id_ed25519"
cp "$dir/id_ed25519.pub" "$dir/authorized_keys"
chmod 600 "$dir/authorized_keys" "$dir/id_ed25519"
# Privilege separation needs this directory when sshd starts as root.
[ "$(id -u)" != 0 ] || mkdir -p /run/sshd

cat > "$dir/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host_ed25519
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
AllowUsers $user
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
X11Forwarding no
AllowTcpForwarding no
PrintMotd no
Subsystem sftp internal-sftp
CONF

"$sshd" -t -f "$dir/sshd_config"
"$sshd" -f "$dir/sshd_config" -E "$dir/sshd.log"

printf '[127.0.0.1]:%s %s\n' "$port" "$(cut -d' ' -f1,2 "$dir/host_ed25519.pub")" > "$dir/known_hosts"
cat > "$dir/env" <<ENV
SKYD_SSHD_PORT=$port
SKYD_SSHD_USER=$user
SKYD_SSHD_KEY=$dir/id_ed25519
SKYD_SSHD_KNOWN_HOSTS=$dir/known_hosts
ENV

# sshd daemonizes; wait (bounded) until it has written its pid and listens.
i=0
while [ ! -s "$dir/sshd.pid" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
[ -s "$dir/sshd.pid" ] || { echo "start-sshd.sh: sshd did not start; see $dir/sshd.log" >&2; exit 1; }
echo "sshd on 127.0.0.1:$port (pid $(cat "$dir/sshd.pid")), settings in $dir/env"
