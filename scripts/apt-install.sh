#!/usr/bin/env bash
# Install the named Debian packages if any is missing (apt-get update first; one retry).
set -u
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "apt-install.sh: missing Debian packages ${missing[*]}; run as root or install them" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
bash "$(dirname "$0")/retry.sh" apt-get update -qq || exit 1
bash "$(dirname "$0")/retry.sh" apt-get install -y -qq --no-install-recommends "${missing[@]}"
