#!/usr/bin/env bash
# Installs the Debian packages mesos-gpu's tests and demo need, when missing:
#   zookeeper         the real ZooKeeper server the fixtures and `mesos-gpu local` start
#   docker.io         a Docker engine the test fixtures start by hand (own roots and socket)
#   busybox-static    the root filesystem of the locally built test image (no registry is reachable)
#   chromium          the headless browser of the web page's tests (tests/web, marker `browser`)
#   chromium-driver   chromedriver, through which Selenium drives that chromium
# Run as root (or with passwordless sudo). Anything already present is left alone.
set -euo pipefail

need=()
[ -f /usr/share/java/zookeeper.jar ] || need+=(zookeeper)
command -v java >/dev/null 2>&1 || need+=(default-jre-headless)
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "ok installed" || need+=(busybox-static)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  echo "mesos-gpu needs these Debian packages: ${need[*]}" >&2
  echo "Install them as root, then run the command again:" >&2
  echo "    sudo apt-get update && sudo apt-get install -y --no-install-recommends ${need[*]}" >&2
  exit 1
fi

echo "Installing Debian packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${need[@]}"
