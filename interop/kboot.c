/* knit interop - knitting's process-worker boot payload and lane mapping (see kworker.h). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/error.h"
#include "interop/kworker.h"

/* {version, descriptor: {fd, name?, size, ...}, byteOffset, byteLength} of one buffer. */
static int region_of(json_t *r, const char *what, uint64_t *off, uint64_t *len)
{
    json_t *o = json_object_get(r, "byteOffset"), *l = json_object_get(r, "byteLength");
    if (!json_is_integer(o) || !json_is_integer(l) || json_integer_value(o) < 0
        || json_integer_value(l) < 0)
        return knit__err(KNIT_E_INVAL, "boot payload: %s has no byteOffset/byteLength", what);
    *off = (uint64_t)json_integer_value(o);
    *len = (uint64_t)json_integer_value(l);
    return 0;
}

static int lock_of(json_t *wd, const char *key, knit__kw_lock_t *lk)
{
    json_t *l = json_object_get(wd, key);
    uint64_t len = 0;
    int rc = json_is_object(l) ? 0 : knit__err(KNIT_E_INVAL, "boot payload: no %s", key);
    if (rc == 0)
        rc = region_of(json_object_get(l, "headers"), "headers", &lk->headers, &len);
    if (rc == 0 && len < KNIT__SLOTS * KNIT__KW_SLOT_BYTES)
        rc = knit__err(
            KNIT_E_INVAL, "boot payload: %s headers are %llu bytes", key, (unsigned long long)len);
    if (rc == 0)
        rc = region_of(json_object_get(l, "lockSector"), "lockSector", &lk->sector, &len);
    if (rc == 0)
        rc = region_of(json_object_get(l, "payload"), "payload", &lk->arena, &lk->arena_len);
    json_t *stride = json_object_get(l, "headerSlotStrideU32");
    if (rc == 0 && stride && json_integer_value(stride) != KNIT__KW_SLOT_BYTES / 4)
        rc = knit__err(KNIT_E_UNSUPPORTED,
            "boot payload: %s uses a header stride of %lld words "
            "(knit speaks the split layout, 144)",
            key, (long long)json_integer_value(stride));
    return rc;
}

static int task_names(json_t *wd, knit__kw_boot_t *b)
{
    json_t *names = json_object_get(wd, "names");
    if (!json_is_array(names) || json_array_size(names) > 65536)
        return knit__err(KNIT_E_INVAL, "boot payload: names is not a list of task names");
    b->ntasks = json_array_size(names);
    b->names = calloc(b->ntasks ? b->ntasks : 1, sizeof *b->names);
    if (!b->names)
        return knit__err(KNIT_E_NOMEM, "boot payload: task names");
    for (size_t i = 0; i < b->ntasks; i++) {
        json_t *n = json_array_get(names, i);
        if (!json_is_string(n) || !(b->names[i] = strdup(json_string_value(n))))
            return knit__err(KNIT_E_INVAL, "boot payload: task name %zu is not a string", i);
    }
    return 0;
}

static void timers_of(json_t *wd, knit__kw_boot_t *b)
{
    json_t *t = json_object_get(json_object_get(wd, "workerOptions"), "timers");
    json_t *spin = json_object_get(t, "spinMicroseconds"), *park = json_object_get(t, "parkMs");
    b->spin_us = json_is_number(spin) ? json_number_value(spin) : 50.0 * (double)b->lanes;
    b->park_ms = json_is_number(park) ? json_number_value(park) : 1.0;
}

int knit__kw_parse_boot(const char *text, knit__kw_boot_t *b)
{
    json_error_t jerr;
    memset(b, 0, sizeof *b);
    json_t *j = json_loads(text, 0, &jerr);
    if (!j)
        return knit__err(KNIT_E_INVAL, "boot payload is not JSON: %s", jerr.text);
    json_t *wd = json_object_get(j, "workerData");
    json_t *desc = json_object_get(json_object_get(wd, "sab"), "descriptor");
    int rc = json_integer_value(json_object_get(j, "version")) == 1 && json_is_object(wd)
        ? 0
        : knit__err(KNIT_E_INVAL, "boot payload: version must be 1 with a workerData object");
    json_t *fd = json_object_get(desc, "fd"), *name = json_object_get(desc, "name");
    json_t *size = json_object_get(desc, "size");
    if (rc == 0 && (!json_is_integer(size) || (!json_is_integer(fd) && !json_is_string(name))))
        rc = knit__err(KNIT_E_INVAL,
            "boot payload: the lane descriptor needs a size and an fd "
            "or a name");
    if (rc == 0) {
        b->fd = json_is_integer(fd) ? (int)json_integer_value(fd) : -1;
        snprintf(b->shm_name, sizeof b->shm_name, "%s",
            json_is_string(name) ? json_string_value(name) : "");
        b->size = (uint64_t)json_integer_value(size);
        b->lanes = (uint32_t)json_integer_value(json_object_get(wd, "totalNumberOfThread"));
        b->lanes = b->lanes ? b->lanes : 1;
        json_t *pc = json_object_get(json_object_get(wd, "payloadConfig"), "maxPayloadBytes");
        b->max_payload = json_is_integer(pc) ? (uint64_t)json_integer_value(pc) : 0;
        rc = region_of(json_object_get(wd, "sab"), "sab", &b->signals, &(uint64_t) {0});
    }
    json_t *abort_sab = json_object_get(wd, "abortSignalSAB");
    if (rc == 0 && abort_sab)
        rc = region_of(abort_sab, "abortSignalSAB", &b->abort_off, &b->abort_len);
    if (rc == 0)
        rc = lock_of(wd, "lock", &b->req);
    if (rc == 0)
        rc = lock_of(wd, "returnLock", &b->ret);
    if (rc == 0)
        rc = task_names(wd, b);
    if (rc == 0)
        timers_of(wd, b);
    json_decref(j);
    if (rc < 0)
        knit__kw_boot_free(b);
    return rc;
}

void knit__kw_boot_free(knit__kw_boot_t *b)
{
    for (size_t i = 0; b->names && i < b->ntasks; i++)
        free(b->names[i]);
    free(b->names);
    b->names = NULL;
    b->ntasks = 0;
}

static int in_mapping(const knit__kw_boot_t *b, uint64_t off, uint64_t len, const char *what)
{
    if (off > b->size || len > b->size - off)
        return knit__err(KNIT_E_INVAL,
            "boot payload: %s [%llu, +%llu) is outside the %llu-byte "
            "lane memory",
            what, (unsigned long long)off, (unsigned long long)len, (unsigned long long)b->size);
    return 0;
}

int knit__kw_map(const knit__kw_boot_t *b, uint8_t **base)
{
    int rc = in_mapping(b, b->signals, 192, "signals");
    if (rc == 0)
        rc = in_mapping(b, b->req.headers, KNIT__SLOTS * KNIT__KW_SLOT_BYTES, "request headers");
    if (rc == 0)
        rc = in_mapping(b, b->ret.headers, KNIT__SLOTS * KNIT__KW_SLOT_BYTES, "return headers");
    if (rc == 0)
        rc = in_mapping(b, b->req.sector, 256, "request lock sector");
    if (rc == 0)
        rc = in_mapping(b, b->ret.sector, 256, "return lock sector");
    if (rc == 0)
        rc = in_mapping(b, b->abort_off, b->abort_len, "abort bitmap");
    if (rc == 0)
        rc = in_mapping(b, b->req.arena, b->req.arena_len, "request arena");
    if (rc == 0)
        rc = in_mapping(b, b->ret.arena, b->ret.arena_len, "return arena");
    if (rc < 0)
        return rc;
    int fd = b->fd;
    if (b->shm_name[0]) {
        char path[80];
        snprintf(path, sizeof path, "%s%s", b->shm_name[0] == '/' ? "" : "/", b->shm_name);
        fd = shm_open(path, O_RDWR | O_CLOEXEC, 0);
        if (fd < 0)
            return knit__err(
                KNIT_E_SYS, "shm_open(%s): the worker needs the host's IPC namespace", path);
    }
    void *p = mmap(NULL, b->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int saved = errno;
    if (b->shm_name[0])
        close(fd);
    if (p == MAP_FAILED) {
        errno = saved;
        return knit__err(KNIT_E_SYS, "mmap of the %llu-byte lane memory on fd %d",
            (unsigned long long)b->size, fd);
    }
    *base = p;
    return 0;
}
