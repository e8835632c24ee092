/* knit transports/stream - the descriptors of one lane for each message transport (pair.c). */
#ifndef KNIT_TRANSPORTS_STREAM_PAIR_H
#define KNIT_TRANSPORTS_STREAM_PAIR_H

/* pair() of each message transport (see knit__link_ops_t in transports/link.h). */
int knit__pipe_pair(int host[2], int worker[2]);
int knit__unix_pair(int host[2], int worker[2]);
int knit__seqpacket_pair(int host[2], int worker[2]);
int knit__tcp_pair(int host[2], int worker[2]);

/* knit__tcp_pair's second half, on a listening loopback socket `ls` (not closed): connect to it
 * and accept that very connection. Anybody on the machine can connect to a listening port; a
 * connection that is not the host's own is closed, never handed to the worker. */
int knit__tcp_pair_on(int ls, int host[2], int worker[2]);

#endif
