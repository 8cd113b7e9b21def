/* abi.c -- compiled against the real mpi.h: every value ffmpi_abi.h declares by hand. */
#define _GNU_SOURCE
#include <mpi.h>
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "cmpiabi.h"
#include "ffmpi_abi.h"

#ifndef OPEN_MPI
#error "pkg-config ompi-c did not give Open MPI's mpi.h"
#endif

int cmpiabi_header_version(void) { return OMPI_MAJOR_VERSION * 100 + OMPI_MINOR_VERSION; }

int cmpiabi_check(char *out, int len) {
    int bad = 0, pos = 0;
    out[0] = 0;
#define EXPECT(cond, what) do { if (!(cond)) { bad++; \
        pos += snprintf(out + pos, pos < len ? len - pos : 0, "%s\n", what); } } while (0)
    EXPECT(sizeof(MPI_Comm) == sizeof(ffmpi_handle), "MPI_Comm is not pointer-sized");
    EXPECT(sizeof(MPI_Datatype) == sizeof(ffmpi_handle), "MPI_Datatype is not pointer-sized");
    EXPECT(sizeof(MPI_Op) == sizeof(ffmpi_handle), "MPI_Op is not pointer-sized");
    EXPECT(sizeof(MPI_Request) == sizeof(ffmpi_handle), "MPI_Request is not pointer-sized");
    EXPECT(sizeof(MPI_Errhandler) == sizeof(ffmpi_handle), "MPI_Errhandler is not pointer-sized");
    EXPECT(MPI_SUCCESS == FFMPI_ABI_SUCCESS, "MPI_SUCCESS differs");
    EXPECT(MPI_THREAD_FUNNELED == FFMPI_ABI_THREAD_FUNNELED, "MPI_THREAD_FUNNELED differs");
    EXPECT(MPI_MAX_ERROR_STRING <= FFMPI_ABI_MAX_ERROR_STRING, "MPI_MAX_ERROR_STRING is larger");
    EXPECT(MPI_MAX_LIBRARY_VERSION_STRING <= FFMPI_ABI_MAX_LIBRARY_VERSION_STRING,
           "MPI_MAX_LIBRARY_VERSION_STRING is larger");
    EXPECT((void *)MPI_IN_PLACE == FFMPI_ABI_IN_PLACE, "MPI_IN_PLACE differs");
    EXPECT((void *)MPI_STATUS_IGNORE == FFMPI_ABI_STATUS_IGNORE, "MPI_STATUS_IGNORE differs");
    EXPECT((void *)MPI_COMM_WORLD == dlsym(RTLD_DEFAULT, FFMPI_ABI_COMM_WORLD), "MPI_COMM_WORLD symbol");
    EXPECT((void *)MPI_BYTE == dlsym(RTLD_DEFAULT, FFMPI_ABI_BYTE), "MPI_BYTE symbol");
    EXPECT((void *)MPI_FLOAT == dlsym(RTLD_DEFAULT, FFMPI_ABI_FLOAT), "MPI_FLOAT symbol");
    EXPECT((void *)MPI_DOUBLE == dlsym(RTLD_DEFAULT, FFMPI_ABI_DOUBLE), "MPI_DOUBLE symbol");
    EXPECT((void *)MPI_SUM == dlsym(RTLD_DEFAULT, FFMPI_ABI_OP_SUM), "MPI_SUM symbol");
    EXPECT((void *)MPI_ERRORS_RETURN == dlsym(RTLD_DEFAULT, FFMPI_ABI_ERRORS_RETURN), "MPI_ERRORS_RETURN symbol");
    /* The first soname ffmpi.c tries is the library this binary was linked with. */
    const char *names[] = FFMPI_ABI_SONAMES;
    void *lib = dlopen(names[0], RTLD_NOW | RTLD_NOLOAD);
    EXPECT(lib != NULL, "the first soname in FFMPI_ABI_SONAMES is not the linked libmpi");
    if (lib) {
        EXPECT(dlsym(lib, "MPI_Isend") == (void *)&MPI_Isend, "MPI_Isend resolves elsewhere");
        dlclose(lib);
    }
#undef EXPECT
    return bad;
}
