/* grpo-train --mask: the changed-element bitmaps of a sparsity-scan --h5 --masks report
 * (docs/hdf5-schema.md, /masks) as one byte per parameter, the per-element mask opt_step takes. */
#include <stdlib.h>
#include <string.h>

#include "formats/h5_read.h"
#include "train/train_internal.h"

/* "masks/<name>" with '%' written %25 and '/' %2F, as the schema escapes dataset names. */
static char *mask_object(const char *name)
{
    size_t n = strlen(name);
    char *p = malloc(6 + 3 * n + 1);
    if (!p)
        return NULL;
    char *q = p + sprintf(p, "masks/");
    for (size_t i = 0; i < n; i++) {
        if (name[i] == '%')
            q += sprintf(q, "%%25");
        else if (name[i] == '/')
            q += sprintf(q, "%%2F");
        else
            *q++ = name[i];
    }
    *q = '\0';
    return p;
}

/* One tensor's mask into mask[0..numel), checking its recorded shape. */
static int load_one(H5In *r, const char *path, const ModelTensor *t, uint8_t *mask, size_t *ones,
                    SsError *err)
{
    char *obj = mask_object(t->name);
    uint8_t *packed = NULL;
    uint64_t *shape = NULL;
    size_t ndim = 0;
    int rc = 0;
    if (!obj) {
        rc = ss_err(err, SS_EOUTPUT, "out of memory");
        goto done;
    }
    if (!h5r_exists(r, obj)) {
        rc = ss_err(err, SS_EINPUT, "%s: tensor '%s': no mask (/%s is missing; the file must "
                    "come from a scan of this model's checkpoints)", path, t->name, obj);
        goto done;
    }
    if ((rc = h5r_attr_u64s(r, obj, "shape", &ndim, &shape, err)) != 0)
        goto done;
    bool same = ndim == (size_t)t->ndim;
    for (size_t d = 0; same && d < ndim; d++)
        same = shape[d] == t->shape[d];
    if (!same) {
        char have[64], want[64];
        rc = ss_err(err, SS_EINPUT, "%s: tensor '%s': the mask has shape %s, the model's tensor "
                    "%s", path, t->name,
                    st_format_shape(have, sizeof have, (int)ndim, shape),
                    st_format_shape(want, sizeof want, t->ndim, t->shape));
        goto done;
    }
    size_t nbytes = (t->numel + 7) / 8;
    if (!(packed = malloc(nbytes ? nbytes : 1))) {
        rc = ss_err(err, SS_EOUTPUT, "out of memory");
        goto done;
    }
    if ((rc = h5r_u8_into(r, obj, nbytes, packed, err)) != 0)
        goto done;
    for (size_t i = 0; i < t->numel; i++) {
        mask[i] = (uint8_t)((packed[i >> 3] >> (i & 7)) & 1u);
        *ones += mask[i];
    }
done:
    free(shape);
    free(packed);
    free(obj);
    return rc;
}

int train_mask_load(const Model *m, const char *path, uint8_t *mask, size_t *count, SsError *err)
{
    *count = 0;
    H5In *r;
    int rc = h5r_open(path, &r, err);
    if (rc != 0)
        return rc;
    if (!h5r_exists(r, "masks")) {
        rc = ss_err(err, SS_EINPUT, "%s: no /masks (write the file with sparsity-scan A B --h5 "
                    "%s --masks)", path, path);
        goto done;
    }
    /* Every tensor the report compared must be one of the model's: a mask of another model is
     * refused rather than partly applied. */
    if (h5r_exists(r, "tensors/name")) {
        size_t n;
        char **names;
        if ((rc = h5r_strings(r, "tensors/name", &n, &names, err)) != 0)
            goto done;
        for (size_t i = 0; i < n && rc == 0; i++)
            if (model_find(m, names[i]) < 0)
                rc = ss_err(err, SS_EINPUT, "%s: tensor '%s': has a mask but is not a tensor of "
                            "the model", path, names[i]);
        h5r_free_strings(n, names);
        if (rc != 0)
            goto done;
    }
    for (size_t i = 0; i < m->ntensors && rc == 0; i++)
        rc = load_one(r, path, &m->tensors[i], mask + m->tensors[i].offset, count, err);
done:
    h5r_close(r);
    return rc;
}
