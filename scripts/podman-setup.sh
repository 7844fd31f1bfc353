#!/usr/bin/env bash
# Configures podman the way it works on these machines (../shared/reference/offline-toolbox.md):
#   - runtime runc (crun fails on hybrid cgroup v1 hosts), cgroup manager cgroupfs (no systemd here),
#   - default ulimits no higher than the host's hard limits (podman's defaults exceed them here),
#   - overlay storage driver.
# Idempotent: rewrites the drop-in files only when their content differs. Needs podman installed
# (`make system-deps`). Writes under /etc/containers as root, under ~/.config/containers otherwise.
# Exits 3 with a message when podman is missing, so callers can decide to skip.
set -euo pipefail

if ! command -v podman >/dev/null 2>&1; then
  echo "podman-setup: podman is not installed (run 'make system-deps')" >&2
  exit 3
fi

# runc, not crun: crun fails on hybrid cgroup v1 hosts like these. Not in system-packages.txt on purpose:
# GitHub's runners already have a runc binary from Docker's containerd.io, which conflicts with the runc
# package (apt would remove Docker to install it). So install the package only when no runc exists.
if ! command -v runc >/dev/null 2>&1; then
  echo "podman-setup: installing runc"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends runc >/dev/null \
    || { "${sudo_cmd[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
         "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends runc >/dev/null; }
fi

if [ "$(id -u)" -eq 0 ]; then
  conf_dir=/etc/containers
else
  conf_dir="${XDG_CONFIG_HOME:-$HOME/.config}/containers"
fi

# The host's hard limits cap what a container may ask for; never ask for more.
nofile_hard="$(ulimit -Hn)"
nproc_hard="$(ulimit -Hu)"
nofile=20000
nproc=32768
[ "$nofile_hard" = unlimited ] || [ "$nofile_hard" -ge "$nofile" ] || nofile="$nofile_hard"
[ "$nproc_hard" = unlimited ] || [ "$nproc_hard" -ge "$nproc" ] || nproc="$nproc_hard"

write_if_changed() { # path content
  local path="$1" content="$2"
  if [ -f "$path" ] && [ "$(cat "$path")" = "$content" ]; then
    return 0
  fi
  mkdir -p "$(dirname "$path")"
  printf '%s\n' "$content" >"$path.tmp.$$"
  mv "$path.tmp.$$" "$path"
  echo "podman-setup: wrote $path"
}

write_if_changed "$conf_dir/containers.conf.d/50-muse.conf" "# Written by scripts/podman-setup.sh (Muse repository); safe to delete.
[containers]
default_ulimits = [\"nofile=${nofile}:${nofile}\", \"nproc=${nproc}:${nproc}\"]

[engine]
runtime = \"runc\"
cgroup_manager = \"cgroupfs\"
events_logger = \"file\""

# storage.conf has no drop-in directory; only write it when none exists, so an existing setup wins.
if [ ! -f "$conf_dir/storage.conf" ]; then
  if [ "$(id -u)" -eq 0 ]; then
    write_if_changed "$conf_dir/storage.conf" '# Written by scripts/podman-setup.sh (Muse repository).
[storage]
driver = "overlay"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"'
  else
    write_if_changed "$conf_dir/storage.conf" '# Written by scripts/podman-setup.sh (Muse repository).
[storage]
driver = "overlay"'
  fi
fi

runtime="$(podman info --format '{{.Host.OCIRuntime.Name}}')"
cgroup="$(podman info --format '{{.Host.CgroupManager}}')"
driver="$(podman info --format '{{.Store.GraphDriverName}}')"
if [ "$runtime" != runc ] || [ "$cgroup" != cgroupfs ] || [ "$driver" != overlay ]; then
  echo "podman-setup: podman reports runtime=$runtime cgroup_manager=$cgroup driver=$driver;" \
    "expected runc/cgroupfs/overlay (an existing config may override $conf_dir)" >&2
  exit 1
fi
