#!/usr/bin/env bash
# Creates the Python test environment of `make test`: a virtual environment
# with the pinned packages of requirements.txt (CPU PyTorch and
# transformers), installed without dependency resolution.
#
# usage: pyenv.sh VENV_DIR [PYTHON]
# Prints how long the install took and how much disk it uses.
set -euo pipefail
venv=$1
py=${2:-python3}
lock=$(dirname "$0")/requirements.txt
fail() {
  echo "pyenv: $*" >&2
  echo "pyenv: the Python worker's tests need this environment; set LMDRIVE_SKIP_PY=1 to skip them" >&2
  exit 1
}
command -v "$py" >/dev/null || fail "no $py on PATH to create $venv with (install Python 3.9 or later, or set PYTHON=...)"
start=$(date +%s)
rm -rf "$venv"
"$py" -m venv "$venv" || fail "$py -m venv failed (on Debian: apt-get install python3-venv)"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --only-binary=:all: -r "$lock" ||
  fail "pip could not install $lock from the package index (no network?)"
"$venv/bin/python" -c "import torch, transformers, accelerate, pytest" ||
  fail "the installed packages do not import"
touch "$venv/.installed"
echo "pyenv: $venv ready in $(($(date +%s) - start)) s, $(du -sh "$venv" | cut -f1) on disk ($("$venv/bin/python" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'))"
