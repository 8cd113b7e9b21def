/* ffmpi.c -- Open MPI through dlopen (see include/ffmpi.h for why and the conventions). */
#define _GNU_SOURCE
#include "ffmpi.h"
#include "ffmpi_abi.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef ffmpi_handle H;

static struct {
    void *lib;
    int ready;
    H world, byte, f32, f64, sum, errors_return;
    int (*init_thread)(int *, char ***, int, int *);
    int (*initialized)(int *);
    int (*finalize)(void);
    int (*abort_)(H, int);
    double (*wtime)(void);
    int (*error_string)(int, char *, int *);
    int (*get_library_version)(char *, int *);
    int (*comm_rank)(H, int *);
    int (*comm_size)(H, int *);
    int (*comm_split)(H, int, int, H *);
    int (*comm_set_errhandler)(H, H);
    int (*isend)(const void *, int, H, int, int, H, H *);
    int (*irecv)(void *, int, H, int, int, H, H *);
    int (*iallreduce)(const void *, void *, int, H, H, H, H *);
    int (*ibcast)(void *, int, H, int, H, H *);
    int (*iallgather)(const void *, int, H, void *, int, H, H, H *);
    int (*ibarrier)(H, H *);
    int (*test)(H *, int *, void *);
} M;

#define MAX_COMMS 16
static H comms[MAX_COMMS];
static int ncomms;
static char last_error[512];
static char version[FFMPI_ABI_MAX_LIBRARY_VERSION_STRING];

const char *ffmpi_last_error(void) { return last_error; }
const char *ffmpi_library_version(void) { return version; }

int ffmpi_launched(void) {
    static const char *vars[] = { "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK" };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

static int resolve(void **dst, const char *name) {
    *dst = dlsym(M.lib, name);
    if (!*dst) {
        snprintf(last_error, sizeof last_error, "the MPI library has no symbol %s (is it Open MPI?)", name);
        return -1;
    }
    return 0;
}

static int load(void) {
    const char *names[] = FFMPI_ABI_SONAMES;
    const char *override = getenv("FFREPRO_LIBMPI");
    char tried[256] = "";
    /* RTLD_GLOBAL: Open MPI's own plugins resolve libmpi's symbols through the global scope. */
    if (override && *override) {
        M.lib = dlopen(override, RTLD_NOW | RTLD_GLOBAL);
        snprintf(tried, sizeof tried, "%s", override);
    }
    for (size_t i = 0; !M.lib && !(override && *override) && i < sizeof names / sizeof names[0]; i++) {
        M.lib = dlopen(names[i], RTLD_NOW | RTLD_GLOBAL);
        snprintf(tried + strlen(tried), sizeof tried - strlen(tried), "%s%s", i ? ", " : "", names[i]);
    }
    if (!M.lib) {
        snprintf(last_error, sizeof last_error,
                 "cannot load Open MPI's library (tried %s): %s. Install it (`make setup` installs "
                 "libopenmpi-dev and openmpi-bin) or set FFREPRO_LIBMPI to its path", tried, dlerror());
        return -1;
    }
    struct { void **dst; const char *name; } syms[] = {
        { (void **)&M.init_thread, "MPI_Init_thread" }, { (void **)&M.initialized, "MPI_Initialized" },
        { (void **)&M.finalize, "MPI_Finalize" }, { (void **)&M.abort_, "MPI_Abort" },
        { (void **)&M.wtime, "MPI_Wtime" }, { (void **)&M.error_string, "MPI_Error_string" },
        { (void **)&M.get_library_version, "MPI_Get_library_version" },
        { (void **)&M.comm_rank, "MPI_Comm_rank" }, { (void **)&M.comm_size, "MPI_Comm_size" },
        { (void **)&M.comm_split, "MPI_Comm_split" }, { (void **)&M.comm_set_errhandler, "MPI_Comm_set_errhandler" },
        { (void **)&M.isend, "MPI_Isend" }, { (void **)&M.irecv, "MPI_Irecv" },
        { (void **)&M.iallreduce, "MPI_Iallreduce" }, { (void **)&M.ibcast, "MPI_Ibcast" },
        { (void **)&M.iallgather, "MPI_Iallgather" }, { (void **)&M.ibarrier, "MPI_Ibarrier" },
        { (void **)&M.test, "MPI_Test" },
        { &M.world, FFMPI_ABI_COMM_WORLD }, { &M.byte, FFMPI_ABI_BYTE }, { &M.f32, FFMPI_ABI_FLOAT },
        { &M.f64, FFMPI_ABI_DOUBLE }, { &M.sum, FFMPI_ABI_OP_SUM }, { &M.errors_return, FFMPI_ABI_ERRORS_RETURN },
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++)
        if (resolve(syms[i].dst, syms[i].name) != 0) return -1;
    return 0;
}

int ffmpi_init(void) {
    if (M.ready) return 0;
    if (!M.lib && load() != 0) return -1;
    int flag = 0, provided = 0;
    M.initialized(&flag);
    if (!flag) {
        int rc = M.init_thread(NULL, NULL, FFMPI_ABI_THREAD_FUNNELED, &provided);
        if (rc != FFMPI_ABI_SUCCESS) {
            char text[FFMPI_ABI_MAX_ERROR_STRING];
            ffmpi_error_text(rc, text, sizeof text);
            snprintf(last_error, sizeof last_error, "MPI_Init_thread failed: %s", text);
            return -1;
        }
        if (provided < FFMPI_ABI_THREAD_FUNNELED) {
            snprintf(last_error, sizeof last_error, "the MPI library provides thread level %d; repro needs "
                     "MPI_THREAD_FUNNELED (kernel threads never call MPI, but they exist)", provided);
            return -1;
        }
    }
    M.comm_set_errhandler(M.world, M.errors_return);
    comms[0] = M.world;
    ncomms = 1;
    int len = 0;
    M.get_library_version(version, &len);
    version[len < (int)sizeof version ? len : (int)sizeof version - 1] = 0;
    for (char *c = version; *c; c++) if (*c == '\n') { *c = 0; break; }
    M.ready = 1;
    return 0;
}

int ffmpi_finalize(void) { return M.ready ? M.finalize() : 0; }
void ffmpi_abort(int code) { if (M.ready) M.abort_(M.world, code); _Exit(code); }
double ffmpi_wtime(void) { return M.ready ? M.wtime() : 0; }

void ffmpi_error_text(int code, char *out, int len) {
    if (len <= 0) return;
    if (code == FFMPI_ERR_COUNT) { snprintf(out, len, "transfer larger than an int count"); return; }
    if (code == FFMPI_ERR_NOT_LOADED || !M.lib) { snprintf(out, len, "MPI is not initialised"); return; }
    char text[FFMPI_ABI_MAX_ERROR_STRING];
    int n = 0;
    if (M.error_string(code, text, &n) != FFMPI_ABI_SUCCESS) n = snprintf(text, sizeof text, "MPI error %d", code);
    text[n < (int)sizeof text ? n : (int)sizeof text - 1] = 0;
    snprintf(out, len, "%s", text);
}

static H comm(int c) { return c >= 0 && c < ncomms ? comms[c] : NULL; }

int ffmpi_rank(int c) { int r = -1; if (M.ready && comm(c)) M.comm_rank(comm(c), &r); return r; }
int ffmpi_size(int c) { int s = 0; if (M.ready && comm(c)) M.comm_size(comm(c), &s); return s; }

int ffmpi_comm_split(int c, int color, int key) {
    if (!M.ready || !comm(c) || ncomms == MAX_COMMS) return -1;
    H out = NULL;
    if (M.comm_split(comm(c), color, key, &out) != FFMPI_ABI_SUCCESS) return -1;
    comms[ncomms] = out;
    return ncomms++;
}

#define CHECK(count) do { \
        if (!M.ready || !comm(c)) return FFMPI_ERR_NOT_LOADED; \
        if ((count) > (size_t)INT_MAX) return FFMPI_ERR_COUNT; \
    } while (0)

int ffmpi_isend(int c, int peer, int tag, const void *buf, size_t bytes, ffmpi_request *req) {
    CHECK(bytes);
    return M.isend(buf, (int)bytes, M.byte, peer, tag, comm(c), &req->handle);
}

int ffmpi_irecv(int c, int peer, int tag, void *buf, size_t bytes, ffmpi_request *req) {
    CHECK(bytes);
    return M.irecv(buf, (int)bytes, M.byte, peer, tag, comm(c), &req->handle);
}

int ffmpi_iallreduce_sum_f32(int c, float *buf, size_t count, ffmpi_request *req) {
    CHECK(count);
    return M.iallreduce(FFMPI_ABI_IN_PLACE, buf, (int)count, M.f32, M.sum, comm(c), &req->handle);
}

int ffmpi_iallreduce_sum_f64(int c, double *buf, size_t count, ffmpi_request *req) {
    CHECK(count);
    return M.iallreduce(FFMPI_ABI_IN_PLACE, buf, (int)count, M.f64, M.sum, comm(c), &req->handle);
}

int ffmpi_ibcast(int c, int root, void *buf, size_t bytes, ffmpi_request *req) {
    CHECK(bytes);
    return M.ibcast(buf, (int)bytes, M.byte, root, comm(c), &req->handle);
}

int ffmpi_iallgather(int c, const void *send, void *recv, size_t bytes, ffmpi_request *req) {
    CHECK(bytes);
    return M.iallgather(send, (int)bytes, M.byte, recv, (int)bytes, M.byte, comm(c), &req->handle);
}

int ffmpi_ibarrier(int c, ffmpi_request *req) {
    CHECK((size_t)0);
    return M.ibarrier(comm(c), &req->handle);
}

int ffmpi_test(ffmpi_request *req, int *done) {
    if (!req->handle) { *done = 1; return 0; }
    if (!M.ready) return FFMPI_ERR_NOT_LOADED;
    int flag = 0;
    int rc = M.test(&req->handle, &flag, FFMPI_ABI_STATUS_IGNORE);
    *done = flag;
    if (flag) req->handle = NULL;   /* Open MPI sets MPI_REQUEST_NULL, which is not NULL */
    return rc;
}
