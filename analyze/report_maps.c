/* Writing the update maps of --maps: the per-tensor "maps" key of the JSON report (stripe ratios
 * and head fractions only: the row, column and cell arrays are too big for JSON) and the HDF5
 * group /maps (docs/hdf5-schema.md, "/maps"). */
#include <stdlib.h>

#include "analyze/h5_chunks.h"
#include "analyze/maps.h"
#include "analyze/report.h"

/* The cell counts: shuffle + deflate level 1, chunks filtered on the report's thread pool. */
#define REPORT_MAPS_DEFLATE 1

void report_maps_json(JsonWriter *w, const TensorMap *t)
{
    jw_object_begin(w);
    jw_key(w, "row_stripe_ratio");
    jw_double(w, t->row_stripe_ratio);
    jw_key(w, "col_stripe_ratio");
    jw_double(w, t->col_stripe_ratio);
    if (t->head_fraction) {
        jw_key(w, "head_dim");
        jw_uint(w, t->head_dim);
        jw_key(w, "head_fraction");
        jw_array_begin(w);
        for (uint64_t h = 0; h < t->nheads; h++)
            jw_double(w, t->head_fraction[h]);
        jw_array_end(w);
    }
    jw_object_end(w);
}

/* The attributes of maps/<name>. */
static int report_maps_attrs(H5Out *w, hid_t g, const TensorMap *t, double stripe_k,
                             SsError *err)
{
    int rc = h5w_attr_string(w, g, "tensor", t->name, err);
    if (!rc)
        rc = h5w_attr_u64(w, g, "rows", t->rows, err);
    if (!rc)
        rc = h5w_attr_u64(w, g, "cols", t->cols, err);
    if (!rc)
        rc = h5w_attr_u64(w, g, "changed", t->changed, err);
    if (!rc)
        rc = h5w_attr_u64(w, g, "head_dim", t->head_dim, err);
    if (!rc)
        rc = h5w_attr_f64(w, g, "stripe_k", stripe_k, err);
    if (!rc)
        rc = h5w_attr_f64(w, g, "row_stripe_ratio", t->row_stripe_ratio, err);
    if (!rc)
        rc = h5w_attr_f64(w, g, "col_stripe_ratio", t->col_stripe_ratio, err);
    return rc;
}

/* maps/<name>: row_changed, col_changed, row_edges, col_edges, cell_changed, head_fraction (when
 * known), attributes. */
static int report_maps_tensor(H5Out *w, ThreadPool *pool, hid_t maps_grp, const TensorMap *t,
                              double stripe_k, SsError *err)
{
    char *name = report_h5_tensor_name(t->name);
    if (!name)
        return ss_err(err, SS_EOUTPUT, "out of memory writing the HDF5 report");
    hid_t g;
    int rc = h5w_group(w, maps_grp, name, &g, err);
    free(name);
    if (rc)
        return rc;
    hsize_t dr[1] = {t->rows}, dc[1] = {t->cols}, dd[2] = {t->map_rows, t->map_cols};
    hsize_t der[1] = {t->map_rows + 1}, dec[1] = {t->map_cols + 1}, dh[1] = {t->nheads};
    rc = h5w_dataset(w, g, "row_changed", H5W_U64, 1, dr, t->row_changed, err);
    if (!rc)
        rc = h5w_dataset(w, g, "col_changed", H5W_U64, 1, dc, t->col_changed, err);
    if (!rc)
        rc = h5w_dataset(w, g, "row_edges", H5W_U64, 1, der, t->row_edges, err);
    if (!rc)
        rc = h5w_dataset(w, g, "col_edges", H5W_U64, 1, dec, t->col_edges, err);
    if (!rc)
        rc = h5_chunks_write(w, pool, g, "cell_changed", t->cell_type, 2, dd, 0,
                             t->cell_changed, REPORT_MAPS_DEFLATE, h5_chunks_sparse_bytes,
                             NULL, err);
    if (!rc && t->head_fraction)
        rc = h5w_dataset(w, g, "head_fraction", H5W_F64, 1, dh, t->head_fraction, err);
    if (!rc)
        rc = report_maps_attrs(w, g, t, stripe_k, err);
    int rc2 = h5w_close_group(w, g, err);
    return rc ? rc : rc2;
}

int report_maps_h5(H5Out *w, ThreadPool *pool, const MapsReport *m, SsError *err)
{
    hid_t g;
    int rc = h5w_group(w, h5w_root(w), "maps", &g, err);
    if (rc)
        return rc;
    rc = h5w_attr_f64(w, g, "stripe_k", m->stripe_k, err);
    if (!rc)
        rc = h5w_attr_u64(w, g, "head_dim", m->head_dim, err);
    if (!rc && m->head_dim_source)
        rc = h5w_attr_string(w, g, "head_dim_source", m->head_dim_source, err);
    if (!rc)
        rc = h5w_attr_u64(w, g, "max_cells", MAPS_MAX_CELLS, err);
    for (size_t i = 0; i < m->ntensors && !rc; i++)
        if (m->t[i].rows)
            rc = report_maps_tensor(w, pool, g, &m->t[i], m->stripe_k, err);
    int rc2 = h5w_close_group(w, g, err);
    return rc ? rc : rc2;
}
