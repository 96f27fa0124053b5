/* Which accelerators this process can use. Built with CUDA (meson -Dcuda), the count comes from
 * the CUDA runtime; without CUDA, or without a driver or GPU, it is 0. Later `--device auto`
 * picks CUDA exactly when device_cuda_count() > 0. */
#ifndef SS_DEVICE_H
#define SS_DEVICE_H

#include <stddef.h>

/* Number of usable CUDA devices; 0 when there is no CUDA build, driver or GPU. */
int device_cuda_count(void);

/* Writes a description of CUDA device i ("NVIDIA H200, 139.8 GiB, sm_90") into buf, or the reason
 * none is usable ("no CUDA driver: ...", "built without CUDA"). Returns buf. */
const char *device_cuda_describe(int i, char *buf, size_t len);

#endif
