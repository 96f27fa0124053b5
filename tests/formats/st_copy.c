/* Test helper: rewrites a checkpoint with the library's writer.
 *
 *   st_copy IN OUT [PIECE]
 *
 * Opens IN with st_open and writes its tensors, in name order, to the single file OUT through
 * st_writer_put in pieces of PIECE bytes (default 4096), which exercises the writer's buffering.
 * The metadata of IN is kept when IN is one file.
 * Exit status: ss_exit_status of the first error. */
#include <stdio.h>
#include <stdlib.h>

#include "formats/safetensors.h"

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: st_copy IN OUT [PIECE]\n");
        return 1;
    }
    size_t piece = argc == 4 ? (size_t)strtoull(argv[3], NULL, 10) : 4096;
    if (piece == 0)
        piece = 1;
    SsError err = {0};
    StCheckpoint *ck;
    int rc = st_open(argv[1], &ck, &err);
    if (rc) {
        fprintf(stderr, "%s\n", err.msg);
        return ss_exit_status(rc);
    }
    StTensorSpec *specs = calloc(ck->ntensors ? ck->ntensors : 1, sizeof *specs);
    if (!specs) {
        st_close(ck);
        fprintf(stderr, "st_copy: out of memory\n");
        return 4;
    }
    for (size_t i = 0; i < ck->ntensors; i++) {
        const StTensor *t = ck->tensors[i];
        specs[i] = (StTensorSpec){t->name, t->dtype, t->ndim, t->shape};
    }
    const StFile *f0 = ck->nfiles == 1 ? ck->files[0] : NULL;
    StWriter *w;
    rc = st_writer_open(argv[2], specs, ck->ntensors, f0 ? f0->meta : NULL, f0 ? f0->nmeta : 0,
                        &w, &err);
    for (size_t i = 0; !rc && i < ck->ntensors; i++) {
        const unsigned char *p = ck->tensors[i]->data;
        for (uint64_t done = 0; !rc && done < ck->tensors[i]->nbytes; done += piece) {
            uint64_t left = ck->tensors[i]->nbytes - done;
            rc = st_writer_put(w, p + done, left < piece ? (size_t)left : piece, &err);
        }
        if (rc)
            st_writer_abort(w);
    }
    if (!rc)
        rc = st_writer_close(w, &err);
    free(specs);
    st_close(ck);
    if (rc) {
        fprintf(stderr, "%s\n", err.msg);
        return ss_exit_status(rc);
    }
    return 0;
}
