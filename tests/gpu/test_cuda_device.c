/* GPU presence check: on a machine with a CUDA device, the CUDA build must see it and describe it;
 * without one (or without a CUDA build) the test reports itself skipped (exit 77). */
#include <stdio.h>
#include <string.h>

#include "kernels/device.h"

int main(void)
{
    char desc[256];
    int n = device_cuda_count();
    if (n == 0) {
        printf("SKIP: %s\n", device_cuda_describe(0, desc, sizeof desc));
        return 77;
    }
    for (int i = 0; i < n; i++) {
        device_cuda_describe(i, desc, sizeof desc);
        printf("device %d: %s\n", i, desc);
        if (strncmp(desc, "no ", 3) == 0)
            return 1;
    }
    return 0;
}
