/* Unit tests of formats/safetensors: writer -> reader round trips on every dtype (0-d and empty
 * tensors, metadata, pieces of any size), the writer's atomicity and errors, 64-bit offsets past
 * 4 GiB (a sparse file), and the folder layouts: model.safetensors.index.json with shards (and its
 * error cases) and a folder holding one model.safetensors.
 * Exit status: 0 pass, 1 fail. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/safetensors.h"
#include "tests/check.h"


/* Like CHECK for an int call that must return 0; prints the library message otherwise. */
#define CHECK_OK(call, err)                                                                        \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != 0) {                                                                            \
            fprintf(stderr, "%s:%d: %s returned %d: %s\n", __FILE__, __LINE__, #call, rc_,         \
                    (err).msg);                                                                    \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static char tmpdir[4096];

/* "<tmpdir>/<printf...>" in a static rotating buffer (4 live at a time). */
__attribute__((format(printf, 1, 2))) static const char *tpath(const char *fmt, ...)
{
    static char bufs[4][4096];
    static int k;
    char *b = bufs[k++ % 4];
    int n = snprintf(b, sizeof bufs[0], "%s/", tmpdir);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b + n, sizeof bufs[0] - (size_t)n, fmt, ap);
    va_end(ap);
    return b;
}

/* Removes dir and everything below it (the test only creates files and folders). */
static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[8192];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            remove_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    CHECK(fp != NULL);
    if (!fp)
        return;
    fputs(text, fp);
    fclose(fp);
}

static bool file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Counts entries of dir whose name contains ".tmp." (leftover temporary files). */
static int count_tmp_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strstr(e->d_name, ".tmp.") != NULL;
    if (d)
        closedir(d);
    return n;
}

/* Deterministic bytes: a small xorshift stream seeded by seed. */
static void fill_bytes(unsigned char *p, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        p[i] = (unsigned char)(x >> 24);
    }
}

/* ---- round trips ---- */

/* Every dtype as a (2, 3) tensor, plus a 0-d F32, an empty (0, 4) BF16 and a (0,) U8; metadata. */
static void test_roundtrip_all_dtypes(void)
{
    enum { NEXTRA = 3 };
    StTensorSpec specs[DT_COUNT + NEXTRA];
    unsigned char *datas[DT_COUNT + NEXTRA];
    uint64_t nbytes[DT_COUNT + NEXTRA];
    char names[DT_COUNT + NEXTRA][32];
    static const uint64_t shape23[] = {2, 3}, shape04[] = {0, 4}, shape0[] = {0};
    size_t n = 0;
    for (int dt = 0; dt < DT_COUNT; dt++, n++) {
        snprintf(names[n], sizeof names[n], "t.%s", dtype_name((DType)dt));
        specs[n] = (StTensorSpec){names[n], (DType)dt, 2, shape23};
    }
    specs[n++] = (StTensorSpec){"scalar", DT_F32, 0, NULL};
    specs[n++] = (StTensorSpec){"empty.bf16", DT_BF16, 2, shape04};
    specs[n++] = (StTensorSpec){"empty.u8", DT_U8, 1, shape0};
    for (size_t i = 0; i < n; i++) {
        CHECK(st_shape_nbytes(specs[i].dtype, specs[i].ndim, specs[i].shape, NULL, &nbytes[i]));
        datas[i] = malloc(nbytes[i] ? nbytes[i] : 1);
        fill_bytes(datas[i], nbytes[i], i + 1);
    }
    const StMeta meta[] = {{"format", "pt"}, {"zeta", "last"}, {"alpha", "ünïcode"}};
    SsError err = {0};
    const char *path = tpath("all.safetensors");
    CHECK_OK(st_write(path, specs, (const void *const *)datas, n, meta, 3, &err), err);

    StCheckpoint *ck = NULL;
    CHECK_OK(st_open(path, &ck, &err), err);
    if (ck) {
        CHECK(ck->ntensors == n);
        CHECK(ck->nfiles == 1);
        const StFile *f = ck->files[0];
        CHECK((8 + f->header_len) % 8 == 0);
        CHECK(f->nmeta == 3);
        for (size_t k = 0; k < 3 && k < f->nmeta; k++) { /* header order kept */
            CHECK(strcmp(f->meta[k].key, meta[k].key) == 0);
            CHECK(strcmp(f->meta[k].value, meta[k].value) == 0);
        }
        uint64_t total = 0;
        for (size_t i = 0; i < n; i++) {
            const StTensor *t = st_find(ck, specs[i].name);
            CHECK(t != NULL);
            if (!t)
                continue;
            total += nbytes[i];
            CHECK(t->dtype == specs[i].dtype);
            CHECK(t->ndim == specs[i].ndim);
            for (int d = 0; d < t->ndim; d++)
                CHECK(t->shape[d] == specs[i].shape[d]);
            CHECK(t->nbytes == nbytes[i]);
            CHECK(t->numel * dtype_size(t->dtype) == t->nbytes);
            CHECK(t->data != NULL);
            CHECK(memcmp(t->data, datas[i], nbytes[i]) == 0);
            CHECK(strcmp(t->file, path) == 0);
        }
        CHECK(ck->total_bytes == total);
        for (size_t i = 1; i < ck->ntensors; i++) /* sorted by name */
            CHECK(strcmp(ck->tensors[i - 1]->name, ck->tensors[i]->name) < 0);
        for (size_t i = 1; i < f->ntensors; i++) /* sorted by offset, contiguous */
            CHECK(f->tensors[i].offset == f->tensors[i - 1].offset + f->tensors[i - 1].nbytes);
        const StTensor *s = st_find(ck, "scalar");
        CHECK(s && s->ndim == 0 && s->numel == 1 && s->nbytes == 4);
        CHECK(st_find(ck, "absent") == NULL);
        CHECK(st_find(ck, "") == NULL);
        st_close(ck);
    }
    for (size_t i = 0; i < n; i++)
        free(datas[i]);
}

/* A header-only file ("{}" padded) and an empty-name tensor both open. */
static void test_roundtrip_empty(void)
{
    SsError err = {0};
    const char *path = tpath("empty.safetensors");
    CHECK_OK(st_write(path, NULL, NULL, 0, NULL, 0, &err), err);
    StCheckpoint *ck = NULL;
    CHECK_OK(st_open(path, &ck, &err), err);
    if (ck) {
        CHECK(ck->ntensors == 0 && ck->total_bytes == 0);
        CHECK(ck->files[0]->file_size == 8 + ck->files[0]->header_len);
        st_close(ck);
    }

    /* Only zero-size tensors: the data section is empty but every data pointer is non-NULL. */
    static const uint64_t shape0[] = {0};
    StTensorSpec specs[] = {{"", DT_F64, 1, shape0}, {"z", DT_I8, 1, shape0}};
    const void *datas[] = {NULL, NULL};
    path = tpath("zeros.safetensors");
    CHECK_OK(st_write(path, specs, datas, 2, NULL, 0, &err), err);
    CHECK_OK(st_open(path, &ck, &err), err);
    if (ck) {
        CHECK(ck->ntensors == 2);
        const StTensor *t = st_find(ck, "");
        CHECK(t && t->data != NULL && t->nbytes == 0);
        CHECK(ck->files[0]->file_size == 8 + ck->files[0]->header_len);
        st_close(ck);
    }
}

/* Streaming: pieces of 1 byte, odd sizes, and one larger than the writer's 8 MiB buffer (and
 * its 1 MiB direct-write threshold). */
static void test_writer_pieces(void)
{
    static const uint64_t big_shape[] = {5, 1u << 20}; /* 10 MiB of F16 */
    static const uint64_t small_shape[] = {1000};
    StTensorSpec specs[] = {{"small", DT_U8, 1, small_shape}, {"big", DT_F16, 2, big_shape}};
    size_t nsmall = 1000, nbig = (size_t)5 << 21;
    unsigned char *small = malloc(nsmall), *big = malloc(nbig);
    fill_bytes(small, nsmall, 7);
    fill_bytes(big, nbig, 8);
    SsError err = {0};
    const char *path = tpath("pieces.safetensors");
    StWriter *w = NULL;
    CHECK_OK(st_writer_open(path, specs, 2, NULL, 0, &w, &err), err);
    if (w) {
        size_t i = 0;
        for (size_t step = 1; i < nsmall; step = step * 3 + 1) { /* 1, 4, 13, 40, ... */
            size_t len = step < nsmall - i ? step : nsmall - i;
            CHECK_OK(st_writer_put(w, small + i, len, &err), err);
            i += len;
        }
        CHECK_OK(st_writer_put(w, big, 3, &err), err);
        CHECK_OK(st_writer_put(w, big + 3, nbig - 3 - 5, &err), err); /* > buffer: direct */
        CHECK_OK(st_writer_put(w, big + nbig - 5, 5, &err), err);
        CHECK(!file_exists(path)); /* nothing at the final name before close */
        CHECK_OK(st_writer_close(w, &err), err);
    }
    CHECK(count_tmp_files(tmpdir) == 0);
    StCheckpoint *ck = NULL;
    CHECK_OK(st_open(path, &ck, &err), err);
    if (ck) {
        const StTensor *a = st_find(ck, "small"), *b = st_find(ck, "big");
        CHECK(a && a->nbytes == nsmall && memcmp(a->data, small, nsmall) == 0);
        CHECK(b && b->nbytes == nbig && memcmp(b->data, big, nbig) == 0);
        st_close(ck);
    }
    free(small);
    free(big);
}

/* ---- writer errors ---- */

static void test_writer_errors(void)
{
    static const uint64_t shape[] = {4};
    unsigned char data[16] = {0};
    SsError err = {0};
    StWriter *w = NULL;
    const char *path = tpath("bad.safetensors");

    StTensorSpec dup[] = {{"a", DT_U8, 1, shape}, {"a", DT_U8, 1, shape}};
    CHECK(st_writer_open(path, dup, 2, NULL, 0, &w, &err) == SS_EUSAGE);
    CHECK(strstr(err.msg, "twice") && strstr(err.msg, path) == err.msg);

    StTensorSpec reserved[] = {{"__metadata__", DT_U8, 1, shape}};
    CHECK(st_writer_open(path, reserved, 1, NULL, 0, &w, &err) == SS_EUSAGE);
    CHECK(strstr(err.msg, "reserved") != NULL);

    StTensorSpec bad_utf8[] = {{"\xff\xfe", DT_U8, 1, shape}};
    CHECK(st_writer_open(path, bad_utf8, 1, NULL, 0, &w, &err) == SS_EUSAGE);

    static const uint64_t huge[] = {1ull << 40, 1ull << 40};
    StTensorSpec overflow[] = {{"h", DT_U8, 2, huge}};
    CHECK(st_writer_open(path, overflow, 1, NULL, 0, &w, &err) == SS_EUSAGE);

    StTensorSpec bad_dtype[] = {{"d", DT_COUNT, 1, shape}};
    CHECK(st_writer_open(path, bad_dtype, 1, NULL, 0, &w, &err) == SS_EUSAGE);

    static uint64_t ones[ST_MAX_NDIM + 1];
    for (size_t i = 0; i <= ST_MAX_NDIM; i++)
        ones[i] = 1;
    StTensorSpec many_dims[] = {{"m", DT_U8, ST_MAX_NDIM + 1, ones}};
    CHECK(st_writer_open(path, many_dims, 1, NULL, 0, &w, &err) == SS_EUSAGE);
    StTensorSpec neg_dims[] = {{"m", DT_U8, -1, ones}};
    CHECK(st_writer_open(path, neg_dims, 1, NULL, 0, &w, &err) == SS_EUSAGE);
    CHECK(!file_exists(path) && count_tmp_files(tmpdir) == 0);

    StMeta dup_meta[] = {{"k", "1"}, {"k", "2"}};
    StTensorSpec one[] = {{"a", DT_U8, 1, shape}};
    CHECK(st_writer_open(path, one, 1, dup_meta, 2, &w, &err) == SS_EUSAGE);

    /* Too few bytes: close fails, nothing left behind. */
    CHECK_OK(st_writer_open(path, one, 1, NULL, 0, &w, &err), err);
    CHECK(count_tmp_files(tmpdir) == 1);
    CHECK_OK(st_writer_put(w, data, 3, &err), err);
    CHECK(st_writer_close(w, &err) == SS_EUSAGE);
    CHECK(strstr(err.msg, "declares") != NULL);

    /* Too many bytes: put fails, the temporary is already gone, later puts fail. */
    CHECK_OK(st_writer_open(path, one, 1, NULL, 0, &w, &err), err);
    CHECK(st_writer_put(w, data, 5, &err) == SS_EUSAGE);
    CHECK(count_tmp_files(tmpdir) == 0);
    CHECK(st_writer_put(w, data, 1, &err) != 0);
    st_writer_abort(w);

    /* Abort removes the temporary file. */
    CHECK_OK(st_writer_open(path, one, 1, NULL, 0, &w, &err), err);
    CHECK_OK(st_writer_put(w, data, 4, &err), err);
    st_writer_abort(w);
    CHECK(count_tmp_files(tmpdir) == 0);
    CHECK(!file_exists(path));

    /* A folder that does not exist: SS_EOUTPUT naming the path. */
    const char *nowhere = tpath("no/such/dir/x.safetensors");
    CHECK(st_writer_open(nowhere, one, 1, NULL, 0, &w, &err) == SS_EOUTPUT);
    CHECK(strstr(err.msg, nowhere) == err.msg);

    /* Rewriting an existing file replaces it whole. */
    const void *d1[] = {"AAAA"}, *d2[] = {"BBBB"};
    CHECK_OK(st_write(path, one, d1, 1, NULL, 0, &err), err);
    CHECK_OK(st_write(path, one, d2, 1, NULL, 0, &err), err);
    StCheckpoint *ck = NULL;
    CHECK_OK(st_open(path, &ck, &err), err);
    if (ck) {
        CHECK(memcmp(st_find(ck, "a")->data, "BBBB", 4) == 0);
        st_close(ck);
    }
    CHECK(count_tmp_files(tmpdir) == 0);
}

/* ---- reader details ---- */

static void test_open_errors(void)
{
    SsError err = {0};
    StCheckpoint *ck = NULL;
    const char *missing = tpath("missing.safetensors");
    CHECK(st_open(missing, &ck, &err) == SS_EINPUT && ck == NULL);
    CHECK(strstr(err.msg, missing) == err.msg && strstr(err.msg, "cannot open") != NULL);
    StFile *f = NULL;
    CHECK(st_file_open(missing, &f, &err) == SS_EINPUT && f == NULL);
    CHECK(st_file_open(tmpdir, &f, &err) == SS_EINPUT); /* a folder is not a file */
    CHECK(strstr(err.msg, "not a regular file") != NULL);

    /* A FIFO is refused at once rather than blocking the open. */
    const char *fifo = tpath("fifo.safetensors");
    if (mkfifo(fifo, 0644) == 0) {
        CHECK(st_open(fifo, &ck, &err) == SS_EINPUT);
        CHECK(strstr(err.msg, "not a regular file") != NULL);
        const char *dir = tpath("fifo_index");
        mkdir(dir, 0755);
        const char *index = tpath("fifo_index/model.safetensors.index.json");
        if (mkfifo(index, 0644) == 0) {
            CHECK(st_open(dir, &ck, &err) == SS_EINPUT);
            CHECK(strstr(err.msg, "not a regular file") != NULL);
        }
    }
}

/* A tensor past 4 GiB: a sparse file with a 4 GiB + 16 byte U8 tensor, then an 8-byte one. */
static void test_offsets_past_4gib(void)
{
    const uint64_t big = (1ull << 32) + 16;
    char header[256];
    int n = snprintf(header, sizeof header,
                     "{\"big\":{\"dtype\":\"U8\",\"shape\":[%llu],\"data_offsets\":[0,%llu]},"
                     "\"tail\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[%llu,%llu]}}",
                     (unsigned long long)big, (unsigned long long)big, (unsigned long long)big,
                     (unsigned long long)big + 8);
    const char *path = tpath("sparse.safetensors");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)n >> (8 * i));
    const char tail[8] = "TAILDATA";
    off_t data = 8 + n;
    bool ok = write(fd, len8, 8) == 8 && write(fd, header, (size_t)n) == n &&
              pwrite(fd, tail, 8, data + (off_t)big) == 8;
    close(fd);
    if (!ok) {
        fprintf(stderr, "test_offsets_past_4gib: no sparse file here (%s); skipped\n",
                strerror(errno));
        unlink(path);
        return;
    }
    SsError err = {0};
    StCheckpoint *ck = NULL;
    CHECK_OK(st_open(path, &ck, &err), err);
    if (ck) {
        const StTensor *t = st_find(ck, "tail"), *b = st_find(ck, "big");
        CHECK(t && t->offset == big && memcmp(t->data, "TAILDATA", 8) == 0);
        CHECK(b && b->nbytes == big && ((const unsigned char *)b->data)[big - 1] == 0);
        CHECK(ck->total_bytes == big + 8);
        st_close(ck);
    }
    unlink(path);
}

/* ---- folders ---- */

/* Writes shard <dir>/<file> holding U8 tensors names[0..n) of shape [k+1] each. */
static void write_shard(const char *dir, const char *file, const char *const *names, size_t n)
{
    StTensorSpec specs[8];
    const void *datas[8];
    static const uint64_t shapes[8][1] = {{1}, {2}, {3}, {4}, {5}, {6}, {7}, {8}};
    static const char bytes[] = "0123456789";
    for (size_t k = 0; k < n; k++) {
        specs[k] = (StTensorSpec){names[k], DT_U8, 1, shapes[k]};
        datas[k] = bytes;
    }
    SsError err = {0};
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    CHECK_OK(st_write(path, specs, datas, n, NULL, 0, &err), err);
}

/* A fresh folder <tmpdir>/<name> with shards a (x, y) and b (z), and the given index text. */
static const char *make_sharded(const char *name, const char *index_json)
{
    const char *dir = tpath("%s", name);
    mkdir(dir, 0755);
    static const char *const a[] = {"x", "y"}, *const b[] = {"z"};
    write_shard(dir, "a.safetensors", a, 2);
    write_shard(dir, "b.safetensors", b, 1);
    char idx[4096];
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", dir);
    write_text(idx, index_json);
    return dir;
}

/* st_open(dir) must fail with SS_EINPUT, one line, starting with dir, containing word. */
static void expect_folder_error(const char *dir, const char *word)
{
    SsError err = {0};
    StCheckpoint *ck = NULL;
    int rc = st_open(dir, &ck, &err);
    CHECK(rc == SS_EINPUT && ck == NULL);
    if (rc != SS_EINPUT || strstr(err.msg, dir) != err.msg || !strstr(err.msg, word) ||
        strchr(err.msg, '\n')) {
        fprintf(stderr, "  folder %s: want error with '%s', got %d: %s\n", dir, word, rc, err.msg);
        failures++;
    }
}

static void test_sharded_folder(void)
{
    const char *dir = make_sharded("sharded", "{\"metadata\": {\"total_size\": 6},\n"
                                              " \"weight_map\": {\"x\": \"a.safetensors\", "
                                              "\"z\": \"b.safetensors\", "
                                              "\"y\": \"a.safetensors\"}}");
    SsError err = {0};
    StCheckpoint *ck = NULL;
    CHECK_OK(st_open(dir, &ck, &err), err);
    if (ck) {
        CHECK(ck->nfiles == 2); /* each shard opened once */
        CHECK(ck->ntensors == 3);
        CHECK(ck->total_bytes == 1 + 2 + 1);
        const StTensor *x = st_find(ck, "x"), *y = st_find(ck, "y"), *z = st_find(ck, "z");
        CHECK(x && y && z);
        if (x && y && z) {
            CHECK(strstr(x->file, "/a.safetensors") && x->file == y->file);
            CHECK(strstr(z->file, "/b.safetensors") != NULL);
            CHECK(y->nbytes == 2 && memcmp(y->data, "01", 2) == 0);
        }
        CHECK(ck->tensors[0] == x && ck->tensors[1] == y && ck->tensors[2] == z);
        st_close(ck);
    }

    /* A trailing slash on the folder works too. */
    char slash[4200];
    snprintf(slash, sizeof slash, "%s/", dir);
    CHECK_OK(st_open(slash, &ck, &err), err);
    if (ck)
        st_close(ck);
}

static void test_sharded_errors(void)
{
    /* The shard named by the map does not exist. */
    expect_folder_error(make_sharded("e_missing_shard",
                                     "{\"weight_map\": {\"x\": \"a.safetensors\", \"y\": "
                                     "\"a.safetensors\", \"z\": \"c.safetensors\"}}"),
                        "cannot open");
    /* A tensor in the map that its shard lacks. */
    expect_folder_error(make_sharded("e_not_in_shard",
                                     "{\"weight_map\": {\"x\": \"a.safetensors\", \"y\": "
                                     "\"a.safetensors\", \"z\": \"b.safetensors\", \"w\": "
                                     "\"b.safetensors\"}}"),
                        "does not hold");
    /* The map puts a tensor in the wrong shard. */
    expect_folder_error(make_sharded("e_wrong_shard",
                                     "{\"weight_map\": {\"x\": \"a.safetensors\", \"y\": "
                                     "\"b.safetensors\", \"z\": \"b.safetensors\"}}"),
                        "but it is in");
    /* A shard tensor the map does not list. */
    expect_folder_error(make_sharded("e_extra",
                                     "{\"weight_map\": {\"x\": \"a.safetensors\", \"z\": "
                                     "\"b.safetensors\"}}"),
                        "missing from the weight_map");
    /* Shard names that leave the folder. */
    expect_folder_error(make_sharded("e_dotdot", "{\"weight_map\": {\"x\": \"..\"}}"),
                        "plain file name");
    expect_folder_error(make_sharded("e_slash",
                                     "{\"weight_map\": {\"x\": \"../e_extra/a.safetensors\"}}"),
                        "plain file name");
    /* Malformed index JSON. */
    expect_folder_error(make_sharded("e_no_map", "{\"metadata\": {}}"), "weight_map");
    expect_folder_error(make_sharded("e_map_array", "{\"weight_map\": []}"), "not an object");
    expect_folder_error(make_sharded("e_map_value", "{\"weight_map\": {\"x\": 1}}"),
                        "not a string");
    expect_folder_error(make_sharded("e_bad_json", "{\"weight_map\": {"), "not valid JSON");
    expect_folder_error(make_sharded("e_dup_key",
                                     "{\"weight_map\": {\"x\": \"a.safetensors\", \"x\": "
                                     "\"a.safetensors\"}}"),
                        "duplicate");
    expect_folder_error(make_sharded("e_index_array", "[]"), "not an object");

    /* The same tensor in two shards. */
    const char *dir = make_sharded("e_two_shards", "{\"weight_map\": {\"x\": \"a.safetensors\", "
                                                   "\"y\": \"a.safetensors\", \"z\": "
                                                   "\"b.safetensors\"}}");
    static const char *const b2[] = {"x", "z"};
    write_shard(dir, "b.safetensors", b2, 2);
    expect_folder_error(dir, "two files");

    /* A shard that is itself malformed: its own message, naming the shard. */
    dir = make_sharded("e_bad_shard", "{\"weight_map\": {\"x\": \"a.safetensors\", \"y\": "
                                      "\"a.safetensors\", \"z\": \"b.safetensors\"}}");
    char shard[4200];
    snprintf(shard, sizeof shard, "%s/b.safetensors", dir);
    write_text(shard, "short");
    expect_folder_error(dir, "b.safetensors");

    /* An empty folder. */
    dir = tpath("e_empty");
    mkdir(dir, 0755);
    expect_folder_error(dir, "neither");
}

static void test_single_file_folder(void)
{
    const char *dir = tpath("single");
    mkdir(dir, 0755);
    static const char *const names[] = {"w"};
    write_shard(dir, "model.safetensors", names, 1);
    SsError err = {0};
    StCheckpoint *ck = NULL;
    CHECK_OK(st_open(dir, &ck, &err), err);
    if (ck) {
        CHECK(ck->ntensors == 1 && st_find(ck, "w") != NULL);
        st_close(ck);
    }
    /* With an index present, the index wins (and here it is broken). */
    char idx[4200];
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", dir);
    write_text(idx, "{\"weight_map\": {\"w\": \"other.safetensors\"}}");
    expect_folder_error(dir, "other.safetensors");
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/st-unit-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_roundtrip_all_dtypes();
    test_roundtrip_empty();
    test_writer_pieces();
    test_writer_errors();
    test_open_errors();
    test_offsets_past_4gib();
    test_sharded_folder();
    test_sharded_errors();
    test_single_file_folder();
    remove_tree(tmpdir);
    if (failures) {
        fprintf(stderr, "test_safetensors: %d check(s) failed\n", failures);
        return 1;
    }
    printf("test_safetensors: all checks passed\n");
    return 0;
}
