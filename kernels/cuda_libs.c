/* Loading cuBLAS and cuSOLVER on first use (kernels/cuda_libs.h). */
#include "kernels/cuda_libs.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#define CUDA_LIBS_STR(x) #x
#define CUDA_LIBS_XSTR(x) CUDA_LIBS_STR(x)
#define CUBLAS_SONAME "libcublas.so." CUDA_LIBS_XSTR(CUBLAS_VER_MAJOR)
#define CUSOLVER_SONAME "libcusolver.so." CUDA_LIBS_XSTR(CUSOLVER_VER_MAJOR)

const CudaLibs *cuda_libs;

static CudaLibs libs_table;
static char libs_why[512]; /* why loading failed; empty when it worked */
static pthread_once_t libs_once = PTHREAD_ONCE_INIT;

/* Sets f from whichever of the two libraries exports it; 0 or -1 (with libs_why). */
static int libs_symbol(void *blas, void *solver, const char *name, void **f)
{
    *f = dlsym(blas, name);
    if (!*f)
        *f = dlsym(solver, name);
    if (*f)
        return 0;
    snprintf(libs_why, sizeof libs_why, "%s or %s has no function %s", CUBLAS_SONAME,
             CUSOLVER_SONAME, name);
    return -1;
}

static void libs_load_once(void)
{
    void *blas = dlopen(CUBLAS_SONAME, RTLD_NOW | RTLD_LOCAL);
    void *solver = blas ? dlopen(CUSOLVER_SONAME, RTLD_NOW | RTLD_LOCAL) : NULL;
    if (!blas || !solver) {
        const char *e = dlerror();
        snprintf(libs_why, sizeof libs_why, "cannot load %s: %s", blas ? CUSOLVER_SONAME :
                 CUBLAS_SONAME, e ? e : "unknown error");
        return; /* handles stay open: the process exits or runs on without them */
    }
    /* each member's address, as void ** (POSIX: dlsym's result converts to a function pointer) */
#define CUDA_LIBS_LOAD(f)                                                                  \
    if (libs_symbol(blas, solver, #f, (void **)&libs_table.f) != 0)                          \
        return;
    CUDA_LIBS_FUNCTIONS(CUDA_LIBS_LOAD)
    CUDA_LIBS_LOAD(cublasGemmEx)
#undef CUDA_LIBS_LOAD
    cuda_libs = &libs_table;
}

int cuda_libs_load(SsError *err)
{
    pthread_once(&libs_once, libs_load_once);
    if (!cuda_libs)
        return ss_err(err, SS_EUSAGE, "CUDA: %s", libs_why);
    return 0;
}
