#!/usr/bin/env bash
# The whole test suite (lint included), after setting up .venv.
source "$(dirname "$0")/_venv.sh"
ruff check .
ruff format --check .
python -m pytest "$@"
