/* The Hugging Face sharded layout: model.safetensors.index.json
 *   {"metadata": {...}, "weight_map": {"<tensor>": "<shard file>", ...}}
 * next to its shards. Loads and checks the index, opens each shard once, and checks that the map
 * and the shards agree in both directions. */
#include "formats/st_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

/* A shard name must name a file directly inside the folder, without control bytes (the shard's
 * path starts its own error messages, which must stay one line). */
static bool index_is_plain_name(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return s[0] != '\0' && strchr(s, '/') == NULL && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

/* Loads the index file and checks its shape; fills *root (caller decrefs) and *map. */
static int index_load(const char *index_path, json_t **root, json_t **map, SsError *err)
{
    *root = NULL;
    /* O_NONBLOCK so that a FIFO cannot hang the open; only regular files are read. */
    int fd = open(index_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return ss_err(err, SS_EINPUT, "%s: cannot open: %s", index_path, strerror(errno));
    struct stat sb;
    const char *why = fstat(fd, &sb) != 0 ? strerror(errno)
                      : !S_ISREG(sb.st_mode) ? "not a regular file"
                                             : NULL;
    if (why) {
        close(fd);
        return ss_err(err, SS_EINPUT, "%s: cannot open: %s", index_path, why);
    }
    FILE *fp = fdopen(fd, "rb");
    if (!fp) {
        int e = errno;
        close(fd);
        return ss_err(err, SS_EOUTPUT, "%s: cannot read: %s", index_path, strerror(e));
    }
    json_error_t jerr;
    json_t *j = json_loadf(fp, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    fclose(fp);
    char q[300];
    if (!j)
        return ss_err(err, SS_EINPUT, "%s: not valid JSON: %s (line %d, column %d)", index_path,
                      st_quote(q, sizeof q, jerr.text), jerr.line, jerr.column);
    *root = j;
    if (!json_is_object(j))
        return ss_err(err, SS_EINPUT, "%s: index is %s, not an object", index_path,
                      st_json_kind(j));
    const json_t *meta = json_object_get(j, "metadata");
    if (meta && !json_is_object(meta))
        return ss_err(err, SS_EINPUT, "%s: metadata is %s, not an object", index_path,
                      st_json_kind(meta));
    *map = json_object_get(j, "weight_map");
    if (!*map)
        return ss_err(err, SS_EINPUT, "%s: no weight_map", index_path);
    if (!json_is_object(*map))
        return ss_err(err, SS_EINPUT, "%s: weight_map is %s, not an object", index_path,
                      st_json_kind(*map));
    const char *name;
    json_t *shard;
    json_object_foreach(*map, name, shard) {
        char qn[200];
        if (!json_is_string(shard))
            return ss_err(err, SS_EINPUT, "%s: tensor '%s': weight_map value is %s, not a string",
                          index_path, st_quote(qn, sizeof qn, name), st_json_kind(shard));
        if (!index_is_plain_name(json_string_value(shard)))
            return ss_err(err, SS_EINPUT,
                          "%s: tensor '%s': shard name '%s' is not a plain file name inside the "
                          "folder",
                          index_path, st_quote(qn, sizeof qn, name),
                          st_quote(q, sizeof q, json_string_value(shard)));
    }
    return 0;
}

/* Opens each distinct shard of map once, in order of first mention, into ck->files; fills shards
 * with shard name -> index into ck->files. */
static int index_open_shards(const char *dir, const json_t *map, json_t *shards, StCheckpoint *ck,
                             SsError *err)
{
    const char *name;
    json_t *shard;
    json_object_foreach((json_t *)map, name, shard) {
        const char *s = json_string_value(shard);
        if (!json_object_get(shards, s) &&
            json_object_set_new(shards, s, json_integer((json_int_t)json_object_size(shards))))
            return ss_err(err, SS_EOUTPUT, "%s: out of memory", dir);
    }
    size_t n = json_object_size(shards);
    ck->files = calloc(n ? n : 1, sizeof *ck->files);
    if (!ck->files)
        return ss_err(err, SS_EOUTPUT, "%s: out of memory", dir);
    json_object_foreach(shards, name, shard) {
        size_t len = strlen(dir);
        char *path = NULL;
        if (asprintf(&path, "%s%s%s", dir, (len && dir[len - 1] == '/') ? "" : "/", name) < 0)
            return ss_err(err, SS_EOUTPUT, "%s: out of memory", dir);
        int rc = st_file_open(path, &ck->files[ck->nfiles], err);
        free(path);
        if (rc)
            return rc;
        ck->nfiles++;
    }
    return 0;
}

/* Every map entry must be in its shard; every shard tensor must be in the map. */
static int index_cross_check(const char *index_path, const json_t *map, const json_t *shards,
                             const StCheckpoint *ck, SsError *err)
{
    const char *name;
    json_t *shard;
    char qn[200], qs[200];
    json_object_foreach((json_t *)map, name, shard) {
        const char *s = json_string_value(shard);
        const StFile *want = ck->files[json_integer_value(json_object_get(shards, s))];
        const StTensor *t = st_find(ck, name);
        if (!t)
            return ss_err(err, SS_EINPUT,
                          "%s: tensor '%s': weight_map puts it in shard %s, which does not hold "
                          "it",
                          index_path, st_quote(qn, sizeof qn, name), st_quote(qs, sizeof qs, s));
        if (t->file != want->path)
            return ss_err(err, SS_EINPUT,
                          "%s: tensor '%s': weight_map puts it in shard %s but it is in %s",
                          index_path, st_quote(qn, sizeof qn, name), st_quote(qs, sizeof qs, s),
                          t->file);
    }
    for (size_t i = 0; i < ck->ntensors; i++) {
        const StTensor *t = ck->tensors[i];
        if (!json_object_get(map, t->name))
            return ss_err(err, SS_EINPUT,
                          "%s: tensor '%s': held by shard %s but missing from the weight_map",
                          index_path, st_quote(qn, sizeof qn, t->name), t->file);
    }
    return 0;
}

int st_index_open(const char *dir, const char *index_path, StCheckpoint *ck, SsError *err)
{
    json_t *root, *map = NULL;
    json_t *shards = json_object(); /* shard name -> index into ck->files */
    if (!shards)
        return ss_err(err, SS_EOUTPUT, "%s: out of memory", index_path);
    int rc = index_load(index_path, &root, &map, err);
    if (!rc)
        rc = index_open_shards(dir, map, shards, ck, err);
    if (!rc)
        rc = st_checkpoint_collect(ck, err);
    if (!rc)
        rc = index_cross_check(index_path, map, shards, ck, err);
    json_decref(shards);
    json_decref(root);
    return rc;
}
