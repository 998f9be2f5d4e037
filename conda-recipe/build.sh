#!/bin/bash
# conda-build: runs in $SRC_DIR, installs into the host env $PREFIX.
set -euo pipefail
# the C extension is the point of a binary package: fail instead of falling back
export CACHANNEL_EXTENSION_REQUIRED=1
unset EPICS_BASE EPICS_HOST_ARCH CACHANNEL_NO_EXTENSION
"${PYTHON}" -m pip install . --no-deps --no-build-isolation --no-index -vv
