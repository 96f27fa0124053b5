/* Device discovery for builds without CUDA (see device.h): there is never a device. */
#include "kernels/device.h"

#include <stdio.h>

int device_cuda_count(void)
{
    return 0;
}

const char *device_cuda_describe(int i, char *buf, size_t len)
{
    snprintf(buf, len, "no CUDA device %d: built without CUDA", i);
    return buf;
}
