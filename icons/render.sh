#!/usr/bin/env bash
# Render the app icon PNGs (RGBA) from passback.svg. Needs rsvg-convert (librsvg2-bin).
set -euo pipefail
cd "$(dirname "$0")"
for size in 32 128 256 512; do
  rsvg-convert -w "$size" -h "$size" passback.svg -o "tmp-$size.png"
done
mv tmp-32.png 32x32.png
mv tmp-128.png 128x128.png
mv tmp-256.png 128x128@2x.png
mv tmp-512.png icon.png
cp passback.svg ../ui/public/passback.svg
