/* knit transports - the transports by id and by name: the one file that knows them all. */
#include <string.h>

#include "base/error.h"
#include "transports/link.h"
#include "transports/shm/link.h"
#include "transports/shm/seq/link.h"
#include "transports/stream/link.h"

/* Indexed by knit_transport_t. */
static const knit__link_ops_t *const transports[] = {
    [KNIT_TRANSPORT_KNIT] = &knit__shm_link_ops,
    [KNIT_TRANSPORT_PIPE] = &knit__pipe_link_ops,
    [KNIT_TRANSPORT_UNIX] = &knit__unix_link_ops,
    [KNIT_TRANSPORT_SEQPACKET] = &knit__seqpacket_link_ops,
    [KNIT_TRANSPORT_TCP] = &knit__tcp_link_ops,
    [KNIT_TRANSPORT_SEQ] = &knit__seq_link_ops,
};

#define NTRANSPORTS (sizeof transports / sizeof transports[0])

const knit__link_ops_t *knit__transport_ops(knit_transport_t t)
{
    return (unsigned)t < NTRANSPORTS ? transports[t] : NULL;
}

const char *knit_transport_name(knit_transport_t t)
{
    return (unsigned)t < NTRANSPORTS ? transports[t]->name : "unknown";
}

int knit_transport_parse(const char *name, knit_transport_t *out)
{
    for (unsigned i = 0; name && i < NTRANSPORTS; i++)
        if (!strcmp(name, transports[i]->name)) {
            *out = (knit_transport_t)i;
            return 0;
        }
    return knit__err(KNIT_E_INVAL, "unknown transport '%s' (knit, pipe, unix, seqpacket, tcp, seq)",
        name ? name : "(null)");
}
