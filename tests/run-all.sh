#!/usr/bin/env bash
# The one test command of mxdesk:  bash tests/run-all.sh [extra cargo test args]
#
# On a fresh Debian machine with Rust and Python 3 it installs what the
# integration tests need (idempotently, non-interactively):
#   - swaks and its TLS module Net::SSLeay (apt-get swaks libnet-ssleay-perl)
#   - a Python virtualenv in target/pyenv with python-gitlab, aiosmtpd,
#     schemathesis and openapi-spec-validator (tests/schemathesis.rs)
# then runs `cargo test --all-targets "$@"` with
#   MXDESK_PYTHON=<repo>/target/pyenv/bin/python
#   MXDESK_SWAKS=<path of swaks>
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

PYENV="$ROOT/target/pyenv"
PY_PACKAGES=("python-gitlab:gitlab" "aiosmtpd:aiosmtpd" "schemathesis>=4,<5:schemathesis"
             "openapi-spec-validator:openapi_spec_validator")   # pip spec:import name

say() { printf 'run-all: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# Run a command as root: directly when root, via sudo when available.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run: $* (not root and no sudo)"
    fi
}

APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install manually: $*"
    if [ "$APT_UPDATED" -eq 0 ]; then
        say "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        APT_UPDATED=1
    fi
    say "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "$@" >/dev/null
}

ensure_swaks() {
    if ! command -v swaks >/dev/null 2>&1; then
        apt_install swaks
    fi
    command -v swaks >/dev/null 2>&1 || die "swaks still missing after install"
    # swaks does STARTTLS through Net::SSLeay (Debian: libnet-ssleay-perl).
    if ! perl -MNet::SSLeay -e 1 >/dev/null 2>&1; then
        apt_install libnet-ssleay-perl
    fi
    perl -MNet::SSLeay -e 1 >/dev/null 2>&1 || die "Net::SSLeay still missing (apt-get install libnet-ssleay-perl)"
    say "swaks: $(command -v swaks)"
}

# Create target/pyenv when missing or broken.
ensure_venv() {
    if [ -x "$PYENV/bin/python" ] && "$PYENV/bin/python" -c 'import sys' >/dev/null 2>&1 \
        && "$PYENV/bin/python" -m pip --version >/dev/null 2>&1; then
        return
    fi
    command -v python3 >/dev/null 2>&1 || die "python3 not found"
    rm -rf "$PYENV"
    mkdir -p "$ROOT/target"
    say "creating virtualenv $PYENV"
    if ! python3 -m venv "$PYENV" >/dev/null 2>&1; then
        rm -rf "$PYENV"
        # Debian splits venv/ensurepip into python3-venv (or python3.X-venv).
        local ver
        ver=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
        apt_install python3-venv || apt_install "python${ver}-venv"
        python3 -m venv "$PYENV" || die "python3 -m venv failed"
    fi
}

ensure_python_packages() {
    local missing=() spec pip_name mod
    for spec in "${PY_PACKAGES[@]}"; do
        pip_name=${spec%%:*}
        mod=${spec##*:}
        if ! "$PYENV/bin/python" -c "import $mod" >/dev/null 2>&1; then
            missing+=("$pip_name")
        fi
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        say "pip install ${missing[*]}"
        "$PYENV/bin/python" -m pip install --quiet --disable-pip-version-check \
            "${missing[@]}" || die "pip install failed"
    fi
    say "python: $PYENV/bin/python (${PY_PACKAGES[*]%%:*} ok)"
}

install_deps() {
    ensure_swaks
    ensure_venv
    ensure_python_packages
}

run_tests() {
    export MXDESK_PYTHON="$PYENV/bin/python"
    MXDESK_SWAKS=$(command -v swaks)
    export MXDESK_SWAKS
    say "cargo test --all-targets $*"
    cargo test --all-targets "$@"
    say "all tests passed"
}

# RUN_ALL_INSTALL_ONLY=1 only installs the dependencies (no cargo).
install_deps
if [ "${RUN_ALL_INSTALL_ONLY:-0}" = 1 ]; then
    say "dependencies ready (RUN_ALL_INSTALL_ONLY=1: not running cargo)"
    exit 0
fi
run_tests "$@"
