# Clientele — the commands the README names.
#   make run    install what is missing, build, and open Clientele
#   make test   install what is missing and run every check and test
# Everything installs from Debian's packages, crates.io and npm; nothing else is downloaded.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
NPM ?= npm
# Debian packages the build and the tests need (checked with dpkg first, so a warm machine
# skips apt entirely).
#   build-essential pkg-config file libssl-dev      C toolchain (bundled SQLite, TLS for the WebDriver client)
#   libwebkit2gtk-4.1-dev libjavascriptcoregtk-4.1-dev libsoup-3.0-dev libgtk-3-dev
#   libayatana-appindicator3-dev librsvg2-dev       Tauri's window, web view and tray
#   nodejs npm                                      building the UI
#   dbus dbus-x11 gnome-keyring libsecret-tools     a real Secret Service for the keychain tests
#   xvfb xauth webkit2gtk-driver                    the real window under Xvfb, driven by WebDriver
#   xdotool                                         answering the native save dialog in the e2e tests
#   sqlite3                                         the export benchmark's baseline (`sqlite3 -csv`)
#   desktop-file-utils systemd                      checking the packages: desktop-file-validate,
#                                                   systemd-analyze verify (dpkg-deb and
#                                                   dpkg-shlibdeps come with build-essential)
#   pebble                                          a local ACME server: the relay's automatic HTTPS
# PostgreSQL's server (initdb, postgres) for the relay-on-PostgreSQL tests: the `postgresql`
# package, only when no server binaries are found (a machine image may carry them unpackaged).
APT_PACKAGES := build-essential pkg-config file libssl-dev \
  libwebkit2gtk-4.1-dev libjavascriptcoregtk-4.1-dev libsoup-3.0-dev libgtk-3-dev \
  libayatana-appindicator3-dev librsvg2-dev nodejs npm \
  dbus dbus-x11 gnome-keyring libsecret-tools xvfb xauth webkit2gtk-driver xdotool \
  sqlite3 imagemagick desktop-file-utils systemd pebble
TAURI_DRIVER_VERSION := 2.1.0
CARGO_BIN := $(or $(CARGO_HOME),$(HOME)/.cargo)/bin
BINDINGS := ui/src/lib/backend/bindings
# Where cargo builds, and where `make package` puts the packages.
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
PACKAGES := $(TARGET_DIR)/packages

# make bench / make faults / make fuzz
include tests/bench.mk

.PHONY: help deps toolchain apt ui-deps ui ui-check ui-test tauri-driver run build package test fmt lint unit packages-check bindings-drift clean

help:
	@echo "make run    - install what is missing, build, and open Clientele"
	@echo "make test   - install what is missing and run every check and test"
	@echo "make package - build the Debian packages people install (the app, and the relay)"
	@echo "make bench  - measure receiving, reading and export speed, and memory (prints figures; about 20 minutes)"
	@echo "make faults - the long fault tests (kill -9, full disk, hostile and slow clients)"
	@echo "make fuzz   - fuzz every provider's verify-and-parse"
	@echo "make fmt    - format the code"

toolchain:
	@command -v $(CARGO) >/dev/null || { echo "Rust (cargo) is not installed. Install it with rustup (https://rustup.rs), then run make again." >&2; exit 1; }

apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if command -v node >/dev/null && command -v npm >/dev/null; then missing=$$(echo "$$missing" | sed -E 's/ (nodejs|npm)\b//g'); fi; \
	if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then missing="$$missing postgresql"; fi; \
	if [ -n "$${missing// /}" ]; then \
	  echo "Installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO="sudo"; \
	  $$SUDO apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

deps: toolchain apt

# `npm ci` fails on this registry (it doesn't serve other platforms' optional packages); `npm
# install` with the committed lockfile leaves it unchanged.
ui-deps: apt
	@if [ ! -d ui/node_modules ] || [ ui/package-lock.json -nt ui/node_modules/.package-lock.json ]; then \
	  cd ui && $(NPM) install --no-audit --no-fund --loglevel=error; fi

ui: ui-deps
	cd ui && $(NPM) run build

ui-check: ui-deps
	cd ui && $(NPM) run check

ui-test: ui-deps
	cd ui && $(NPM) test

tauri-driver: toolchain
	@command -v tauri-driver >/dev/null || [ -x "$(CARGO_BIN)/tauri-driver" ] || \
	  $(CARGO) install tauri-driver --version $(TAURI_DRIVER_VERSION) --locked

build: deps ui
	$(CARGO) build --release -p clientele-app -p clientele-cli

# Opens the desktop app on the default data folder (~/.local/share/clientele).
run: build
	$(TARGET_DIR)/release/clientele-app

# The Debian packages people install, from the release build: the desktop app (with the
# `clientele` command) and the relay. How they are made and checked: docs/packaging.md.
package: build
	@echo "Packages:"
	@src-tauri/packaging/package.sh release $(PACKAGES)

fmt:
	$(CARGO) fmt --all

lint: deps ui
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Every Rust test — unit, HTTP, durability, keychain, PostgreSQL, ACME and the end-to-end window
# tests — inside a private Secret Service and a virtual X server. The app embeds ui/dist, so the
# UI is built first. The REQUIRE variables turn "skipped: not installed" into a failure here.
unit: deps ui tauri-driver
	PATH="$(CARGO_BIN):$$PATH" CLIENTELE_REQUIRE_E2E=1 CLIENTELE_REQUIRE_PG=1 \
	  CLIENTELE_REQUIRE_ACME=1 tests/tools/with-secret-service.sh \
	  xvfb-run -a -s "-screen 0 1280x800x24" $(CARGO) test --workspace

# The packages bundled from the debug build `unit` made (a release build here would double a fresh
# run), checked without installing them (tests/tests/packages.rs): unpacked, their programs run,
# the window opened under Xvfb, the desktop entry and the systemd unit validated.
# `cargo test --workspace --no-run` is a no-op after `unit`; run alone, it builds the app binary.
packages-check: deps ui-deps
	$(CARGO) test --workspace --no-run --quiet
	$(CARGO) build --quiet -p clientele-cli --bin clientele
	src-tauri/packaging/package.sh debug $(TARGET_DIR)/packages-debug
	CLIENTELE_PACKAGES="$(abspath $(TARGET_DIR)/packages-debug)" CLIENTELE_REQUIRE_PACKAGES=1 \
	  tests/tools/with-secret-service.sh xvfb-run -a -s "-screen 0 1280x800x24" \
	  $(CARGO) test --workspace --test packages

# ts-rs rewrites the UI's types during `cargo test`; a difference means they were not committed.
bindings-drift:
	@changes=$$(git status --porcelain -- $(BINDINGS)); \
	if [ -n "$$changes" ]; then echo "The UI's generated types are out of date; commit them:"; echo "$$changes"; exit 1; fi

test: lint ui-check ui-test unit packages-check bindings-drift

clean:
	$(CARGO) clean
	rm -rf ui/dist ui/node_modules
