/* h5.c -- the small part of HDF5 that ffrepro needs, behind plain C types.
 * HDF5's type and property-list identifiers are macros that Swift cannot import, and the
 * library may be built without thread safety, so every call goes through here under one
 * process-wide lock. */
#include "h5_internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

pthread_mutex_t ffio_h5_mutex = PTHREAD_MUTEX_INITIALIZER;

/* HDF5 closes every open object at exit. After a failed H5Fclose (disk full while flushing)
 * the file stays registered half-destroyed, and that exit handler crashes (1.10.8). Every
 * file we write is closed explicitly, so the handler is not needed: turn it off before the
 * library initialises. */
__attribute__((constructor)) static void ffio_h5_no_atexit(void) { H5dont_atexit(); }

/* HDF5 keeps the automatic error printer per thread; silence it on each thread once. */
static __thread int h5_quiet;
void ffio_h5i_begin(void) {
    if (!h5_quiet) {
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        h5_quiet = 1;
    }
    ffio_clear_error();
}

typedef struct { char text[2][256]; int n; } walk_state;

/* HDF5's I/O failures carry "..., errno = 28, error message = 'No space left on device',
 * ..." plus time stamps and buffer addresses: keep only the operating system's sentence. */
static void tidy(char *dst, size_t n, const char *desc) {
    const char *m = strstr(desc, "error message = '");
    if (m) {
        m += strlen("error message = '");
        const char *end = strchr(m, '\'');
        size_t len = end ? (size_t)(end - m) : strlen(m);
        const char *what = strstr(desc, "write") && strstr(desc, "write") < m ? "write failed: " : "";
        snprintf(dst, n, "%s%.*s", what, (int)len, m);
        return;
    }
    snprintf(dst, n, "%s", desc);
    for (char *p = dst; *p; p++)
        if (*p == '\n') *p = ' ';
}

static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *data) {
    (void)n;
    walk_state *w = data;
    if (w->n < 2 && e->desc) {
        tidy(w->text[w->n], sizeof w->text[0], e->desc);
        w->n++;
    }
    return 0;
}

/* Records `what` plus the innermost HDF5 messages (the most specific ones). */
void ffio_h5i_fail(const char *what) {
    walk_state w = { .n = 0 };
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_cb, &w);
    H5Eclear2(H5E_DEFAULT);
    if (w.n == 2)
        ffio_set_error("%s (HDF5: %s; %s)", what, w.text[0], w.text[1]);
    else if (w.n == 1)
        ffio_set_error("%s (HDF5: %s)", what, w.text[0]);
    else
        ffio_set_error("%s", what);
}

hid_t ffio_h5i_mem_type(int dtype) {
    switch (dtype) {
    case FFIO_U8: return H5T_NATIVE_UINT8;
    case FFIO_I32: return H5T_NATIVE_INT32;
    case FFIO_I64: return H5T_NATIVE_INT64;
    case FFIO_U64: return H5T_NATIVE_UINT64;
    case FFIO_F32: return H5T_NATIVE_FLOAT;
    case FFIO_F64: return H5T_NATIVE_DOUBLE;
    default: return -1;
    }
}

/* Fixed little-endian file types, so files do not depend on the writer's machine. */
hid_t ffio_h5i_file_type(int dtype) {
    switch (dtype) {
    case FFIO_U8: return H5T_STD_U8LE;
    case FFIO_I32: return H5T_STD_I32LE;
    case FFIO_I64: return H5T_STD_I64LE;
    case FFIO_U64: return H5T_STD_U64LE;
    case FFIO_F32: return H5T_IEEE_F32LE;
    case FFIO_F64: return H5T_IEEE_F64LE;
    default: return -1;
    }
}

int ffio_h5i_classify(hid_t t) {
    H5T_class_t cls = H5Tget_class(t);
    size_t size = H5Tget_size(t);
    if (cls == H5T_INTEGER) {
        int is_signed = H5Tget_sign(t) == H5T_SGN_2;
        if (size == 1 && !is_signed) return FFIO_U8;
        if (is_signed) return size <= 4 ? FFIO_I32 : FFIO_I64;
        return size <= 2 ? FFIO_I32 : FFIO_U64;
    }
    if (cls == H5T_FLOAT) return size <= 4 ? FFIO_F32 : FFIO_F64;
    if (cls == H5T_STRING) return FFIO_STRING;
    return FFIO_OTHER;
}

const char *ffio_h5i_obj_path(const char *obj) {
    return (obj == NULL || obj[0] == 0 || strcmp(obj, "/") == 0) ? "." : obj;
}

static hid_t fapl_new(void) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
#if H5_VERSION_GE(1, 10, 7)
    /* Locking fails on some network file systems; the writer renames complete files anyway. */
    H5Pset_file_locking(fapl, 0, 1);
#endif
    return fapl;
}

int64_t ffio_h5_create(const char *path) { return ffio_h5_create_ex(path, 0); }

int64_t ffio_h5_create_ex(const char *path, int64_t userblock) {
    LOCK();
    ffio_h5i_begin();
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    H5Pset_obj_track_times(fcpl, 0);
    if (userblock > 0 && H5Pset_userblock(fcpl, (hsize_t)userblock) < 0) {
        ffio_h5i_fail("invalid user block size");
        H5Pclose(fcpl);
        UNLOCK();
        return -1;
    }
    hid_t fapl = fapl_new();
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, fapl);
    if (f < 0) ffio_h5i_fail("cannot create the HDF5 file");
    H5Pclose(fcpl);
    H5Pclose(fapl);
    UNLOCK();
    return f;
}

int64_t ffio_h5_open(const char *path, int writable) {
    LOCK();
    ffio_h5i_begin();
    hid_t fapl = fapl_new();
    hid_t f = H5Fopen(path, writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl);
    if (f < 0) ffio_h5i_fail("cannot open as an HDF5 file");
    H5Pclose(fapl);
    UNLOCK();
    return f;
}

int ffio_h5_close(int64_t file) {
    LOCK();
    ffio_h5i_begin();
    int rc = 0;
    /* Close what is still open in the file first. A close that fails (disk full while the
     * metadata is flushed) leaves the file's objects freed inside HDF5, and closing a
     * dataset afterwards would touch freed memory. */
    ssize_t n = H5Fget_obj_count((hid_t)file, H5F_OBJ_DATASET | H5F_OBJ_GROUP | H5F_OBJ_ATTR | H5F_OBJ_DATATYPE | H5F_OBJ_LOCAL);
    if (n > 0) {
        hid_t *ids = malloc(sizeof(hid_t) * (size_t)n);
        if (ids) {
            ssize_t got = H5Fget_obj_ids((hid_t)file, H5F_OBJ_DATASET | H5F_OBJ_GROUP | H5F_OBJ_ATTR | H5F_OBJ_DATATYPE | H5F_OBJ_LOCAL,
                                         (size_t)n, ids);
            for (ssize_t i = 0; i < got; i++) {
                while (H5Iis_valid(ids[i]) > 0 && H5Idec_ref(ids[i]) > 0) {}
            }
            free(ids);
        }
        H5Eclear2(H5E_DEFAULT);
    }
    if (H5Fclose((hid_t)file) < 0) { ffio_h5i_fail("cannot close the HDF5 file"); rc = -1; }
    UNLOCK();
    return rc;
}

int ffio_h5_flush(int64_t file) {
    LOCK();
    ffio_h5i_begin();
    int rc = 0;
    if (H5Fflush((hid_t)file, H5F_SCOPE_GLOBAL) < 0) { ffio_h5i_fail("cannot flush the HDF5 file"); rc = -1; }
    UNLOCK();
    return rc;
}

int ffio_h5_is_hdf5(const char *path) {
    static const unsigned char sig[8] = { 0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n' };
    FILE *f = fopen(path, "rb");
    if (!f) { ffio_set_error("cannot read the file"); return -1; }
    /* The superblock may follow a user block of 512, 1024, 2048, ... bytes (checkpoints of
     * networks with many tensors carry integrity records of 128 KiB and more), so every
     * power of two inside the file is a candidate, as for libhdf5 itself. */
    int found = 0;
    if (fseek(f, 0, SEEK_END) != 0) { fclose(f); ffio_set_error("cannot read the file"); return -1; }
    const long size = ftell(f);
    for (long off = 0; off + 8 <= size && !found; off = off ? off * 2 : 512) {
        unsigned char buf[8];
        if (fseek(f, off, SEEK_SET) != 0 || fread(buf, 1, 8, f) != 8) break;
        found = memcmp(buf, sig, 8) == 0;
    }
    fclose(f);
    return found;
}

/* 1 if every component of `name` exists; caller holds the lock. */
int ffio_h5i_exists_locked(hid_t file, const char *name) {
    char buf[1024];
    if (strlen(name) >= sizeof buf) return 0;
    strcpy(buf, name);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char saved = *p;
            *p = 0;
            htri_t e = H5Lexists(file, buf, H5P_DEFAULT);
            *p = saved;
            if (e <= 0) { H5Eclear2(H5E_DEFAULT); return 0; }
            if (saved == 0) return 1;
        }
    }
}

int ffio_h5_exists(int64_t file, const char *name) {
    if (name == NULL || name[0] == 0 || strcmp(name, "/") == 0) return 1;
    LOCK();
    ffio_h5i_begin();
    int e = ffio_h5i_exists_locked((hid_t)file, name);
    UNLOCK();
    return e;
}

/* Creates missing parent groups of `name`, without time stamps. */
static int make_parents(hid_t file, const char *name) {
    char buf[1024];
    if (strlen(name) >= sizeof buf) { ffio_set_error("object name too long: %s", name); return -1; }
    strcpy(buf, name);
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    H5Pset_obj_track_times(gcpl, 0);
    int rc = 0;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        htri_t e = H5Lexists(file, buf, H5P_DEFAULT);
        if (e == 0) {
            hid_t g = H5Gcreate2(file, buf, H5P_DEFAULT, gcpl, H5P_DEFAULT);
            if (g < 0) { ffio_h5i_fail("cannot create a group"); rc = -1; *p = '/'; break; }
            H5Gclose(g);
        } else if (e < 0) {
            ffio_h5i_fail("cannot check a group");
            rc = -1;
            *p = '/';
            break;
        }
        *p = '/';
    }
    H5Pclose(gcpl);
    return rc;
}

void ffio_h5i_sb_add(strbuf *s, const char *t) {
    size_t n = strlen(t);
    if (s->len + n + 2 > s->cap) {
        s->cap = (s->len + n + 2) * 2;
        s->buf = realloc(s->buf, s->cap);
    }
    memcpy(s->buf + s->len, t, n);
    s->len += n;
    s->buf[s->len++] = '\n';
    s->buf[s->len] = 0;
}

#if H5_VERSION_GE(1, 12, 0)
typedef H5O_info2_t visit_info;
#define VISIT H5Ovisit3
#else
typedef H5O_info_t visit_info;
#define VISIT H5Ovisit2
#endif

static herr_t visit_cb(hid_t obj, const char *name, const visit_info *info, void *data) {
    (void)obj;
    if (info->type == H5O_TYPE_DATASET) ffio_h5i_sb_add(data, name);
    return 0;
}

char *ffio_h5_list_datasets(int64_t file) {
    LOCK();
    ffio_h5i_begin();
    strbuf s = { calloc(1, 64), 0, 64 };
    if (VISIT((hid_t)file, H5_INDEX_NAME, H5_ITER_INC, visit_cb, &s, H5O_INFO_BASIC) < 0) {
        ffio_h5i_fail("cannot list the datasets");
        free(s.buf);
        s.buf = NULL;
    }
    UNLOCK();
    return s.buf;
}

int64_t ffio_h5_dset_create(int64_t file, const char *name, int dtype, int rank,
                            const int64_t *dims, const int64_t *chunk) {
    if (rank < 0 || rank > FFIO_MAX_RANK || ffio_h5i_file_type(dtype) < 0) {
        ffio_set_error("invalid dataset type or rank for %s", name);
        return -1;
    }
    LOCK();
    ffio_h5i_begin();
    hid_t d = -1, space = -1, dcpl = -1, dapl = -1;
    hsize_t hd[FFIO_MAX_RANK], hc[FFIO_MAX_RANK];
    for (int i = 0; i < rank; i++) {
        hd[i] = (hsize_t)dims[i];
        hc[i] = chunk ? (hsize_t)chunk[i] : 0;
    }
    if (make_parents((hid_t)file, name) < 0) goto out;
    space = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(rank, hd, NULL);
    dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_obj_track_times(dcpl, 0);
    if (chunk && rank > 0 && H5Pset_chunk(dcpl, rank, hc) < 0) { ffio_h5i_fail("invalid chunk shape"); goto out; }
    /* No chunk cache: every write goes to the file inside H5Dwrite, so a full disk fails
     * there. (HDF5 1.10 crashes in H5Dclose when flushing cached chunks fails.) */
    dapl = H5Pcreate(H5P_DATASET_ACCESS);
    H5Pset_chunk_cache(dapl, 0, 0, 1.0);
    d = H5Dcreate2((hid_t)file, name, ffio_h5i_file_type(dtype), space, H5P_DEFAULT, dcpl, dapl);
    if (d < 0) ffio_h5i_fail("cannot create the dataset");
out:
    if (space >= 0) H5Sclose(space);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (dapl >= 0) H5Pclose(dapl);
    UNLOCK();
    return d;
}

int64_t ffio_h5_dset_open(int64_t file, const char *name) {
    LOCK();
    ffio_h5i_begin();
    hid_t d = -1;
    if (!ffio_h5i_exists_locked((hid_t)file, name)) {
        ffio_set_error("no object named '%s'", name);
    } else {
        d = H5Dopen2((hid_t)file, name, H5P_DEFAULT);
        if (d < 0) ffio_h5i_fail("cannot open the dataset");
    }
    UNLOCK();
    return d;
}

int ffio_h5_dset_close(int64_t dset) {
    LOCK();
    ffio_h5i_begin();
    int rc = H5Dclose((hid_t)dset) < 0 ? -1 : 0;
    if (rc) ffio_h5i_fail("cannot close the dataset");
    UNLOCK();
    return rc;
}

int ffio_h5_dset_info(int64_t dset, int *dtype, int *rank, int64_t *dims) {
    LOCK();
    ffio_h5i_begin();
    int rc = -1;
    hid_t t = H5Dget_type((hid_t)dset), s = H5Dget_space((hid_t)dset);
    if (t < 0 || s < 0) { ffio_h5i_fail("cannot read the dataset's type"); goto out; }
    int r = H5Sget_simple_extent_ndims(s);
    if (r < 0 || r > FFIO_MAX_RANK) { ffio_set_error("unsupported dataset rank"); goto out; }
    hsize_t hd[FFIO_MAX_RANK];
    H5Sget_simple_extent_dims(s, hd, NULL);
    for (int i = 0; i < r; i++) dims[i] = (int64_t)hd[i];
    *rank = r;
    *dtype = ffio_h5i_classify(t);
    rc = 0;
out:
    if (t >= 0) H5Tclose(t);
    if (s >= 0) H5Sclose(s);
    UNLOCK();
    return rc;
}

int64_t ffio_h5_dset_offset(int64_t dset) {
    LOCK();
    ffio_h5i_begin();
    haddr_t a = H5Dget_offset((hid_t)dset);
    H5Eclear2(H5E_DEFAULT);
    UNLOCK();
    return a == HADDR_UNDEF ? -1 : (int64_t)a;
}

int ffio_h5_dset_write_rows(int64_t dset, int64_t row, int64_t nrows, const void *data) {
    LOCK();
    ffio_h5i_begin();
    int rc = -1, direct = 0;
    hid_t space = H5Dget_space((hid_t)dset), dcpl = H5Dget_create_plist((hid_t)dset), type = H5Dget_type((hid_t)dset);
    hsize_t dims[FFIO_MAX_RANK], chunk[FFIO_MAX_RANK];
    int r = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    size_t esize = type >= 0 ? H5Tget_size(type) : 0;
    if (r >= 1 && r <= FFIO_MAX_RANK && esize == 1 && dcpl >= 0 && H5Pget_layout(dcpl) == H5D_CHUNKED &&
        H5Pget_chunk(dcpl, r, chunk) == r && H5Pget_nfilters(dcpl) == 0) {
        H5Sget_simple_extent_dims(space, dims, NULL);
        size_t rowbytes = 1;
        int whole = 1;
        for (int i = 1; i < r; i++) {
            rowbytes *= dims[i];
            if (chunk[i] != dims[i]) whole = 0;
        }
        /* Whole chunks of whole rows, in range: written as they are (H5Dwrite_chunk),
         * without HDF5 copying them through its buffers. */
        hsize_t R = chunk[0];
        if (whole && R > 0 && row >= 0 && nrows > 0 && (hsize_t)row % R == 0 && (hsize_t)nrows % R == 0 &&
            (hsize_t)(row + nrows) <= dims[0]) {
            direct = 1;
            hsize_t offset[FFIO_MAX_RANK] = { 0 };
            for (int64_t k = 0; k < nrows; k += (int64_t)R) {
                offset[0] = (hsize_t)(row + k);
                if (H5Dwrite_chunk((hid_t)dset, H5P_DEFAULT, 0, offset, R * rowbytes,
                                   (const char *)data + (size_t)k * rowbytes) < 0) {
                    ffio_h5i_fail("cannot write the dataset");
                    goto out;
                }
            }
            rc = 0;
        }
    }
out:
    if (space >= 0) H5Sclose(space);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (type >= 0) H5Tclose(type);
    UNLOCK();
    if (direct) return rc;
    /* Anything else goes through the ordinary hyperslab write. */
    int64_t start[FFIO_MAX_RANK] = { 0 }, count[FFIO_MAX_RANK];
    int t, rank;
    int64_t d[FFIO_MAX_RANK];
    if (ffio_h5_dset_info(dset, &t, &rank, d) < 0 || rank < 1) return -1;
    start[0] = row;
    count[0] = nrows;
    for (int i = 1; i < rank; i++) count[i] = d[i];
    return ffio_h5_dset_write(dset, FFIO_U8, start, count, data);
}

int ffio_h5_dset_set_extent(int64_t dset, int rank, const int64_t *dims) {
    if (rank < 1 || rank > FFIO_MAX_RANK) { ffio_set_error("invalid rank"); return -1; }
    hsize_t hd[FFIO_MAX_RANK];
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0) { ffio_set_error("negative dimension"); return -1; }
        hd[i] = (hsize_t)dims[i];
    }
    LOCK();
    ffio_h5i_begin();
    int rc = 0;
    if (H5Dset_extent((hid_t)dset, hd) < 0) { ffio_h5i_fail("cannot change the dataset's shape"); rc = -1; }
    UNLOCK();
    return rc;
}

/* Selects the block [start, start+count) of the dataset's space; returns file and memory
 * spaces, or -1. Caller holds the lock. */
static int select_block(hid_t d, const int64_t *start, const int64_t *count, hid_t *fspace,
                        hid_t *mspace) {
    *fspace = H5Dget_space(d);
    *mspace = -1;
    if (*fspace < 0) { ffio_h5i_fail("cannot read the dataset's shape"); return -1; }
    if (start == NULL || count == NULL) {
        *mspace = H5Scopy(*fspace);
        return 0;
    }
    int r = H5Sget_simple_extent_ndims(*fspace);
    hsize_t dims[FFIO_MAX_RANK], hs[FFIO_MAX_RANK], hc[FFIO_MAX_RANK];
    H5Sget_simple_extent_dims(*fspace, dims, NULL);
    for (int i = 0; i < r; i++) {
        if (start[i] < 0 || count[i] < 0 || (hsize_t)(start[i] + count[i]) > dims[i]) {
            ffio_set_error("block [%lld, +%lld) outside axis %d of size %llu", (long long)start[i],
                           (long long)count[i], i, (unsigned long long)dims[i]);
            return -1;
        }
        hs[i] = (hsize_t)start[i];
        hc[i] = (hsize_t)count[i];
    }
    if (r > 0 && H5Sselect_hyperslab(*fspace, H5S_SELECT_SET, hs, NULL, hc, NULL) < 0) {
        ffio_h5i_fail("cannot select the block");
        return -1;
    }
    *mspace = r == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(r, hc, NULL);
    return 0;
}

static int block_io(int64_t dset, int dtype, const int64_t *start, const int64_t *count,
                    void *data, int write) {
    hid_t mt = ffio_h5i_mem_type(dtype);
    if (mt < 0) { ffio_set_error("invalid memory type"); return -1; }
    LOCK();
    ffio_h5i_begin();
    hid_t fs, ms;
    int rc = select_block((hid_t)dset, start, count, &fs, &ms);
    if (rc == 0) {
        herr_t e = write ? H5Dwrite((hid_t)dset, mt, ms, fs, H5P_DEFAULT, data)
                         : H5Dread((hid_t)dset, mt, ms, fs, H5P_DEFAULT, data);
        if (e < 0) {
            ffio_h5i_fail(write ? "cannot write the dataset" : "cannot read the dataset");
            rc = -1;
        }
    }
    if (fs >= 0) H5Sclose(fs);
    if (ms >= 0) H5Sclose(ms);
    UNLOCK();
    return rc;
}

int ffio_h5_dset_write(int64_t dset, int dtype, const int64_t *start, const int64_t *count,
                       const void *data) {
    return block_io(dset, dtype, start, count, (void *)data, 1);
}

int ffio_h5_dset_read(int64_t dset, int dtype, const int64_t *start, const int64_t *count,
                      void *data) {
    return block_io(dset, dtype, start, count, data, 0);
}

int ffio_h5_dset_read_rows(int64_t dset, int dtype, const int64_t *idx, int64_t n, void *data) {
    int t, r;
    int64_t dims[FFIO_MAX_RANK];
    if (ffio_h5_dset_info(dset, &t, &r, dims) < 0) return -1;
    if (r < 1) { ffio_set_error("row read from a scalar dataset"); return -1; }
    size_t row = ffio_dtype_size(dtype);
    if (row == 0) { ffio_set_error("invalid memory type"); return -1; }
    for (int i = 1; i < r; i++) row *= (size_t)dims[i];
    int64_t start[FFIO_MAX_RANK] = { 0 }, count[FFIO_MAX_RANK];
    for (int i = 1; i < r; i++) count[i] = dims[i];
    for (int64_t i = 0; i < n;) {
        int64_t j = i + 1;
        while (j < n && idx[j] == idx[j - 1] + 1) j++;
        start[0] = idx[i];
        count[0] = j - i;
        if (block_io(dset, dtype, start, count, (char *)data + (size_t)i * row, 0) < 0) return -1;
        i = j;
    }
    return 0;
}

