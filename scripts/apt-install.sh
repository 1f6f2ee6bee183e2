# Sourced by the ensure-* scripts: installs one Debian package the tests need, as root only, saying how
# long it took. Needs the caller's `step` and `fail` functions.
#   apt_install <package> <name> <what to do without apt-get>
apt_install() {
  local package="$1" name="$2" otherwise="$3"
  if [ "$(id -u)" -ne 0 ]; then
    fail "$name is not installed and installing it needs root: run \`sudo apt-get install -y $package\`, then this script again"
  fi
  command -v apt-get >/dev/null 2>&1 || fail "$name is not installed and there is no apt-get here: $otherwise"
  step "installing $name from Debian's packages..."
  local started=$SECONDS
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$package" >&2 ||
    { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$package" >&2; } ||
    fail "apt-get could not install $package; see its output above"
  step "$name installed in $((SECONDS - started)) s"
}
