/* The bounded whole-file read; see eie/file.h. */
#include "eie/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What a path is when it is not a regular file, for the message that refuses it. */
static const char *file_kind(mode_t mode)
{
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISCHR(mode) || S_ISBLK(mode))
        return "a device";
    if (S_ISSOCK(mode))
        return "a socket";
    return "not a plain file";
}

static eie_status_t over_limit(const char *name, uint64_t max, eie_error_t *err)
{
    return eie_error_set(err, EIE_STATUS_LIMIT, "%s is larger than the %llu bytes allowed", name,
                         (unsigned long long)max);
}

/* The checks every read ends with; takes data (freed on error). */
static eie_status_t finish(const char *name, unsigned flags, uint8_t *data, size_t len,
                           uint8_t **data_out, size_t *len_out, eie_error_t *err)
{
    data[len] = '\0';
    if ((flags & EIE_FILE_TEXT) && memchr(data, '\0', len) != NULL) {
        free(data);
        return eie_error_set(err, EIE_STATUS_BAD_FORMAT, "%s: binary content, not text", name);
    }
    *data_out = data;
    *len_out = len;
    return EIE_STATUS_OK;
}

eie_status_t eie_file_read_stream(FILE *f, const char *name, uint64_t max, unsigned flags,
                                  uint8_t **data_out, size_t *len_out, eie_error_t *err)
{
    /* the size is not known ahead: grow to max + 1 bytes, one more than allowed, to see "over" */
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            if ((uint64_t)cap > max) {
                free(buf);
                return over_limit(name, max, err);
            }
            uint64_t ncap = cap != 0 ? (uint64_t)cap * 2 : 65536;
            if (ncap > max + 1)
                ncap = max + 1;
            uint8_t *nb = ncap < SIZE_MAX ? realloc(buf, (size_t)ncap + 1) : NULL;
            if (nb == NULL) {
                free(buf);
                return eie_error_set(err, EIE_STATUS_NO_MEMORY, "%s: out of memory", name);
            }
            buf = nb;
            cap = (size_t)ncap;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            if (ferror(f)) {
                free(buf);
                return eie_error_set(err, EIE_STATUS_IO, "%s: read error: %s", name,
                                     strerror(errno));
            }
            break;
        }
        if ((uint64_t)len > max) {
            free(buf);
            return over_limit(name, max, err);
        }
    }
    return finish(name, flags, buf, len, data_out, len_out, err);
}

/* A regular file's size is known: one allocation, one read. */
static eie_status_t read_regular(FILE *f, const char *path, uint64_t size, uint64_t max,
                                 unsigned flags, uint8_t **data_out, size_t *len_out,
                                 eie_error_t *err)
{
    if (size > max)
        return over_limit(path, max, err);
    size_t len = (size_t)size;
    uint8_t *data = malloc(len + 1);
    if (data == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "%s: out of memory for %zu bytes", path,
                             len);
    if (fread(data, 1, len, f) != len) {
        free(data);
        return eie_error_set(err, EIE_STATUS_IO, "%s: short read", path);
    }
    return finish(path, flags, data, len, data_out, len_out, err);
}

eie_status_t eie_file_read_ex(const char *path, uint64_t max, unsigned flags, uint8_t **data_out,
                              size_t *len_out, eie_error_t *err)
{
    /* O_NONBLOCK: opening a FIFO must not wait for a writer when it is to be refused anyway */
    int fd = open(path, O_RDONLY | O_CLOEXEC | ((flags & EIE_FILE_STREAMS) ? 0 : O_NONBLOCK));
    if (fd < 0)
        return eie_error_set(err, errno == ENOENT ? EIE_STATUS_NOT_FOUND : EIE_STATUS_IO,
                             "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return eie_error_set(err, EIE_STATUS_IO, "%s: %s", path, strerror(e));
    }
    bool regular = S_ISREG(sb.st_mode);
    bool stream = S_ISFIFO(sb.st_mode) || S_ISCHR(sb.st_mode) || S_ISSOCK(sb.st_mode);
    if (!regular && !(stream && (flags & EIE_FILE_STREAMS))) {
        close(fd);
        return eie_error_set(err, EIE_STATUS_IO, "%s: not a regular file (%s)", path,
                             file_kind(sb.st_mode));
    }
    FILE *f = fdopen(fd, "rb");
    if (f == NULL) {
        int e = errno;
        close(fd);
        return eie_error_set(err, EIE_STATUS_IO, "%s: cannot open: %s", path, strerror(e));
    }
    eie_status_t st =
        regular ? read_regular(f, path, (uint64_t)sb.st_size, max, flags, data_out, len_out, err)
                : eie_file_read_stream(f, path, max, flags, data_out, len_out, err);
    fclose(f);
    return st;
}

eie_status_t eie_file_read(const char *path, uint64_t max, uint8_t **data_out, size_t *len_out,
                           eie_error_t *err)
{
    return eie_file_read_ex(path, max, 0, data_out, len_out, err);
}
