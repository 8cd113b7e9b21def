/* Open MPI's C header, found through pkg-config ompi-c. Only the ABI check (CMPIABI, used
 * by the tests) compiles and links against it; the repro binary loads libmpi at run time
 * (CSources/FFMPI). */
#include <mpi.h>
