# Clientele — the commands the README names.
#   make run    install what is missing, build, and start Clientele
#   make test   install what is missing and run every check and test
# Everything installs from Debian's packages and crates.io; nothing else is downloaded.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
# Debian packages the build and the tests need (checked with dpkg first, so a warm machine
# skips apt entirely).
#   build-essential pkg-config      C toolchain for bundled SQLite
#   dbus gnome-keyring              a real Secret Service for the keychain tests
#   libsecret-tools                 secret-tool, to look inside the test keychain
APT_PACKAGES := build-essential pkg-config dbus gnome-keyring libsecret-tools

.PHONY: help deps toolchain run build test fmt lint unit clean

help:
	@echo "make run    - install what is missing, build, and start Clientele"
	@echo "make test   - install what is missing and run every check and test"
	@echo "make fmt    - format the code"

toolchain:
	@command -v $(CARGO) >/dev/null || { echo "Rust (cargo) is not installed. Install it with rustup (https://rustup.rs), then run make again." >&2; exit 1; }

deps: toolchain
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO="sudo"; \
	  $$SUDO apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

build: deps
	$(CARGO) build --release -p clientele-server

# Until the desktop window exists, `make run` starts the headless listener on the default data
# folder (~/.local/share/clientele) with secrets in the system keychain.
run: build
	@echo "Starting Clientele's listener. Add a connection from another terminal, for example:"
	@echo "  ./target/release/clientele connection add tiquo main"
	@echo "then paste the address it prints into the provider's webhook settings. Ctrl+C stops."
	./target/release/clientele serve

fmt:
	$(CARGO) fmt --all

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Every test, with a real Secret Service (gnome-keyring in a private D-Bus session).
unit: deps
	tests/tools/with-secret-service.sh $(CARGO) test --workspace

test: lint unit

clean:
	$(CARGO) clean
