#!/usr/bin/env bash
# The main job on the bundled demo: set up .venv (runtime dependencies only), build the demo
# retailer, produce its PDCA report.
source "$(dirname "$0")/_venv.sh" runtime
closedloop demo "$@"
