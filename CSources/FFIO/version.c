#include "ffio.h"
#include <hdf5.h>
#include <png.h>
const char *ffio_version(void) { return "ffio (hdf5 " H5_VERS_INFO ", libpng " PNG_LIBPNG_VER_STRING ")"; }
