/* ffmpi_abi.h -- the part of Open MPI's binary interface that ffmpi.c uses, declared
 * without mpi.h so that the repro binary needs no MPI library at link time.
 *
 * In Open MPI every handle (MPI_Comm, MPI_Datatype, MPI_Op, MPI_Request, MPI_Errhandler)
 * is a pointer, the predefined handles are the addresses of exported objects named below,
 * MPI_STATUS_IGNORE is NULL and MPI_IN_PLACE is (void *)1. These hold from Open MPI 1.x
 * to 5.x; Tests/MPITests checks every value here against the installed mpi.h. */
#ifndef FFMPI_ABI_H
#define FFMPI_ABI_H

typedef void *ffmpi_handle;   /* MPI_Comm, MPI_Datatype, MPI_Op, MPI_Request, MPI_Errhandler */

#define FFMPI_ABI_SUCCESS 0
#define FFMPI_ABI_THREAD_FUNNELED 1
#define FFMPI_ABI_MAX_ERROR_STRING 256
#define FFMPI_ABI_MAX_LIBRARY_VERSION_STRING 256
#define FFMPI_ABI_IN_PLACE ((void *)1)
#define FFMPI_ABI_STATUS_IGNORE ((void *)0)

/* Exported objects whose addresses are the predefined handles. */
#define FFMPI_ABI_COMM_WORLD "ompi_mpi_comm_world"
#define FFMPI_ABI_BYTE "ompi_mpi_byte"
#define FFMPI_ABI_FLOAT "ompi_mpi_float"
#define FFMPI_ABI_DOUBLE "ompi_mpi_double"
#define FFMPI_ABI_OP_SUM "ompi_mpi_op_sum"
#define FFMPI_ABI_ERRORS_RETURN "ompi_mpi_errors_return"

/* Library names tried in order (after $FFREPRO_LIBMPI). */
#define FFMPI_ABI_SONAMES { "libmpi.so.40", "libmpi.so" }

#endif
