/* files.c: what a killed import or export left behind. */
#define _GNU_SOURCE
#include "convert/convert_int.h"

#include <dirent.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/zfile.h"

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
        zfile_rm_rf(full, NULL);
        removed++;
    }
    closedir(dp);
    return removed;
}
