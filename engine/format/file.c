/* The bounded whole-file read; see eie/file.h. */
#include "eie/file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

eie_status_t eie_file_read(const char *path, uint64_t max, uint8_t **data_out, size_t *len_out,
                           eie_error_t *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return eie_error_set(err, errno == ENOENT ? EIE_STATUS_NOT_FOUND : EIE_STATUS_IO,
                             "%s: %s", path, strerror(errno));
    eie_status_t st;
    uint8_t *data = NULL;
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = eie_error_set(err, EIE_STATUS_IO, "%s: not a regular file", path);
        goto done;
    }
    if ((uint64_t)sb.st_size > max) {
        st = eie_error_set(err, EIE_STATUS_LIMIT, "%s: %lld bytes is over the limit of %llu",
                           path, (long long)sb.st_size, (unsigned long long)max);
        goto done;
    }
    size_t len = (size_t)sb.st_size;
    data = malloc(len + 1);
    if (data == NULL) {
        st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "%s: out of memory for %zu bytes", path,
                           len);
        goto done;
    }
    if (fread(data, 1, len, f) != len) {
        st = eie_error_set(err, EIE_STATUS_IO, "%s: short read", path);
        goto done;
    }
    data[len] = '\0';
    *data_out = data;
    *len_out = len;
    data = NULL;
    st = EIE_STATUS_OK;
done:
    free(data);
    fclose(f);
    return st;
}
