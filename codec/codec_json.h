/*
 * knit codec - the JSON-shaped payloads of the codec: error values (tag 24) and
 * ProcessSharedBuffer descriptors in knitting's external-payload form (tags 44/45, 49-52),
 * built and parsed with jansson.
 */
#ifndef KNIT_CODEC_CODEC_JSON_H
#define KNIT_CODEC_CODEC_JSON_H

#include <stddef.h>

#include "knit/value.h"

/* {"name":..,"message":..,"cause":..,"causeKind":..}; *text is malloc'd, not NUL-counted. */
/* Codec id of a ProcessSharedBuffer in the external-payload JSON form. */
#define KNIT__PSB_CODEC_ID "knitting.processSharedBuffer"

int knit__error_to_json(const knit_error_value_t *e, char **text, size_t *len);

/* A malloc'd, NUL-terminated copy of n bytes of text (which may hold NULs), or NULL. */
char *knit__text_dup(const char *s, size_t n);
int knit__error_from_json(const char *text, size_t len, knit_error_value_t **out);

/* ["knitting.processSharedBuffer", {"version":1,"fd":..,"name":..,"size":..,
 *  "byteOffset":..,"byteLength":..}] */
int knit__psb_to_json(const knit_psb_desc_t *d, char **text, size_t *len);
int knit__psb_from_json(const char *text, size_t len, knit_psb_desc_t **out);

#endif
