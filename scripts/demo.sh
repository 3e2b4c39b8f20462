#!/usr/bin/env bash
# The main job on the bundled demo: set up .venv, build the demo retailer, produce its PDCA report.
source "$(dirname "$0")/_venv.sh"
closedloop demo "$@"
