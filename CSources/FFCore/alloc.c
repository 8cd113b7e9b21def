/* alloc.c -- memory of tensors.
 * Buffers of 1 MiB and more are mmap-ed and, when freed, kept in a cache keyed by their exact
 * size: training asks for the same sizes every step, so they come back without page faults.
 * Cached buffers are unmapped (returned to the OS), oldest first, whenever live + cached
 * bytes would exceed the high-water mark of live bytes plus FF_ALLOC_SLACK. The resident set
 * therefore stays within that slack of the real peak of live tensors; glibc's heap, holding
 * many 10-100 MB blocks of different sizes, can fragment to twice that.
 * Smaller buffers use posix_memalign. All functions are thread-safe (one mutex). */
#include "ff_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define FF_ALLOC_LARGE ((size_t)1 << 20)
#define FF_ALLOC_SLACK ((size_t)64 << 20)
#define FF_ALLOC_SLOTS 1024

typedef struct {
    void *p;
    size_t bytes;
    unsigned long stamp;
} cached_buffer;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static cached_buffer cache[FF_ALLOC_SLOTS];
static int ncached;
static size_t live, peak, cached;
static unsigned long clock_;

static size_t page_round(size_t b) { return (b + 4095) & ~(size_t)4095; }

/* Unmaps the oldest cached buffer; the caller holds the lock. */
static void evict_oldest(void) {
    int o = 0;
    for (int i = 1; i < ncached; i++)
        if (cache[i].stamp < cache[o].stamp) o = i;
    munmap(cache[o].p, cache[o].bytes);
    cached -= cache[o].bytes;
    cache[o] = cache[--ncached];
}

static void trim(void) {
    while (ncached > 0 && live + cached > peak + FF_ALLOC_SLACK) evict_oldest();
}

void *ff_buffer_alloc(size_t bytes, int zeroed) {
    if (bytes < FF_ALLOC_LARGE) {
        void *p = NULL;
        if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) return NULL;
        if (zeroed) memset(p, 0, bytes);
        return p;
    }
    size_t b = page_round(bytes);
    pthread_mutex_lock(&lock);
    live += b;
    if (live > peak) peak = live;
    int hit = -1;
    for (int i = 0; i < ncached; i++)
        if (cache[i].bytes == b && (hit < 0 || cache[i].stamp > cache[hit].stamp)) hit = i;
    void *p = NULL;
    if (hit >= 0) {
        p = cache[hit].p;
        cached -= b;
        cache[hit] = cache[--ncached];
    }
    trim();
    pthread_mutex_unlock(&lock);
    if (p) {
        if (zeroed) memset(p, 0, bytes);
        return p;
    }
    p = mmap(NULL, b, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        pthread_mutex_lock(&lock);
        live -= b;
        pthread_mutex_unlock(&lock);
        return NULL;
    }
    return p; /* fresh anonymous pages are zero */
}

void ff_buffer_free(void *p, size_t bytes) {
    if (!p) return;
    if (bytes < FF_ALLOC_LARGE) {
        free(p);
        return;
    }
    size_t b = page_round(bytes);
    pthread_mutex_lock(&lock);
    live -= b;
    if (ncached == FF_ALLOC_SLOTS) evict_oldest();
    cache[ncached++] = (cached_buffer){p, b, ++clock_};
    cached += b;
    trim();
    pthread_mutex_unlock(&lock);
}

size_t ff_buffer_cached_bytes(void) {
    pthread_mutex_lock(&lock);
    size_t c = cached;
    pthread_mutex_unlock(&lock);
    return c;
}

void ff_buffer_release_cache(void) {
    pthread_mutex_lock(&lock);
    while (ncached > 0) evict_oldest();
    peak = live;
    pthread_mutex_unlock(&lock);
}
