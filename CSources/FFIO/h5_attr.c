/* h5_attr.c -- attributes (strings and numeric vectors) on HDF5 objects; see h5.c for
 * the locking and error conventions. */
#include "h5_internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static hid_t open_obj(hid_t file, const char *obj) {
    hid_t o = H5Oopen(file, ffio_h5i_obj_path(obj), H5P_DEFAULT);
    if (o < 0) ffio_h5i_fail("cannot open the object that holds the attribute");
    return o;
}

static hid_t vlen_string_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

int ffio_h5_attr_write_string(int64_t file, const char *obj, const char *name, const char *value) {
    LOCK();
    ffio_h5i_begin();
    int rc = -1;
    hid_t o = open_obj((hid_t)file, obj), t = -1, s = -1, a = -1;
    if (o < 0) goto out;
    if (H5Aexists(o, name) > 0 && H5Adelete(o, name) < 0) { ffio_h5i_fail("cannot replace the attribute"); goto out; }
    t = vlen_string_type();
    s = H5Screate(H5S_SCALAR);
    a = H5Acreate2(o, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, t, &value) < 0) { ffio_h5i_fail("cannot write the attribute"); goto out; }
    rc = 0;
out:
    if (a >= 0) H5Aclose(a);
    if (s >= 0) H5Sclose(s);
    if (t >= 0) H5Tclose(t);
    if (o >= 0) H5Oclose(o);
    UNLOCK();
    return rc;
}

int ffio_h5_attr_write(int64_t file, const char *obj, const char *name, int dtype, int rank,
                       int64_t n, const void *values) {
    if (ffio_h5i_mem_type(dtype) < 0 || rank < 0 || rank > 1 || (rank == 0 && n != 1)) {
        ffio_set_error("invalid attribute type or shape for %s", name);
        return -1;
    }
    LOCK();
    ffio_h5i_begin();
    int rc = -1;
    hid_t o = open_obj((hid_t)file, obj), s = -1, a = -1;
    if (o < 0) goto out;
    if (H5Aexists(o, name) > 0) {
        a = H5Aopen(o, name, H5P_DEFAULT);
        hid_t at = H5Aget_type(a), as = H5Aget_space(a);
        int same = H5Tequal(at, ffio_h5i_file_type(dtype)) > 0 && H5Sget_simple_extent_npoints(as) == n &&
                   H5Sget_simple_extent_ndims(as) == rank;
        H5Tclose(at);
        H5Sclose(as);
        if (!same) {
            H5Aclose(a);
            a = -1;
            if (H5Adelete(o, name) < 0) { ffio_h5i_fail("cannot replace the attribute"); goto out; }
        }
    }
    if (a < 0) {
        hsize_t hn = (hsize_t)n;
        s = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &hn, NULL);
        a = H5Acreate2(o, name, ffio_h5i_file_type(dtype), s, H5P_DEFAULT, H5P_DEFAULT);
    }
    if (a < 0 || H5Awrite(a, ffio_h5i_mem_type(dtype), values) < 0) { ffio_h5i_fail("cannot write the attribute"); goto out; }
    rc = 0;
out:
    if (a >= 0) H5Aclose(a);
    if (s >= 0) H5Sclose(s);
    if (o >= 0) H5Oclose(o);
    UNLOCK();
    return rc;
}

int ffio_h5_attr_exists(int64_t file, const char *obj, const char *name) {
    LOCK();
    ffio_h5i_begin();
    int rc = -1;
    if (strcmp(ffio_h5i_obj_path(obj), ".") != 0 && !ffio_h5i_exists_locked((hid_t)file, obj)) {
        rc = 0;
    } else {
        hid_t o = open_obj((hid_t)file, obj);
        if (o >= 0) {
            htri_t e = H5Aexists(o, name);
            rc = e > 0 ? 1 : e == 0 ? 0 : -1;
            if (e < 0) ffio_h5i_fail("cannot check the attribute");
            H5Oclose(o);
        }
    }
    UNLOCK();
    return rc;
}

/* Opens attribute `name` of `obj`; caller holds the lock and closes both. */
static hid_t open_attr(hid_t file, const char *obj, const char *name, hid_t *o) {
    *o = open_obj(file, obj);
    if (*o < 0) return -1;
    if (H5Aexists(*o, name) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        ffio_set_error("no attribute named '%s'", name);
        return -1;
    }
    hid_t a = H5Aopen(*o, name, H5P_DEFAULT);
    if (a < 0) ffio_h5i_fail("cannot open the attribute");
    return a;
}

int ffio_h5_attr_info(int64_t file, const char *obj, const char *name, int *dtype, int64_t *n) {
    LOCK();
    ffio_h5i_begin();
    hid_t o, a = open_attr((hid_t)file, obj, name, &o);
    int rc = -1;
    if (a >= 0) {
        hid_t t = H5Aget_type(a), s = H5Aget_space(a);
        *dtype = ffio_h5i_classify(t);
        *n = (int64_t)H5Sget_simple_extent_npoints(s);
        H5Tclose(t);
        H5Sclose(s);
        H5Aclose(a);
        rc = 0;
    }
    if (o >= 0) H5Oclose(o);
    UNLOCK();
    return rc;
}

char *ffio_h5_attr_read_string(int64_t file, const char *obj, const char *name) {
    LOCK();
    ffio_h5i_begin();
    char *result = NULL;
    hid_t o, a = open_attr((hid_t)file, obj, name, &o), t = -1, s = -1, mt = -1;
    if (a < 0) goto out;
    t = H5Aget_type(a);
    s = H5Aget_space(a);
    if (H5Tget_class(t) != H5T_STRING || H5Sget_simple_extent_npoints(s) != 1) {
        ffio_set_error("attribute '%s' is not a single string", name);
        goto out;
    }
    if (H5Tis_variable_str(t) > 0) {
        mt = vlen_string_type();
        H5Tset_cset(mt, H5Tget_cset(t));
        char *p = NULL;
        if (H5Aread(a, mt, &p) < 0) { ffio_h5i_fail("cannot read the attribute"); goto out; }
        result = strdup(p ? p : "");
        H5free_memory(p);
    } else {
        size_t size = H5Tget_size(t);
        mt = H5Tcopy(t);
        H5Tset_strpad(mt, H5T_STR_NULLTERM);
        H5Tset_size(mt, size + 1);
        result = calloc(1, size + 2);
        if (H5Aread(a, mt, result) < 0) { ffio_h5i_fail("cannot read the attribute"); free(result); result = NULL; }
    }
out:
    if (mt >= 0) H5Tclose(mt);
    if (t >= 0) H5Tclose(t);
    if (s >= 0) H5Sclose(s);
    if (a >= 0) H5Aclose(a);
    if (o >= 0) H5Oclose(o);
    UNLOCK();
    return result;
}

int ffio_h5_attr_read(int64_t file, const char *obj, const char *name, int dtype, int64_t n,
                      void *values) {
    if (ffio_h5i_mem_type(dtype) < 0) { ffio_set_error("invalid memory type"); return -1; }
    LOCK();
    ffio_h5i_begin();
    int rc = -1;
    hid_t o, a = open_attr((hid_t)file, obj, name, &o);
    if (a >= 0) {
        hid_t t = H5Aget_type(a), s = H5Aget_space(a);
        int c = ffio_h5i_classify(t);
        if (c == FFIO_STRING || c == FFIO_OTHER) {
            ffio_set_error("attribute '%s' is not numeric", name);
        } else if (H5Sget_simple_extent_npoints(s) != n) {
            ffio_set_error("attribute '%s' has %lld values, expected %lld", name,
                           (long long)H5Sget_simple_extent_npoints(s), (long long)n);
        } else if (H5Aread(a, ffio_h5i_mem_type(dtype), values) < 0) {
            ffio_h5i_fail("cannot read the attribute");
        } else {
            rc = 0;
        }
        H5Tclose(t);
        H5Sclose(s);
        H5Aclose(a);
    }
    if (o >= 0) H5Oclose(o);
    UNLOCK();
    return rc;
}

static herr_t attr_cb(hid_t loc, const char *name, const H5A_info_t *info, void *data) {
    (void)loc;
    (void)info;
    ffio_h5i_sb_add(data, name);
    return 0;
}

char *ffio_h5_attr_names(int64_t file, const char *obj) {
    LOCK();
    ffio_h5i_begin();
    strbuf s = { calloc(1, 64), 0, 64 };
    hid_t o = open_obj((hid_t)file, obj);
    if (o < 0 || H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_INC, NULL, attr_cb, &s) < 0) {
        if (o >= 0) ffio_h5i_fail("cannot list the attributes");
        free(s.buf);
        s.buf = NULL;
    }
    if (o >= 0) H5Oclose(o);
    UNLOCK();
    return s.buf;
}
