/* ffmpi.h -- Open MPI for ffrepro, loaded at run time.
 *
 * The repro binary links no MPI library: a plain run never loads one. When a process was
 * started by mpirun or srun, ffmpi_init() dlopens Open MPI's libmpi (FFREPRO_LIBMPI, else
 * libmpi.so.40, the soname of Open MPI 3.x to 5.x) and resolves the few functions and
 * predefined handles below. The subset of Open MPI's ABI this needs is declared in
 * ffmpi_abi.h; a test compiles it against the installed mpi.h (pkg-config ompi-c).
 *
 * Conventions:
 *  - Communicators are small integers: 0 is MPI_COMM_WORLD, ffmpi_comm_split makes others.
 *  - Every operation is non-blocking and returns an MPI error code (0 = success); the
 *    caller polls ffmpi_test, so it can name the peer it is waiting for and give up after
 *    a timeout. MPI_ERRORS_RETURN is set on the world communicator at init.
 *  - Byte and element counts must fit in an int (callers split larger transfers).
 *  - Only the main thread calls MPI (MPI_THREAD_FUNNELED). */
#ifndef FFMPI_H
#define FFMPI_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* An MPI_Request (a pointer in Open MPI). handle == NULL: none / completed. */
typedef struct { void *handle; } ffmpi_request;

/* Error code for a count that does not fit in an int, and for "MPI is not loaded". */
enum { FFMPI_ERR_COUNT = -1000, FFMPI_ERR_NOT_LOADED = -1001 };

/* 1 when the environment shows an MPI launcher (mpirun/mpiexec: OMPI_COMM_WORLD_SIZE;
 * srun or other PMIx/PMI launchers: PMIX_RANK, PMI_RANK), else 0. */
int ffmpi_launched(void);
/* Loads libmpi and calls MPI_Init_thread(FUNNELED). Returns 0, or -1 with the reason in
 * ffmpi_last_error() (library not found, symbol missing, init failed). Idempotent. */
int ffmpi_init(void);
const char *ffmpi_last_error(void);
/* Library version string of the loaded MPI ("" before init). */
const char *ffmpi_library_version(void);
int ffmpi_finalize(void);
/* MPI_Abort on the world communicator: every rank of the job stops. */
void ffmpi_abort(int code);
double ffmpi_wtime(void);
/* Text of an MPI error code (or of the FFMPI_ERR_* codes) into out (NUL-terminated). */
void ffmpi_error_text(int code, char *out, int len);

int ffmpi_rank(int comm);
int ffmpi_size(int comm);
/* MPI_Comm_split: returns the new communicator's number, or -1. */
int ffmpi_comm_split(int comm, int color, int key);

int ffmpi_isend(int comm, int peer, int tag, const void *buf, size_t bytes, ffmpi_request *req);
int ffmpi_irecv(int comm, int peer, int tag, void *buf, size_t bytes, ffmpi_request *req);
/* In-place sums over all ranks of comm (MPI's own reduction order). */
int ffmpi_iallreduce_sum_f32(int comm, float *buf, size_t count, ffmpi_request *req);
int ffmpi_iallreduce_sum_f64(int comm, double *buf, size_t count, ffmpi_request *req);
int ffmpi_ibcast(int comm, int root, void *buf, size_t bytes, ffmpi_request *req);
/* Every rank's `bytes` from send, concatenated in rank order into recv. */
int ffmpi_iallgather(int comm, const void *send, void *recv, size_t bytes, ffmpi_request *req);
int ffmpi_ibarrier(int comm, ffmpi_request *req);
/* Progresses MPI; *done = 1 once the request has completed (then req->handle is NULL). */
int ffmpi_test(ffmpi_request *req, int *done);

/* ---------------------------------------------------------------------------------------
 * Stop messages. When the launcher stops a rank (SIGTERM, also SIGINT/SIGHUP: mpirun and
 * srun stop every rank once one has died), the handler writes one line to stderr naming
 * the ranks on this node that are gone (by pid, async-signal-safe kill(pid, 0)), the last
 * good checkpoint (ffmpi_fault_note), removes this rank's half-written files
 * (ffmpi_fault_temp_files) and exits with 128 + signal.
 * ------------------------------------------------------------------------------------ */
void ffmpi_fault_arm(int rank, int peers, const int *peer_ranks, const int *peer_pids);
/* The sentence about the last good checkpoint (copied; at most 1023 bytes kept). */
void ffmpi_fault_note(const char *text);
/* Up to two paths that are removed when the rank is stopped (NULL: none). */
void ffmpi_fault_temp_files(const char *a, const char *b);
/* The line the handler would write for `signal` (for tests). */
void ffmpi_fault_message(int signal, char *out, int len);

#ifdef __cplusplus
}
#endif
#endif
