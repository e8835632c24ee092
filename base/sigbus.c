/* knit base - the SIGBUS guard (base/sigbus.h). */
#define _GNU_SOURCE
#include "base/sigbus.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "base/error.h"

#define KNIT__SIGBUS_GUARDS 1024u

/* A slot is free while `start` is 0. The registering thread writes `len` and clears `hit`,
 * then publishes `start` with a release store; the handler acquires `start` before it reads
 * `len`, so it never sees a range half made. */
struct knit__sigbus_guard {
    _Atomic uintptr_t start;
    _Atomic size_t len;
    _Atomic bool hit;
};

static knit__sigbus_guard_t guards[KNIT__SIGBUS_GUARDS];
static struct sigaction previous;
static pthread_once_t installed = PTHREAD_ONCE_INIT;
static int install_error;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
    uintptr_t a = (uintptr_t)si->si_addr;
    for (unsigned i = 0; i < KNIT__SIGBUS_GUARDS; i++) {
        /* acquire: pairs with the release store that published the range */
        uintptr_t start = atomic_load_explicit(&guards[i].start, memory_order_acquire);
        size_t len = atomic_load_explicit(&guards[i].len, memory_order_relaxed);
        if (!start || a < start || a - start >= len)
            continue;
        /* zeros over the whole range: the faulting access and every later one complete */
        mmap((void *)start, len, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS,
            -1, 0);
        atomic_store_explicit(&guards[i].hit, true, memory_order_relaxed);
        return;
    }
    /* not ours */
    if ((previous.sa_flags & SA_SIGINFO) && previous.sa_sigaction) {
        previous.sa_sigaction(sig, si, uc);
    } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        previous.sa_handler(sig);
    } else {
        /* the default action: returning re-runs the access, which now ends the process */
        signal(SIGBUS, SIG_DFL);
    }
}

static void install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGBUS, &sa, &previous) < 0)
        install_error = errno;
}

int knit__sigbus_guard(void *addr, size_t len, knit__sigbus_guard_t **out)
{
    pthread_once(&installed, install);
    if (install_error)
        return knit__err(KNIT_E_SYS, "installing the SIGBUS guard: %s", strerror(install_error));
    for (unsigned i = 0; i < KNIT__SIGBUS_GUARDS; i++) {
        uintptr_t expected = 0;
        /* claim the slot with a placeholder start: 1 with the length of the range last held
         * there at most, which lies in page 0 and so matches no fault the kernel reports for
         * a mapping */
        if (!atomic_compare_exchange_strong_explicit(
                &guards[i].start, &expected, 1, memory_order_acquire, memory_order_relaxed))
            continue;
        atomic_store_explicit(&guards[i].hit, false, memory_order_relaxed);
        atomic_store_explicit(&guards[i].len, len, memory_order_relaxed);
        atomic_store_explicit(&guards[i].start, (uintptr_t)addr, memory_order_release);
        *out = &guards[i];
        return 0;
    }
    return knit__err(KNIT_E_FULL, "all %u SIGBUS guards are in use", KNIT__SIGBUS_GUARDS);
}

void knit__sigbus_unguard(knit__sigbus_guard_t *g)
{
    if (g)
        atomic_store_explicit(&g->start, 0, memory_order_release);
}

bool knit__sigbus_hit(const knit__sigbus_guard_t *g)
{
    return g && atomic_load_explicit(&g->hit, memory_order_relaxed);
}
