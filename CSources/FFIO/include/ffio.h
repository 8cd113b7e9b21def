/* ffio.h -- file formats for ffrepro: HDF5 datasets/attributes, PNG/JPEG decoding,
 * image resize and augmentation on uint8 pixels. (Filled in by the data room.) */
#ifndef FFIO_H
#define FFIO_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
const char *ffio_version(void);
#ifdef __cplusplus
}
#endif
#endif
