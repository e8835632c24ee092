/* knit codec - ProcessSharedBuffer (include/knit/shared_buffer.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/sigbus.h"
#include "codec/value_internal.h"
#include "knit/shared_buffer.h"

struct knit_psb {
    int fd;
    void *map;
    size_t size;
    knit__sigbus_guard_t *guard; /* named: another process can shrink it (no seals) */
    char name[32];
};

#define PSB_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

/* Another process's buffer is mapped whole here: it must be sealed against shrinking. */
static int check_sealed(int fd, const char *path)
{
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals >= 0 && (seals & F_SEAL_SHRINK))
        return 0;
    int rc = knit__err(KNIT_E_INVAL,
        "%s is not sealed against shrinking: its owner could truncate it under this mapping; "
        "share buffers made by knit_psb_create (or by name)",
        path);
    close(fd);
    return rc;
}

/* The descriptors of the buffers this process holds, with the file each one is, so a number
 * reused for another file after a close does not pass. */
typedef struct held {
    int fd;
    dev_t dev;
    ino_t ino;
} held_t;

static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static held_t *held;
static size_t nheld, held_cap;

static int hold(int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return knit__err(KNIT_E_SYS, "fstat of a shared buffer: %s", strerror(errno));
    pthread_mutex_lock(&held_lock);
    int rc = 0;
    if (nheld == held_cap) {
        size_t cap = held_cap ? held_cap * 2 : 16;
        held_t *h = realloc(held, cap * sizeof *h);
        if (h) {
            held = h;
            held_cap = cap;
        } else {
            rc = knit__err(KNIT_E_NOMEM, "the table of shared buffers");
        }
    }
    if (rc == 0)
        held[nheld++] = (held_t) {fd, st.st_dev, st.st_ino};
    pthread_mutex_unlock(&held_lock);
    return rc;
}

static void unhold(int fd)
{
    pthread_mutex_lock(&held_lock);
    for (size_t i = 0; i < nheld; i++)
        if (held[i].fd == fd) {
            held[i] = held[--nheld];
            break;
        }
    pthread_mutex_unlock(&held_lock);
}

bool knit__psb_fd_is_held(int fd)
{
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return false;
    bool found = false;
    pthread_mutex_lock(&held_lock);
    for (size_t i = 0; i < nheld && !found; i++)
        found = held[i].fd == fd && held[i].dev == st.st_dev && held[i].ino == st.st_ino;
    pthread_mutex_unlock(&held_lock);
    return found;
}

bool knit__psb_pid_is_ours(int32_t pid)
{
    if (pid == getpid())
        return true;
    char path[64], line[128];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    long tgid = -1;
    while (f && tgid < 0 && fgets(line, sizeof line, f))
        if (sscanf(line, "Tgid: %ld", &tgid) != 1)
            tgid = -1;
    if (f)
        fclose(f);
    return tgid == (long)getpid();
}

static bool valid_name(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n < 2 || n > 31 || name[0] != '/')
        return false;
    for (size_t i = 1; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.'
                || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* Map fd (taking it) into a new buffer object. */
static int adopt(int fd, const char *name, knit_psb_t **out)
{
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size <= 0) {
        int rc = knit__err(KNIT_E_INVAL, "shared buffer %s has no size", name ? name : "(fd)");
        close(fd);
        return rc;
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        int rc = knit__err(KNIT_E_SYS, "mmap of a %lld-byte shared buffer: %s",
            (long long)st.st_size, strerror(errno));
        close(fd);
        return rc;
    }
    knit_psb_t *b = calloc(1, sizeof *b);
    if (!b) {
        munmap(m, (size_t)st.st_size);
        close(fd);
        return knit__err(KNIT_E_NOMEM, "shared buffer");
    }
    b->fd = fd;
    b->map = m;
    b->size = (size_t)st.st_size;
    int rc = name ? 0 : hold(fd);
    if (rc < 0) {
        b->name[0] = 0;
        munmap(m, b->size);
        close(fd);
        free(b);
        return rc;
    }
    if (name) {
        snprintf(b->name, sizeof b->name, "%s", name);
        /* a named object cannot be sealed: if another process shrinks it, reads past its
         * new end see zeros instead of ending this process with SIGBUS */
        rc = knit__sigbus_guard(m, b->size, &b->guard);
        if (rc < 0) {
            knit_psb_close(b);
            return rc;
        }
    }
    *out = b;
    return 0;
}

int knit_psb_create(size_t size, knit_psb_t **out)
{
    if (!out || size == 0)
        return knit__err(KNIT_E_INVAL, "knit_psb_create: size must be > 0");
    int fd = memfd_create("knit-psb", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return knit__err(KNIT_E_SYS, "memfd_create: %s", strerror(errno));
    if (ftruncate(fd, (off_t)size) < 0) {
        int rc = knit__err(KNIT_E_SYS, "ftruncate to %zu bytes: %s", size, strerror(errno));
        close(fd);
        return rc;
    }
    /* Every process that opens the buffer maps all of it: nobody may change its size under
     * another's mapping (a shrink would fault the other side's accesses). */
    if (fcntl(fd, F_ADD_SEALS, PSB_SEALS) < 0) {
        int rc = knit__err(KNIT_E_SYS, "sealing a shared buffer's size: %s", strerror(errno));
        close(fd);
        return rc;
    }
    return adopt(fd, NULL, out);
}

int knit_psb_create_named(const char *name, size_t size, knit_psb_t **out)
{
    if (!out || size == 0 || !valid_name(name))
        return knit__err(KNIT_E_INVAL,
            "knit_psb_create_named: the name must be '/' and 1-30 of "
            "[A-Za-z0-9._-], the size > 0");
    int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600); /* close-on-exec */
    if (fd < 0)
        return knit__err(KNIT_E_SYS, "shm_open(%s, O_CREAT|O_EXCL): %s", name, strerror(errno));
    if (ftruncate(fd, (off_t)size) < 0) {
        int rc = knit__err(KNIT_E_SYS, "ftruncate to %zu bytes: %s", size, strerror(errno));
        close(fd);
        shm_unlink(name);
        return rc;
    }
    int rc = adopt(fd, name, out);
    if (rc < 0)
        shm_unlink(name);
    return rc;
}

int knit_psb_open_named(const char *name, knit_psb_t **out)
{
    if (!out || !valid_name(name))
        return knit__err(KNIT_E_INVAL, "knit_psb_open_named: bad name");
    int fd = shm_open(name, O_RDWR, 0);
    if (fd < 0)
        return knit__err(KNIT_E_SYS, "shm_open(%s): %s", name, strerror(errno));
    return adopt(fd, name, out);
}

int knit_psb_open(const knit_psb_desc_t *d, knit_psb_t **out)
{
    if (!d || !out)
        return knit__err(KNIT_E_INVAL, "knit_psb_open: NULL argument");
    if (d->name[0])
        return knit_psb_open_named(d->name, out);
    if (d->fd < 0)
        return knit__err(KNIT_E_INVAL, "descriptor has neither an fd nor a name");
    int fd;
    if (d->pid == 0 || d->pid == getpid()) {
        fd = fcntl(d->fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
            return knit__err(KNIT_E_SYS, "fd %d of this process: %s", d->fd, strerror(errno));
    } else {
        if (knit__psb_pid_is_ours(d->pid))
            return knit__err(KNIT_E_INVAL,
                "descriptor names fd %d of pid %d, a thread of this process: refused (a buffer "
                "of this process is described with pid 0)",
                (int)d->fd, (int)d->pid);
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)d->pid, (int)d->fd);
        fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0)
            return knit__err(KNIT_E_SYS,
                "%s: %s (the owner must keep the buffer open; across PID "
                "namespaces use a named buffer)",
                path, strerror(errno));
        int rc = check_sealed(fd, path);
        if (rc < 0)
            return rc;
    }
    return adopt(fd, NULL, out);
}

void *knit_psb_data(const knit_psb_t *b)
{
    return b->map;
}

size_t knit_psb_size(const knit_psb_t *b)
{
    return b->size;
}

const char *knit_psb_name(const knit_psb_t *b)
{
    return b->name;
}

int knit_psb_describe(const knit_psb_t *b, uint64_t offset, uint64_t length, knit_psb_desc_t *out)
{
    if (!b || !out || offset > b->size || length > b->size - offset)
        return knit__err(KNIT_E_INVAL, "range [%llu, +%llu) is outside the %zu-byte buffer",
            (unsigned long long)offset, (unsigned long long)length, b ? b->size : 0);
    memset(out, 0, sizeof *out);
    out->fd = b->name[0] ? -1 : b->fd;
    snprintf(out->name, sizeof out->name, "%s", b->name);
    out->size = b->size;
    out->offset = offset;
    out->length = length;
    return 0;
}

int knit_psb_view(
    const knit_psb_t *b, uint64_t offset, uint64_t length, knit_elem_t elem, knit_psb_view_t *out)
{
    size_t es = knit_elem_size(elem);
    if (!b || !out || es == 0)
        return knit__err(KNIT_E_INVAL, "knit_psb_view: unknown element type");
    if (offset > b->size || length > b->size - offset)
        return knit__err(KNIT_E_INVAL, "view [%llu, +%llu) is outside the %zu-byte buffer",
            (unsigned long long)offset, (unsigned long long)length, b->size);
    if (offset % es || length % es)
        return knit__err(KNIT_E_INVAL, "a %s view needs offset and length multiples of %zu",
            knit_elem_name(elem), es);
    out->data = (uint8_t *)b->map + offset;
    out->count = (size_t)(length / es);
    out->elem = elem;
    return 0;
}

int knit_psb_desc_view(
    const knit_psb_t *b, const knit_psb_desc_t *d, knit_elem_t elem, knit_psb_view_t *out)
{
    return knit_psb_view(b, d->offset, d->length, elem, out);
}

int knit_psb_unlink(knit_psb_t *b)
{
    if (!b || !b->name[0])
        return knit__err(KNIT_E_INVAL, "knit_psb_unlink: the buffer has no name");
    if (shm_unlink(b->name) < 0)
        return knit__err(KNIT_E_SYS, "shm_unlink(%s): %s", b->name, strerror(errno));
    return 0;
}

void knit_psb_close(knit_psb_t *b)
{
    if (!b)
        return;
    knit__sigbus_unguard(b->guard);
    if (!b->name[0])
        unhold(b->fd);
    munmap(b->map, b->size);
    close(b->fd);
    free(b);
}
