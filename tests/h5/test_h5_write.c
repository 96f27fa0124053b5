/* Unit tests of formats/h5_write: a failing HDF5 call becomes an SsError naming the file and the
 * object, aborting or a failed close removes the temporary file and never leaves a file at the
 * final path, and a good file reads back through the HDF5 library. Exits 0 or 1. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/h5_write.h"

static int failures;

#define CHECK(cond, ...)                                          \
    do {                                                          \
        if (!(cond)) {                                            \
            fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);       \
            fprintf(stderr, __VA_ARGS__);                         \
            fputc('\n', stderr);                                  \
            failures++;                                           \
        }                                                         \
    } while (0)

/* Number of entries in dir other than . and .. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void test_duplicate_dataset(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/dup.h5", dir);
    SsError err = {0};
    H5Out *w;
    hid_t g;
    uint64_t v[3] = {1, 2, 3};
    hsize_t dims[1] = {3};
    CHECK(h5w_open(path, &w, &err) == 0, "open: %s", err.msg);
    CHECK(h5w_group(w, h5w_root(w), "g", &g, &err) == 0, "group: %s", err.msg);
    CHECK(h5w_dataset(w, g, "x", H5W_U64, 1, dims, v, &err) == 0, "dataset: %s", err.msg);
    int rc = h5w_dataset(w, g, "x", H5W_U64, 1, dims, v, &err);
    CHECK(rc == SS_EOUTPUT, "duplicate dataset: rc %d", rc);
    CHECK(strstr(err.msg, path) && strstr(err.msg, "'/g/x'"),
          "message should name the file and the dataset: %s", err.msg);
    CHECK(count_entries(dir) == 1, "the temporary file should exist before abort");
    h5w_abort(w); /* with the group still open */
    CHECK(count_entries(dir) == 0, "abort left %d files", count_entries(dir));
}

static void test_close_with_open_group(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/open.h5", dir);
    SsError err = {0};
    H5Out *w;
    hid_t g;
    CHECK(h5w_open(path, &w, &err) == 0, "open: %s", err.msg);
    CHECK(h5w_group(w, h5w_root(w), "g", &g, &err) == 0, "group: %s", err.msg);
    int rc = h5w_close(w, &err);
    CHECK(rc == SS_EOUTPUT, "close with an open group: rc %d", rc);
    CHECK(strstr(err.msg, path) != NULL, "message should name the file: %s", err.msg);
    CHECK(count_entries(dir) == 0, "a failed close left %d files", count_entries(dir));
}

static void test_missing_folder(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/no/such/x.h5", dir);
    SsError err = {0};
    H5Out *w = (H5Out *)1;
    int rc = h5w_open(path, &w, &err);
    CHECK(rc == SS_EOUTPUT && w == NULL, "missing folder: rc %d", rc);
    CHECK(strstr(err.msg, path) && strstr(err.msg, "No such file"),
          "message should name the file and errno's reason: %s", err.msg);
}

static void test_round_trip(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/ok.h5", dir);
    SsError err = {0};
    H5Out *w;
    double v[6] = {0.5, 1, 2, 3, 4, 5};
    hsize_t dims[2] = {2, 3}, none[1] = {0};
    const char *s[2] = {"a", "\xc3\xbc"};
    CHECK(h5w_open(path, &w, &err) == 0, "open: %s", err.msg);
    hid_t root = h5w_root(w);
    CHECK(h5w_dataset(w, root, "m", H5W_F64, 2, dims, v, &err) == 0, "%s", err.msg);
    CHECK(h5w_dataset(w, root, "empty", H5W_U64, 1, none, NULL, &err) == 0, "%s", err.msg);
    CHECK(h5w_dataset_strings(w, root, "s", 2, s, &err) == 0, "%s", err.msg);
    CHECK(h5w_attr_string(w, root, "schema", "x/1", &err) == 0, "%s", err.msg);
    CHECK(h5w_attr_strings(w, root, "none", 0, NULL, &err) == 0, "%s", err.msg);
    CHECK(h5w_attr_array(w, root, "nothing", H5W_F64, 0, NULL, &err) == 0, "%s", err.msg);
    CHECK(h5w_close(w, &err) == 0, "close: %s", err.msg);
    CHECK(count_entries(dir) == 1, "expected only ok.h5, found %d entries", count_entries(dir));

    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECK(f >= 0, "H5Fopen of the written file failed");
    if (f < 0)
        return;
    hid_t d = H5Dopen2(f, "m", H5P_DEFAULT);
    double back[6] = {0};
    CHECK(d >= 0 && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0,
          "read m");
    CHECK(memcmp(back, v, sizeof v) == 0, "m differs after the round trip");
    hid_t dcpl = H5Dget_create_plist(d);
    CHECK(H5Pget_layout(dcpl) == H5D_CHUNKED && H5Pget_nfilters(dcpl) == 2,
          "m should be chunked with two filters");
    H5Pclose(dcpl);
    H5Dclose(d);
    H5Fclose(f);
    unlink(path);
}

int main(void)
{
    char dir[] = "/tmp/ss-h5w-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    test_duplicate_dataset(dir);
    test_close_with_open_group(dir);
    test_missing_folder(dir);
    test_round_trip(dir);
    rmdir(dir);
    printf("h5_write: %s\n", failures ? "FAIL" : "ok");
    return failures ? 1 : 0;
}
