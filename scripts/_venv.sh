# Sourced by the project's commands: make .venv with the project installed, once per pyproject
# change and per set of dependencies.
#   source scripts/_venv.sh runtime   # the package and its runtime dependencies (scripts/demo.sh)
#   source scripts/_venv.sh dev       # those and the dev extras: pytest, ruff, ... (scripts/test.sh)
set -euo pipefail
extras="${1:?usage: source scripts/_venv.sh runtime|dev}"
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
# one stamp per set: a copy of the pyproject.toml it was installed from
stamp=".venv/.closedloop-installed-$extras"
if [ ! -f "$stamp" ] || ! cmp -s pyproject.toml "$stamp"; then
  if [ "$extras" = runtime ]; then spec="."; else spec=".[$extras]"; fi
  echo "installing closedloop ($extras dependencies) into .venv (first run takes a few minutes) ..."
  .venv/bin/python -m pip install --quiet --upgrade pip
  # setuptools warns on every editable install of a flat layout (a package folder beside
  # pyproject.toml is what this project is): not a problem to show a user
  PYTHONWARNINGS="ignore:Editable installation" .venv/bin/python -m pip install --quiet -e "$spec"
  .venv/bin/python -m ipykernel install --sys-prefix --name python3 --display-name "closedloop (Python 3)" >/dev/null
  rm -f .venv/.closedloop-installed  # the stamp of the single set this script once installed
  cp pyproject.toml "$stamp"
  cp pyproject.toml .venv/.closedloop-installed-runtime  # every set holds the runtime ones
fi
export PATH="$PWD/.venv/bin:$PATH"
export MPLBACKEND=Agg
