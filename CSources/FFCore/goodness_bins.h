/* Private to goodness.c and covgoodness.c: the patch (bin) rule of spatial goodness.
 * Bin i of p along an axis of `size` cells covers [bin_start, bin_end):
 *  adaptive (fl = 0): [floor(i*size/p), ceil((i+1)*size/p)), adaptive_avg_pool2d bins,
 *    covering the axis; neighbouring bins share a cell when p does not divide size;
 *  floor (fl = 1, FF_GOODNESS_FLOOR): [i*f, (i+1)*f) with f = floor(size/p), the last
 *    size - p*f cells in no bin. */
#ifndef FF_GOODNESS_BINS_H
#define FF_GOODNESS_BINS_H

static inline int bin_start(int i, int size, int p, int fl) {
    return fl ? i * (size / p) : (int)((long)i * size / p);
}
static inline int bin_end(int i, int size, int p, int fl) {
    return fl ? (i + 1) * (size / p) : (int)(((long)(i + 1) * size + p - 1) / p);
}
/* The first bin containing cell r, or p when r is in none. Bins i > first contain r
 * too while bin_start(i) <= r (ends increase with i). */
static inline int bin_first(int r, int size, int p, int fl) {
    if (fl) return r < p * (size / p) ? r / (size / p) : p;
    /* ceil((i+1)*size/p) > r  <=>  i >= floor(r*p/size) */
    return (int)((long)r * p / size);
}

#endif
