/* The atomic-output convention every writer here follows: write "<path>.tmp.<pid>" in the same
 * folder, fsync it, rename it over <path>, then sync the folder; remove the temporary on failure.
 * These are the two pieces the writers share. */
#ifndef SS_ATOMIC_FILE_H
#define SS_ATOMIC_FILE_H

/* "<path>.tmp.<pid>", malloc'd (caller frees); NULL when out of memory. */
char *atomic_tmp_path(const char *path);

/* Makes a rename into path durable by syncing the folder holding it; best effort (some file
 * systems refuse fsync on folders, and the data itself is already synced). */
void atomic_sync_dir(const char *path);

#endif
