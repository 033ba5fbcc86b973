#!/usr/bin/env bash
# package.sh PROFILE OUT_DIR
#
# Builds Clientele's two Debian packages from binaries cargo already built in
# $CARGO_TARGET_DIR/PROFILE (PROFILE is release or debug; default target dir: ./target):
#
#   clientele_VERSION_ARCH.deb        the desktop app (Tauri's bundler: `tauri bundle`), with the
#                                     `clientele` command at /usr/bin/clientele
#   clientele-relay_VERSION_ARCH.deb  the relay: /usr/bin/clientele, the clientele-relay systemd
#                                     service (installed, not enabled), /etc/clientele/relay.conf,
#                                     a system user and /var/lib/clientele-relay
#
# Both go to OUT_DIR, and their paths are printed, one a line. VERSION is the workspace's
# ([workspace.package] version in Cargo.toml), which both binaries carry. `make package` runs this
# on the release build; `make test` on the debug build its tests made (docs/packaging.md).
#
# Needs: dpkg-deb and dpkg-shlibdeps (dpkg-dev, part of build-essential), and the Tauri CLI from
# ui/node_modules (`npm install` in ui/).
set -euo pipefail

if [[ $# -ne 2 || ( "$1" != release && "$1" != debug ) ]]; then
    echo "usage: $0 release|debug OUT_DIR" >&2
    exit 64
fi
profile="$1"
out="$2"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
[[ "$target" = /* ]] || target="$root/$target"
bins="$target/$profile"
tauri="$root/ui/node_modules/.bin/tauri"

version="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$root/Cargo.toml")"
arch="$(dpkg --print-architecture)"
[[ -n "$version" ]] || { echo "$0: no [workspace.package] version in Cargo.toml" >&2; exit 1; }

for bin in clientele clientele-app; do
    [[ -x "$bins/$bin" ]] || { echo "$0: $bins/$bin is missing: build it first (make package does)" >&2; exit 1; }
done
[[ -x "$tauri" ]] || { echo "$0: the Tauri CLI is missing: run npm install in ui/" >&2; exit 1; }
# A binary from an older build would be packaged under the new version: refuse it.
built="$("$bins/clientele" --version)"
[[ "$built" == "clientele $version" ]] || {
    echo "$0: $bins/clientele says '$built', the workspace is $version: rebuild it" >&2
    exit 1
}

work="$(mktemp -d "${TMPDIR:-/tmp}/clientele-package.XXXXXX")"
trap 'rm -rf -- "$work"' EXIT
mkdir -p "$out"
out="$(cd "$out" && pwd)"

# The binaries as packaged: without their debug information (the build profiles keep line tables
# for backtraces, which made the release app 200 MB and the command 130 MB), keeping the symbols,
# so a backtrace still names functions. Staged as a target folder of their own, where Tauri's
# bundler looks for the app (CARGO_TARGET_DIR below); cargo's own binaries are left as built.
staged="$work/target/$profile"
mkdir -p "$staged"
for bin in clientele clientele-app; do
    strip --strip-debug -o "$staged/$bin" "$bins/$bin"
done

# The shared libraries a package's binaries link against, as Debian dependencies
# ("libc6 (>= 2.34), libgtk-3-0 (>= 3.21.5), …"). dpkg-shlibdeps reads debian/control and expects
# the binaries under debian/PACKAGE/, so it runs in a scratch tree of that shape.
shlibdeps() {
    local package="$1"
    shift
    local tree="$work/shlibs-$package"
    mkdir -p "$tree/debian/$package/usr/bin"
    printf 'Source: clientele\n\nPackage: %s\nArchitecture: any\n' "$package" >"$tree/debian/control"
    local files=()
    for bin in "$@"; do
        ln -sf "$bin" "$tree/debian/$package/usr/bin/$(basename "$bin")"
        files+=("debian/$package/usr/bin/$(basename "$bin")")
    done
    # Its warning that the binaries are not yet installed in the package's folder is expected here.
    (cd "$tree" && dpkg-shlibdeps -O "${files[@]}" 2>"$tree/warnings") | sed -n 's/^shlibs:Depends=//p'
    grep -v "should already be installed in their package's directory" "$tree/warnings" >&2 || true
}

# --- The desktop app, with Tauri's bundler --------------------------------------------------
# tauri.conf.json holds the package's description, desktop entry, icons and static dependencies;
# what depends on this build is merged in here: the `clientele` binary's path, and the libraries
# the binaries link against. libayatana-appindicator3-1 (the tray) is loaded at run time, so no
# linker sees it: tauri.conf.json names it.
app_libs="$(shlibdeps clientele "$staged/clientele-app" "$staged/clientele")"
depends_json="$(printf '%s' "$app_libs" | tr ',' '\n' | sed 's/^ *//; s/"/\\"/g; s/.*/"&"/' | paste -sd, -)"
config="$work/tauri.package.json"
cat >"$config" <<JSON
{
  "bundle": {
    "linux": {
      "deb": {
        "depends": ["libayatana-appindicator3-1", $depends_json],
        "files": {
          "/usr/bin/clientele": "$staged/clientele",
          "/usr/share/doc/clientele/copyright": "$here/copyright"
        }
      }
    }
  }
}
JSON
debug_flag=()
[[ "$profile" == debug ]] && debug_flag=(--debug)
# --no-binary-patching: the bundler would otherwise rewrite the binary (for Tauri's updater, which
# Clientele doesn't use).
(cd "$root" && CARGO_TARGET_DIR="$work/target" "$tauri" bundle "${debug_flag[@]}" --bundles deb \
    --no-binary-patching --ci --config "$config") >"$work/tauri-bundle.log" 2>&1 || {
    cat "$work/tauri-bundle.log" >&2
    exit 1
}
app_deb="$out/clientele_${version}_${arch}.deb"
cp "$staged/bundle/deb/Clientele_${version}_${arch}.deb" "$app_deb"

# --- The relay, staged and built with dpkg-deb ------------------------------------------------
relay="$work/relay"
install -D -m 0755 "$staged/clientele" "$relay/usr/bin/clientele"
install -D -m 0644 "$here/relay/clientele-relay.service" "$relay/usr/lib/systemd/system/clientele-relay.service"
install -D -m 0644 "$here/relay/relay.conf" "$relay/etc/clientele/relay.conf"
install -D -m 0644 "$root/docs/relay.md" "$relay/usr/share/doc/clientele-relay/relay.md"
install -D -m 0644 "$here/copyright" "$relay/usr/share/doc/clientele-relay/copyright"
install -d -m 0755 "$relay/DEBIAN"
for script in postinst prerm postrm; do
    install -m 0755 "$here/relay/$script" "$relay/DEBIAN/$script"
done
echo /etc/clientele/relay.conf >"$relay/DEBIAN/conffiles"
relay_libs="$(shlibdeps clientele-relay "$staged/clientele")"
cat >"$relay/DEBIAN/control" <<CONTROL
Package: clientele-relay
Version: $version
Architecture: $arch
Maintainer: Clientele
Installed-Size: $(du -sk --exclude=DEBIAN "$relay" | cut -f1)
Depends: $relay_libs, adduser
Suggests: caddy, sqlite3
Conflicts: clientele
Replaces: clientele
Section: net
Priority: optional
Description: Clientele relay: receives customer webhooks for Clientele desks
 The relay is Clientele's receiving core on an always-on server: Tiquo, ResDiary,
 Vagaro, Plain, Zupy and Standard Webhooks senders send to it, it checks and keeps
 every message, and each Clientele desk paired with it pulls what it missed.
 .
 This package installs the clientele command, a system user (clientele), the
 clientele-relay service (installed but neither enabled nor started), its
 settings in /etc/clientele/relay.conf and a data folder in
 /var/lib/clientele-relay. Set the relay's address in the settings, then enable
 the service: /usr/share/doc/clientele-relay/relay.md says how.
 .
 It ships the same /usr/bin/clientele as the desktop app's package (clientele),
 so the two are not installed together: a server runs the relay, a desk the app.
CONTROL
relay_deb="$out/clientele-relay_${version}_${arch}.deb"
# gzip: quick to build and readable by every dpkg.
dpkg-deb --build --root-owner-group -Zgzip "$relay" "$relay_deb" >/dev/null

echo "$app_deb"
echo "$relay_deb"
