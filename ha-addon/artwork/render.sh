#!/usr/bin/env bash
# Renders the add-on's icon.png (128x128) and logo.png (250x100) from the SVGs next to this
# script. The PNGs are committed; run this after changing a drawing.
set -euo pipefail
cd "$(dirname "$0")"
../../scripts/install-deps.sh artwork
rsvg-convert --width 128 --height 128 --output ../icon.png icon.svg
rsvg-convert --width 250 --height 100 --output ../logo.png logo.svg
