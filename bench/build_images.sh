#!/usr/bin/env bash
# Build and save the benchmark images (and the others the real-image tests use) into the cache
# (IMGSCOPE_REAL_CACHE, default /var/tmp/imgscope-real). Idempotent: cached images are reused.
# Needs root and: apt-get install -y buildah podman skopeo umoci debootstrap
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then
    set -- buildtools buildtools-big
fi
exec python3 tests/realimages.py "$@"
