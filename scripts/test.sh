#!/usr/bin/env bash
# The whole test suite (lint included), after setting up .venv with the dev extras.
source "$(dirname "$0")/_venv.sh" dev
ruff check .
ruff format --check .
python -m pytest "$@"
