/* h5_internal.h -- helpers shared by h5.c and h5_attr.c. Every public ffio_h5_* function
 * holds ffio_h5_mutex (LOCK/UNLOCK) around its HDF5 calls and starts with ffio_h5i_begin(). */
#ifndef FFIO_H5_INTERNAL_H
#define FFIO_H5_INTERNAL_H
#include "ffio_internal.h"
#include <hdf5.h>
#include <pthread.h>

extern pthread_mutex_t ffio_h5_mutex;
#define LOCK() pthread_mutex_lock(&ffio_h5_mutex)
#define UNLOCK() pthread_mutex_unlock(&ffio_h5_mutex)

/* Silences HDF5's error printer on this thread and clears the last error. */
void ffio_h5i_begin(void);
/* Records `what` plus HDF5's innermost messages as the last error. */
void ffio_h5i_fail(const char *what);
hid_t ffio_h5i_mem_type(int dtype);
/* Fixed little-endian file types. */
hid_t ffio_h5i_file_type(int dtype);
/* FFIO_* type of an HDF5 datatype. */
int ffio_h5i_classify(hid_t t);
/* "." for the root ("", "/", NULL), else obj. */
const char *ffio_h5i_obj_path(const char *obj);
/* 1 if every component of `name` exists; caller holds the lock. */
int ffio_h5i_exists_locked(hid_t file, const char *name);

typedef struct { char *buf; size_t len, cap; } strbuf;
/* Appends t and a newline. */
void ffio_h5i_sb_add(strbuf *s, const char *t);
#endif
