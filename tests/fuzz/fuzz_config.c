/*
 * Fuzz target: eied's config parser (daemon/config.c) on arbitrary text.
 * A config that parses is printed the way --check-config prints it, and the
 * printout must parse again and print the same (printing is a fixed point),
 * so what eied prints is always a config eied accepts.
 */
#include <string.h>

#include "config.h"
#include "fuzz.h"

static char *print(const eied_config_t *cfg, size_t *len_out)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len_out);
    FUZZ_CHECK(f != NULL, "open_memstream");
    eied_config_print(cfg, f);
    FUZZ_CHECK(fclose(f) == 0, "memstream");
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static eied_config_t cfg, again; /* about 70 KiB each: not on the stack */
    eie_error_t err;
    eied_config_defaults(&cfg);
    err.msg[0] = '\0';
    if (eied_config_load_text(&cfg, (const char *)data, size, "fuzz.conf", &err) !=
        EIE_STATUS_OK) {
        FUZZ_CHECK(err.msg[0] != '\0', "a refusal must say why");
        return 0;
    }
    size_t len1, len2;
    char *text1 = print(&cfg, &len1);
    eied_config_defaults(&again);
    bool ok = eied_config_load_text(&again, text1, len1, "printed.conf", &err) == EIE_STATUS_OK;
    FUZZ_CHECK(ok, "the printed config does not parse: %s\n--- printed:\n%s", err.msg, text1);
    char *text2 = print(&again, &len2);
    FUZZ_CHECK(len1 == len2 && memcmp(text1, text2, len1) == 0,
               "printing is not a fixed point\n--- first:\n%s\n--- second:\n%s", text1, text2);
    free(text1);
    free(text2);
    return 0;
}
