/* files.c: folder helpers shared by import and export. */
#define _GNU_SOURCE
#include "convert/convert_int.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int remove_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(p);
    return 0;
}

void zfs__remove_tree(const char *path)
{
    nftw(path, remove_entry, 32, FTW_DEPTH | FTW_PHYS);
}

int zfs__dir_is_empty(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int empty = 1;
    if (!d)
        return 0;
    while (empty && (e = readdir(d)) != NULL)
        empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
    closedir(d);
    return empty;
}

void zfs__fsync_parent(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    int fd = open(dirname(buf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int zfs__remove_leftovers(const char *path, const char *marker, zfs_in_use_fn in_use)
{
    char dir[PATH_MAX], base[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir)
        return 0;
    snprintf(base, sizeof base, "%s", path);
    const char *d = dirname(dir), *b = basename(base);
    size_t blen = strlen(b), mlen = strlen(marker);
    DIR *dp = opendir(d);
    if (!dp)
        return 0;
    int removed = 0;
    time_t now = time(NULL);
    for (struct dirent *e; (e = readdir(dp)) != NULL;) {
        if (strncmp(e->d_name, b, blen) || strncmp(e->d_name + blen, marker, mlen))
            continue;
        const char *suffix = e->d_name + blen + mlen;
        char full[PATH_MAX];
        struct stat st;
        if (!*suffix || snprintf(full, sizeof full, "%s/%s", d, e->d_name) >= (int)sizeof full ||
            lstat(full, &st) < 0 || now - st.st_mtime < ZFS_STALE_SECONDS || in_use(full, suffix))
            continue;
        zfs__remove_tree(full);
        removed++;
    }
    closedir(dp);
    return removed;
}
