# Sourced by scripts/demo and scripts/test: installs what p2ptun needs to
# build and test, on Debian 12, when it is missing. Needs root for apt-get.

P2PTUN_BUILD_PACKAGES="meson ninja-build pkg-config gcc libc6-dev libnice-dev libglib2.0-dev
  libssl-dev libsrtp2-dev libcurl4-openssl-dev libjson-glib-dev libsoup-3.0-dev
  glib-networking python3 openssl curl ca-certificates
  gobject-introspection libgirepository1.0-dev gi-docgen libqrencode-dev scdoc"
P2PTUN_TEST_PACKAGES="clang libclang-rt-14-dev iproute2 nftables coturn openssh-client
  openssh-server iperf3 ethtool python3-gi conntrack gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad tcpdump
  systemd man-db groff-base zbar-tools prometheus"
# Only for ./scripts/test --packages: building the Debian packages (debian/)
# and checking them.
P2PTUN_PACKAGING_PACKAGES="debhelper dpkg-dev fakeroot lintian"

p2ptun_ensure_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "p2ptun: installing ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "p2ptun: these packages are missing and installing them needs root: ${missing[*]}" >&2
    return 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2 || return 1
  apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 || return 1
  # coturn's package starts a turnserver on the default port; tests start their own.
  if [[ " ${missing[*]} " == *" coturn "* ]] && command -v systemctl >/dev/null; then
    systemctl disable --now coturn >/dev/null 2>&1 || true
  fi
  # prometheus is there for promtool (the metrics tests); its server is not wanted.
  if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null; then
    systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
}
