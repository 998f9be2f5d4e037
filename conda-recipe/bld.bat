:: conda-build on Windows: runs in %SRC_DIR%, installs into %PREFIX%.
set CACHANNEL_EXTENSION_REQUIRED=1
set EPICS_BASE=
set EPICS_HOST_ARCH=
set CACHANNEL_NO_EXTENSION=
"%PYTHON%" -m pip install . --no-deps --no-build-isolation --no-index -vv
if errorlevel 1 exit 1
