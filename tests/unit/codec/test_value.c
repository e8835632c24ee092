/*
 * Public value helpers: knit_value_validate (UTF-8 and JSON checks with the failing position),
 * big-integer normalisation, equality, lifetime of owned, borrowed, shared and moved values,
 * and the element and kind tables.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "knit/error.h"
#include "knit/value.h"

/* Validate `v`, expect KNIT_E_INVAL and a message containing `what` and "at byte <pos>". */
static void expect_invalid_at(knit_value_t v, const char *what, long pos)
{
    assert_int_equal(knit_value_validate(&v), KNIT_E_INVAL);
    const char *msg = knit_errmsg();
    if (!strstr(msg, what))
        print_error("message \"%s\" lacks \"%s\"\n", msg, what);
    assert_non_null(strstr(msg, what));
    char at[48];
    snprintf(at, sizeof at, "at byte %ld", pos);
    if (!strstr(msg, at))
        print_error("message \"%s\" lacks \"%s\"\n", msg, at);
    assert_non_null(strstr(msg, at));
}

static void expect_bad_utf8(const char *s, size_t len, long pos)
{
    expect_invalid_at(knit_v_strn(s, len), "not valid UTF-8", pos);
}

#define BAD_UTF8(lit, pos) expect_bad_utf8(lit, sizeof(lit) - 1, pos)

/* --- UTF-8 ------------------------------------------------------------------------------------ */

static void test_validate_accepts_valid_utf8(void **state)
{
    (void)state;
    const char *ok[] = {
        "",
        "plain ascii",
        "caf\xc3\xa9",            /* U+00E9 */
        "\xc2\x80",               /* U+0080, smallest 2-byte */
        "\xdf\xbf",               /* U+07FF */
        "\xe0\xa0\x80",           /* U+0800, smallest 3-byte */
        "\xed\x9f\xbf",           /* U+D7FF, just below the surrogates */
        "\xee\x80\x80",           /* U+E000, just above them */
        "\xef\xbf\xbf",           /* U+FFFF */
        "\xf0\x90\x80\x80",       /* U+10000, smallest 4-byte */
        "\xf0\x9f\x98\x80 smile", /* U+1F600 */
        "\xf4\x8f\xbf\xbf",       /* U+10FFFF, the last code point */
        "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        knit_value_t v = knit_v_str(ok[i]);
        assert_int_equal(knit_value_validate(&v), 0);
    }
    static const char nul[] = "a\0b";
    knit_value_t v = knit_v_strn(nul, 3); /* NUL is a valid code point */
    assert_int_equal(knit_value_validate(&v), 0);
}

static void test_validate_rejects_overlong_utf8(void **state)
{
    (void)state;
    BAD_UTF8("\xc0\x80", 0);              /* NUL as 2 bytes */
    BAD_UTF8("ab\xc1\xbf", 2);            /* U+007F as 2 bytes */
    BAD_UTF8("xyz\xe0\x80\x80", 3);       /* 3-byte NUL */
    BAD_UTF8("\xe0\x9f\xbf", 0);          /* U+07FF as 3 bytes */
    BAD_UTF8("ok \xf0\x80\x80\x80", 3);   /* 4-byte NUL */
    BAD_UTF8("\xf0\x8f\xbf\xbf tail", 0); /* U+FFFF as 4 bytes */
}

static void test_validate_rejects_surrogates(void **state)
{
    (void)state;
    BAD_UTF8("\xed\xa0\x80", 0);                     /* U+D800 */
    BAD_UTF8("hi \xed\xbf\xbf", 3);                  /* U+DFFF */
    BAD_UTF8("\xc3\xa9\xed\xa0\xbd\xed\xb8\x80", 2); /* CESU-8 style pair */
}

static void test_validate_rejects_truncated_utf8(void **state)
{
    (void)state;
    BAD_UTF8("ab\xe2\x82", 2);     /* 3-byte sequence cut at the end */
    BAD_UTF8("\xf0\x9f\x98", 0);   /* 4-byte sequence cut at the end */
    BAD_UTF8("abc\xc3", 3);        /* lone lead byte at the end */
    BAD_UTF8("\xe2\x82x rest", 0); /* continuation replaced by ASCII */
    BAD_UTF8("\xc3\xa9\xc3(", 2);  /* second character broken */
    /* cut by the length, not by a NUL */
    static const char euro[] = "\xe2\x82\xac";
    expect_bad_utf8(euro, 2, 0);
}

static void test_validate_rejects_bad_lead_bytes_and_beyond_max(void **state)
{
    (void)state;
    BAD_UTF8("\x80", 0); /* lone continuation byte */
    BAD_UTF8("a\xbf", 1);
    BAD_UTF8("ab\xff", 2);
    BAD_UTF8("\xfe\x80", 0);
    BAD_UTF8("\xf8\x88\x80\x80\x80", 0); /* 5-byte form */
    BAD_UTF8("\xf4\x90\x80\x80", 0);     /* U+110000 */
    BAD_UTF8("\xf5\x80\x80\x80", 0);
}

/* --- JSON ------------------------------------------------------------------------------------- */

static void test_validate_accepts_valid_json(void **state)
{
    (void)state;
    const char *ok[] = {
        "{}",
        "[]",
        "{\"a\":[1,2.5,-3e10,\"x\",null,true,false],\"b\":{\"c\":{}}}",
        "  [ 1 , 2 ]  ",
        "\"a plain string\"",
        "42",
        "null",
        "{\"text\":\"caf\xc3\xa9 \\u00e9 \\ud83d\\ude00\"}",
        "[\"nul \\u0000 inside\"]",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        knit_value_t v = knit_v_json(ok[i]);
        if (knit_value_validate(&v) != 0)
            print_error("\"%s\": %s\n", ok[i], knit_errmsg());
        assert_int_equal(knit_value_validate(&v), 0);
    }
}

/* The JSON position is where the parser stopped: just past the offending token (jansson's
 * convention), with the token quoted after "near". */
static void test_validate_rejects_invalid_json_with_position(void **state)
{
    (void)state;
    const struct {
        const char *text;
        long pos;
    } bad[] = {
        {"{\"a\":1,}", 8},      /* trailing comma: '}' where a key belongs */
        {"[1,2", 4},            /* unterminated array */
        {"{\"a\" 1}", 6},       /* missing colon */
        {"", 0},                /* nothing at all */
        {"nul", 3},             /* broken literal */
        {"[1] [2]", 5},         /* trailing content */
        {"{\"a\":\"\\x\"}", 8}, /* bad escape */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_invalid_at(knit_v_json(bad[i].text), "not valid JSON", bad[i].pos);
}

static void test_validate_json_checks_utf8_first(void **state)
{
    (void)state;
    expect_invalid_at(knit_v_json("[\"ok\",\"\xc0\x80\"]"), "JSON text is not valid UTF-8", 7);
}

/* --- composite values ------------------------------------------------------------------------- */

static void test_validate_error_fields_and_cause(void **state)
{
    (void)state;
    knit_value_t good_cause = knit_v_json("{\"code\":1}");
    knit_error_value_t e = {.name = "TypeError", .message = "m\xc3\xa9", .cause = &good_cause};
    knit_value_t v = knit_v_error(&e);
    assert_int_equal(knit_value_validate(&v), 0);

    knit_error_value_t bad_name = {.name = "Type\xff", .message = "m"};
    expect_invalid_at(knit_v_error(&bad_name), "error name is not valid UTF-8", 4);
    knit_error_value_t bad_msg = {.name = "E", .message = "abc\xed\xa0\x80"};
    expect_invalid_at(knit_v_error(&bad_msg), "error message is not valid UTF-8", 3);

    knit_value_t bad_json_cause = knit_v_json("{oops}");
    knit_error_value_t e2 = {.name = "E", .message = "m", .cause = &bad_json_cause};
    expect_invalid_at(knit_v_error(&e2), "not valid JSON", 5);

    /* nested: the innermost cause is checked too */
    knit_value_t bad_str = knit_v_str("x\xc0\xaf");
    knit_error_value_t inner = {.name = "Inner", .message = "i", .cause = &bad_str};
    knit_value_t inner_v = knit_v_error(&inner);
    knit_error_value_t outer = {.name = "Outer", .message = "o", .cause = &inner_v};
    expect_invalid_at(knit_v_error(&outer), "not valid UTF-8", 1);

    knit_error_value_t unnamed = {.name = NULL, .message = NULL};
    v = knit_v_error(&unnamed);
    assert_int_equal(knit_value_validate(&v), 0);
}

static void test_validate_cyclic_error_cause_is_refused(void **state)
{
    (void)state;
    knit_error_value_t e = {.name = "Error", .message = "loop"};
    knit_value_t self = knit_v_error(&e);
    e.cause = &self;
    assert_int_equal(knit_value_validate(&self), KNIT_E_INVAL);
    assert_non_null(strstr(knit_errmsg(), "nest"));
}

/* Validation accepts exactly the cause chains the codec encodes: 33 errors (depth 0..32). */
static void test_validate_cause_depth_limit(void **state)
{
    (void)state;
    knit_error_value_t chain[34];
    knit_value_t vals[34];
    knit_test_error_chain(chain, vals, 34);
    assert_int_equal(knit_value_validate(&vals[1]), 0);            /* 33 errors */
    assert_int_equal(knit_value_validate(&vals[0]), KNIT_E_INVAL); /* 34 errors */
}

static void test_validate_envelope_header(void **state)
{
    (void)state;
    uint8_t body[4] = {0xff, 0xfe, 0, 1}; /* binary body: never checked as text */
    knit_envelope_t env = {.header = "{\"k\":[1,2]}",
        .header_len = 11,
        .body = knit_v_bytes(body, 4),
        .header_kind = KNIT_ENV_JSON};
    knit_value_t v = knit_v_envelope(&env);
    assert_int_equal(knit_value_validate(&v), 0);

    knit_envelope_t bad_json = env;
    bad_json.header = "{\"k\":[1,2}";
    bad_json.header_len = 10;
    expect_invalid_at(knit_v_envelope(&bad_json), "envelope header is not valid JSON", 10);

    /* a string header need not be JSON, only UTF-8 */
    knit_envelope_t str = env;
    str.header = "not { json";
    str.header_len = 10;
    str.header_kind = KNIT_ENV_STRING;
    v = knit_v_envelope(&str);
    assert_int_equal(knit_value_validate(&v), 0);
    str.header = "bad \xe0\x80\x80";
    str.header_len = 7;
    expect_invalid_at(knit_v_envelope(&str), "envelope header is not valid UTF-8", 4);
}

static void test_validate_typed_array_length_and_kind(void **state)
{
    (void)state;
    int32_t words[4] = {1, 2, 3, 4};
    knit_value_t v = knit_v_typed(KNIT_ELEM_I32, words, sizeof words);
    assert_int_equal(knit_value_validate(&v), 0);
    v = knit_v_typed(KNIT_ELEM_I32, words, 6);
    assert_int_equal(knit_value_validate(&v), KNIT_E_INVAL);
    assert_non_null(strstr(knit_errmsg(), "Int32Array byte length 6"));
    v = knit_v_typed(KNIT_ELEM_COUNT_, words, 4);
    assert_int_equal(knit_value_validate(&v), KNIT_E_INVAL);
    v.kind = KNIT_KIND_COUNT_;
    assert_int_equal(knit_value_validate(&v), KNIT_E_INVAL);
    assert_non_null(strstr(knit_errmsg(), "unknown value kind"));
    /* kinds without text are always valid */
    const knit_value_t plain[] = {knit_v_null(), knit_v_undefined(), knit_v_bool(true),
        knit_v_f64(NAN), knit_v_int64(-1), knit_v_date(0), knit_v_bytes(words, 3)};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        assert_int_equal(knit_value_validate(&plain[i]), 0);
}

/* --- big integers ----------------------------------------------------------------------------- */

static void test_bigint_normalises_to_int64(void **state)
{
    (void)state;
    static const uint8_t one[3] = {1, 0, 0};
    static const uint8_t max[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    static const uint8_t two63[9] = {0, 0, 0, 0, 0, 0, 0, 0x80, 0};
    static const uint8_t zeros[4] = {0, 0, 0, 0};
    knit_value_t v = knit_v_bigint(false, one, 3);
    assert_int_equal(v.kind, KNIT_KIND_INT64);
    assert_int_equal(v.u.i64, 1);
    v = knit_v_bigint(true, one, 3);
    assert_int_equal(v.u.i64, -1);
    v = knit_v_bigint(false, max, 8);
    assert_int_equal(v.kind, KNIT_KIND_INT64);
    assert_true(v.u.i64 == INT64_MAX);
    v = knit_v_bigint(true, two63, 9); /* -2^63 is still int64 */
    assert_int_equal(v.kind, KNIT_KIND_INT64);
    assert_true(v.u.i64 == INT64_MIN);
    v = knit_v_bigint(true, zeros, 4); /* -0 is 0 */
    assert_int_equal(v.kind, KNIT_KIND_INT64);
    assert_int_equal(v.u.i64, 0);
    v = knit_v_bigint(false, NULL, 0);
    assert_int_equal(v.kind, KNIT_KIND_INT64);
    assert_int_equal(v.u.i64, 0);
}

static void test_bigint_outside_int64_stays_big_and_trimmed(void **state)
{
    (void)state;
    static const uint8_t two63[10] = {0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0};
    static const uint8_t two63p1[8] = {1, 0, 0, 0, 0, 0, 0, 0x80};
    knit_value_t v = knit_v_bigint(false, two63, 10); /* 2^63 */
    assert_int_equal(v.kind, KNIT_KIND_BIGINT);
    assert_int_equal(v.sub, 0);
    assert_int_equal(v.len, 8); /* leading zero bytes dropped */
    assert_ptr_equal(v.u.ptr, two63);
    v = knit_v_bigint(true, two63p1, 8); /* -2^63 - 1 */
    assert_int_equal(v.kind, KNIT_KIND_BIGINT);
    assert_int_equal(v.sub, 1);
    /* equal numbers have one representation, whatever padding they came with */
    knit_value_t a = knit_v_bigint(false, two63, 8), b = knit_v_bigint(false, two63, 10);
    assert_true(knit_value_equal(&a, &b));
    knit_value_t neg = knit_v_bigint(true, two63, 8);
    assert_false(knit_value_equal(&a, &neg));
}

/* --- equality --------------------------------------------------------------------------------- */

static void test_equal_float_semantics(void **state)
{
    (void)state;
    uint64_t bits = 0x7FF0000000000001ull; /* a signalling-NaN bit pattern */
    double snan;
    memcpy(&snan, &bits, sizeof snan);
    knit_value_t a = knit_v_f64(NAN), b = knit_v_f64(snan);
    /* every NaN is one value: the codec carries NaN as a bare tag */
    assert_true(knit_value_equal(&a, &b));
    knit_value_t pz = knit_v_f64(0.0), nz = knit_v_f64(-0.0);
    assert_false(knit_value_equal(&pz, &nz));
    knit_value_t d = knit_v_date(0.0);
    assert_false(knit_value_equal(&pz, &d)); /* a Date is not a number */
    knit_value_t dn1 = knit_v_date(NAN), dn2 = knit_v_date(NAN);
    assert_true(knit_value_equal(&dn1, &dn2));
}

static void test_equal_distinguishes_kinds_and_subtypes(void **state)
{
    (void)state;
    const char text[] = "[1]";
    knit_value_t s = knit_v_strn(text, 3), j = knit_v_jsonn(text, 3), by = knit_v_bytes(text, 3);
    assert_false(knit_value_equal(&s, &j));
    assert_false(knit_value_equal(&s, &by));
    uint8_t raw[8] = {0};
    knit_value_t i8 = knit_v_typed(KNIT_ELEM_I8, raw, 8), u8 = knit_v_typed(KNIT_ELEM_U8C, raw, 8);
    knit_value_t bytes = knit_v_bytes(raw, 8);
    assert_false(knit_value_equal(&i8, &u8));
    assert_false(knit_value_equal(&i8, &bytes));
    knit_value_t i8b = knit_v_typed(KNIT_ELEM_I8, raw, 7);
    assert_false(knit_value_equal(&i8, &i8b));
    knit_value_t t = knit_v_bool(true), f = knit_v_bool(false);
    assert_false(knit_value_equal(&t, &f));
    knit_value_t one = knit_v_int64(1), onef = knit_v_f64(1.0);
    assert_false(knit_value_equal(&one, &onef));
}

static void test_equal_compares_error_and_envelope_contents(void **state)
{
    (void)state;
    knit_value_t c1 = knit_v_int64(1), c2 = knit_v_int64(2);
    knit_error_value_t a = {.name = "E", .message = "m", .cause = &c1};
    knit_error_value_t b = {.name = "E", .message = "m", .cause = &c2};
    knit_error_value_t c = {.name = "E", .message = "m"};
    knit_value_t va = knit_v_error(&a), vb = knit_v_error(&b), vc = knit_v_error(&c);
    assert_false(knit_value_equal(&va, &vb));
    assert_false(knit_value_equal(&va, &vc));
    b.cause = &c1;
    assert_true(knit_value_equal(&va, &vb));

    uint8_t body[2] = {1, 2};
    knit_envelope_t e1 = {.header = "{}", .header_len = 2, .body = knit_v_bytes(body, 2)};
    knit_envelope_t e2 = e1;
    e2.header_kind = KNIT_ENV_STRING;
    knit_value_t ve1 = knit_v_envelope(&e1), ve2 = knit_v_envelope(&e2);
    assert_false(knit_value_equal(&ve1, &ve2));
    knit_psb_desc_t p1 = {.fd = 3, .size = 10, .length = 10}, p2 = p1;
    knit_value_t vp1 = knit_v_psb(&p1), vp2 = knit_v_psb(&p2);
    assert_true(knit_value_equal(&vp1, &vp2));
    strcpy(p2.name, "/n");
    assert_false(knit_value_equal(&vp1, &vp2));
}

/* --- lifetime --------------------------------------------------------------------------------- */

static void test_free_borrowed_value_only_resets(void **state)
{
    (void)state;
    char buf[8] = "borrow";
    knit_value_t v = knit_v_str(buf);
    knit_value_free(&v);
    assert_int_equal(v.kind, KNIT_KIND_UNDEFINED);
    assert_string_equal(buf, "borrow"); /* the caller's memory is untouched */
    knit_value_free(NULL);              /* harmless */
}

static void test_free_owned_values_releases_everything(void **state)
{
    (void)state;
    /* hand-built owned values, as the decoder produces them; the leak checker verifies */
    knit_value_t s = knit_v_strn(strdup("owned"), 5);
    s.flags = KNIT_VF_OWNED;
    knit_value_free(&s);
    assert_int_equal(s.kind, KNIT_KIND_UNDEFINED);

    knit_envelope_t *env = calloc(1, sizeof *env);
    env->header = strdup("{}");
    env->header_len = 2;
    env->body = knit_v_bytes(malloc(16), 16);
    env->body.flags = KNIT_VF_OWNED;
    knit_value_t e = knit_v_envelope(env);
    e.flags = KNIT_VF_OWNED;
    knit_value_free(&e);
    assert_int_equal(e.kind, KNIT_KIND_UNDEFINED);
}

static void test_shared_buffer_refcount(void **state)
{
    (void)state;
    knit_shared_buf_t *b = NULL;
    assert_int_equal(knit_shared_buf_new(100, &b), 0);
    assert_int_equal(knit_shared_buf_len(b), 100);
    assert_int_equal(knit_shared_buf_refs(b), 1);
    const uint8_t *d = knit_shared_buf_data(b);
    assert_int_equal((uintptr_t)d % 64, 0); /* cache-line aligned data */
    for (int i = 0; i < 100; i++)
        assert_int_equal(d[i], 0); /* zero-filled */
    knit_shared_buf_retain(b);
    assert_int_equal(knit_shared_buf_refs(b), 2);
    knit_value_t owned = knit_v_shared(b);
    owned.flags = KNIT_VF_OWNED;
    knit_value_free(&owned); /* an owned SHARED value drops one reference */
    assert_int_equal(knit_shared_buf_refs(b), 1);
    knit_value_t borrowed = knit_v_shared(b);
    knit_value_free(&borrowed); /* a borrowed one does not */
    assert_int_equal(knit_shared_buf_refs(b), 1);
    knit_shared_buf_release(b);
    knit_shared_buf_release(NULL);
    assert_int_equal(knit_shared_buf_new(1, NULL), KNIT_E_INVAL);
}

static void test_moved_buffer_release(void **state)
{
    (void)state;
    knit_test_release_log_t log = {0};
    void *data = malloc(64);
    knit_moved_buf_t *m = NULL;
    assert_int_equal(knit_moved_new(data, 64, knit_test_log_release, &log, &m), 0);
    assert_ptr_equal(m->data, data);
    assert_int_equal(m->len, 64);
    knit_value_t v = knit_v_moved(m);
    assert_true(v.flags & KNIT_VF_OWNED); /* the holder owns it from the start */
    knit_value_free(&v);
    assert_int_equal(log.calls, 1);
    assert_ptr_equal(log.data, data);
    assert_ptr_equal(log.ctx, &log);
    /* without a release callback free() is used (the leak checker verifies) */
    assert_int_equal(knit_moved_new(malloc(8), 8, NULL, NULL, &m), 0);
    v = knit_v_moved(m);
    knit_value_free(&v);
    /* NULL data is only allowed for an empty buffer */
    assert_int_equal(knit_moved_new(NULL, 8, NULL, NULL, &m), KNIT_E_INVAL);
    assert_int_equal(knit_moved_new(NULL, 0, NULL, NULL, &m), 0);
    v = knit_v_moved(m);
    knit_value_free(&v);
}

/* --- tables ----------------------------------------------------------------------------------- */

static void test_element_sizes_and_names(void **state)
{
    (void)state;
    const size_t sizes[KNIT_ELEM_COUNT_] = {1, 1, 2, 2, 4, 4, 4, 8, 8, 8, 1, 1, 1};
    const char *names[KNIT_ELEM_COUNT_] = {"Int8Array", "Uint8ClampedArray", "Int16Array",
        "Uint16Array", "Int32Array", "Uint32Array", "Float32Array", "Float64Array", "BigInt64Array",
        "BigUint64Array", "DataView", "ArrayBuffer", "Buffer"};
    for (int e = 0; e < KNIT_ELEM_COUNT_; e++) {
        assert_int_equal(knit_elem_size((knit_elem_t)e), sizes[e]);
        assert_string_equal(knit_elem_name((knit_elem_t)e), names[e]);
    }
    assert_int_equal(knit_elem_size(KNIT_ELEM_COUNT_), 0);
    assert_string_equal(knit_elem_name(KNIT_ELEM_COUNT_), "unknown");
    assert_string_equal(knit_kind_name(KNIT_KIND_ENVELOPE), "envelope");
    assert_string_equal(knit_kind_name(KNIT_KIND_COUNT_), "unknown");
}

static void test_str_and_json_constructors_measure_text(void **state)
{
    (void)state;
    knit_value_t s = knit_v_str("h\xc3\xa9llo");
    assert_int_equal(s.kind, KNIT_KIND_STRING);
    assert_int_equal(s.len, 6); /* bytes, not characters */
    knit_value_t j = knit_v_json("{\"a\":1}");
    assert_int_equal(j.kind, KNIT_KIND_JSON);
    assert_int_equal(j.len, 7);
    assert_int_equal(j.flags, 0); /* borrowed */
}

/* knit_value_own: a lent or borrowed value becomes an owned copy; an owned one stays. */
static void test_value_own(void **state)
{
    (void)state;
    char text[] = "lent text";
    knit_value_t v = knit_v_str(text);
    v.flags = KNIT_VF_LENT;
    assert_int_equal(knit_value_own(&v), 0);
    assert_int_equal(v.flags & (KNIT_VF_OWNED | KNIT_VF_LENT), KNIT_VF_OWNED);
    assert_ptr_not_equal(v.u.ptr, text);
    text[0] = 'X'; /* the lender reuses its memory: the copy is unaffected */
    assert_string_equal((const char *)v.u.ptr, "lent text");
    const void *owned = v.u.ptr;
    assert_int_equal(knit_value_own(&v), 0);
    assert_ptr_equal(v.u.ptr, owned);
    knit_value_free(&v);
    knit_value_t n = knit_v_int64(7);
    assert_int_equal(knit_value_own(&n), 0);
    assert_int_equal(n.u.i64, 7);
    assert_int_equal(knit_value_own(NULL), KNIT_E_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validate_accepts_valid_utf8),
        cmocka_unit_test(test_validate_rejects_overlong_utf8),
        cmocka_unit_test(test_validate_rejects_surrogates),
        cmocka_unit_test(test_validate_rejects_truncated_utf8),
        cmocka_unit_test(test_validate_rejects_bad_lead_bytes_and_beyond_max),
        cmocka_unit_test(test_validate_accepts_valid_json),
        cmocka_unit_test(test_validate_rejects_invalid_json_with_position),
        cmocka_unit_test(test_validate_json_checks_utf8_first),
        cmocka_unit_test(test_validate_error_fields_and_cause),
        cmocka_unit_test(test_validate_cyclic_error_cause_is_refused),
        cmocka_unit_test(test_validate_cause_depth_limit),
        cmocka_unit_test(test_validate_envelope_header),
        cmocka_unit_test(test_validate_typed_array_length_and_kind),
        cmocka_unit_test(test_bigint_normalises_to_int64),
        cmocka_unit_test(test_bigint_outside_int64_stays_big_and_trimmed),
        cmocka_unit_test(test_equal_float_semantics),
        cmocka_unit_test(test_equal_distinguishes_kinds_and_subtypes),
        cmocka_unit_test(test_equal_compares_error_and_envelope_contents),
        cmocka_unit_test(test_free_borrowed_value_only_resets),
        cmocka_unit_test(test_value_own),
        cmocka_unit_test(test_free_owned_values_releases_everything),
        cmocka_unit_test(test_shared_buffer_refcount),
        cmocka_unit_test(test_moved_buffer_release),
        cmocka_unit_test(test_element_sizes_and_names),
        cmocka_unit_test(test_str_and_json_constructors_measure_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
