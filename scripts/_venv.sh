# Sourced by the project's commands: make .venv with the project installed, once per pyproject change.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "closedloop needs Python 3.11 or newer; $PYTHON is $("$PYTHON" --version 2>&1)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv ..."
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.closedloop-installed
if [ ! -f "$stamp" ] || ! cmp -s pyproject.toml "$stamp"; then
  echo "installing closedloop and its dependencies into .venv (first run takes a few minutes) ..."
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[dev]"
  .venv/bin/python -m ipykernel install --sys-prefix --name python3 --display-name "closedloop (Python 3)" >/dev/null
  cp pyproject.toml "$stamp"
fi
export PATH="$PWD/.venv/bin:$PATH"
export MPLBACKEND=Agg
