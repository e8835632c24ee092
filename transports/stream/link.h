/* knit transports/stream - the message transports' link tables (link.c). */
#ifndef KNIT_TRANSPORTS_STREAM_LINK_H
#define KNIT_TRANSPORTS_STREAM_LINK_H

#include "transports/link.h"

extern const knit__link_ops_t knit__pipe_link_ops;
extern const knit__link_ops_t knit__unix_link_ops;
extern const knit__link_ops_t knit__seqpacket_link_ops;
extern const knit__link_ops_t knit__tcp_link_ops;

#endif
