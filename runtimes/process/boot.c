/* knit runtimes/process - the boot payload: what a worker process needs to know, as JSON. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "runtimes/process/process.h"

/* A NULL-terminated list as a JSON array of strings (NULL when memory runs out). */
static json_t *str_array(const char *const *list)
{
    json_t *a = json_array();
    for (size_t i = 0; a && list && list[i]; i++) {
        if (json_array_append_new(a, json_string(list[i])) < 0) {
            json_decref(a);
            a = NULL;
        }
    }
    return a;
}

/* The "sandbox" member: NULL for no policy (or when memory runs out: *ok false). */
static json_t *encode_sandbox(const knit_sandbox_t *s, bool *ok)
{
    *ok = true;
    if (!s || s->mode == KNIT_SANDBOX_UNSAFE)
        return NULL;
    json_t *o = json_pack("{s:s, s:o, s:o, s:o, s:b, s:b, s:b}", "mode", "strict", "read",
        str_array(s->read), "write", str_array(s->write), "env", str_array(s->env), "net",
        s->allow_net, "exec", s->allow_exec, "bestEffort", s->best_effort);
    *ok = o != NULL;
    return o;
}

int knit__boot_encode(
    const knit__runner_cfg_t *cfg, const char *shm_name, const knit_sandbox_t *sandbox, char **json)
{
    const knit__worker_cfg_t *w = &cfg->worker;
    const knit__lane_cfg_t *c = &w->lane->cfg;
    json_t *tasks = json_array();
    for (uint32_t i = 0; tasks && i < w->ntasks; i++) {
        const knit_task_def_t *d = &w->tasks[i].def;
        json_t *t = json_pack("{s:s, s:I, s:b, s:b, s:s*, s:s*}", "name", d->name, "timeoutMs",
            (json_int_t)d->timeout_ms, "abortAware", d->abort_aware, "argInPlace", d->arg_in_place,
            "importPath", d->import_path, "importSymbol", d->import_symbol);
        if (!t || json_array_append_new(tasks, t) < 0) {
            json_decref(tasks);
            tasks = NULL;
        }
    }
    json_t *root = tasks
        ? json_pack("{s:i, s:i, s:i, s:s, s:{s:s, s:s, s:I, s:I, s:I, s:I}, s:{s:I, s:b}, "
                    "s:o, s:{s:s*, s:s*}}",
            "version", KNIT__BOOT_VERSION, "hostPid", (int)getpid(), "worker", (int)w->index,
            "transport", knit_transport_name(w->transport), "memory", "mode",
            shm_name[0] ? "named" : "inherit", "name", shm_name, "payloadMax",
            (json_int_t)c->payload_max_bytes, "payloadInitial",
            (json_int_t)c->payload_initial_bytes, "maxPayload", (json_int_t)c->max_payload_bytes,
            "abortCapacity", (json_int_t)c->abort_capacity, "wait", "spinNs",
            (json_int_t)w->spin_ns, "spinOnly", w->spin_only, "tasks", tasks, "bootstrap", "path",
            w->bootstrap_path, "symbol", w->bootstrap_symbol)
        : NULL;
    bool ok = true;
    json_t *policy = root ? encode_sandbox(sandbox, &ok) : NULL;
    if (policy
        && (json_object_set_new(root, "sandbox", policy) < 0
            || json_object_set_new(root, "version", json_integer(KNIT__BOOT_VERSION_SANDBOX)) < 0))
        ok = false;
    if (!root || !ok) {
        json_decref(root);
        return knit__err(KNIT_E_NOMEM, "building the worker boot payload");
    }
    *json = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return *json ? 0 : knit__err(KNIT_E_NOMEM, "serialising the worker boot payload");
}

static int bad(const char *what)
{
    return knit__err(KNIT_E_WORKER_STARTUP, "invalid boot payload: %s", what);
}

static char *dup_opt(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int decode_tasks(json_t *arr, knit__boot_t *b)
{
    size_t n = json_array_size(arr);
    if (!json_is_array(arr) || n == 0 || n > 65536)
        return bad("tasks must be an array of 1 to 65536 entries");
    b->tasks = calloc(n, sizeof *b->tasks);
    if (!b->tasks)
        return knit__err(KNIT_E_NOMEM, "boot task table");
    b->ntasks = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        const char *name = NULL, *path = NULL, *sym = NULL;
        json_int_t tmo = 0;
        int abort_aware = 0, in_place = 0;
        if (json_unpack(json_array_get(arr, i), "{s:s, s:I, s:b, s?b, s?s, s?s}", "name", &name,
                "timeoutMs", &tmo, "abortAware", &abort_aware, "argInPlace", &in_place,
                "importPath", &path, "importSymbol", &sym)
                != 0
            || !name[0] || tmo < 0 || tmo > UINT32_MAX)
            return bad("a task entry needs name, timeoutMs and abortAware");
        if (i > 0 && strcmp(b->tasks[i - 1].name, name) >= 0)
            return bad("task names are not sorted and unique");
        knit__task_t *t = &b->tasks[i];
        t->name = strdup(name);
        t->def.name = t->name;
        t->def.timeout_ms = (uint32_t)tmo;
        t->def.abort_aware = abort_aware;
        t->def.arg_in_place = in_place;
        t->def.import_path = dup_opt(path);
        t->def.import_symbol = dup_opt(sym);
        if (!t->name || (path && !t->def.import_path) || (sym && !t->def.import_symbol))
            return knit__err(KNIT_E_NOMEM, "boot task table");
    }
    return 0;
}

/* A JSON array of strings as an owned NULL-terminated list (NULL member: an empty list). */
static int decode_list(json_t *arr, char ***out, const char *what)
{
    if (arr && !json_is_array(arr))
        return knit__err(
            KNIT_E_WORKER_STARTUP, "invalid boot payload: sandbox.%s must be an array", what);
    size_t n = json_array_size(arr);
    char **list = calloc(n + 1, sizeof *list);
    if (!list)
        return knit__err(KNIT_E_NOMEM, "boot sandbox lists");
    *out = list;
    for (size_t i = 0; i < n; i++) {
        const char *v = json_string_value(json_array_get(arr, i));
        if (!v)
            return knit__err(KNIT_E_WORKER_STARTUP,
                "invalid boot payload: sandbox.%s[%zu] must be a string", what, i);
        if (!(list[i] = strdup(v)))
            return knit__err(KNIT_E_NOMEM, "boot sandbox lists");
    }
    return 0;
}

/* The "sandbox" member: required by version 2, refused by version 1. */
static int decode_sandbox(json_t *root, int version, knit__sandbox_t *s)
{
    json_t *o = json_object_get(root, "sandbox");
    if (version == KNIT__BOOT_VERSION)
        return o ? bad("a version 1 payload cannot carry a sandbox") : 0;
    const char *mode = NULL;
    json_t *read = NULL, *write = NULL, *env = NULL;
    int net = 0, exec = 0, best = 0;
    if (!o
        || json_unpack(o, "{s:s, s?o, s?o, s?o, s:b, s:b, s?b}", "mode", &mode, "read", &read,
               "write", &write, "env", &env, "net", &net, "exec", &exec, "bestEffort", &best)
            != 0)
        return bad("sandbox needs mode, net and exec");
    if (strcmp(mode, "strict") != 0)
        return bad("sandbox.mode must be strict");
    *s = (knit__sandbox_t) {
        .strict = true, .allow_net = net, .allow_exec = exec, .best_effort = best};
    int rc = decode_list(read, &s->read, "read");
    if (rc == 0)
        rc = decode_list(write, &s->write, "write");
    if (rc == 0)
        rc = decode_list(env, &s->env, "env");
    knit_sandbox_t view = {.mode = KNIT_SANDBOX_STRICT,
        .read = (const char *const *)s->read,
        .write = (const char *const *)s->write,
        .env = (const char *const *)s->env};
    if (rc == 0 && knit__sandbox_check(&view) < 0)
        rc = knit__err(KNIT_E_WORKER_STARTUP, "invalid boot payload: %s", knit__errmsg_detail());
    return rc;
}

int knit__boot_decode(const char *text, knit__boot_t *b)
{
    memset(b, 0, sizeof *b);
    if (!text)
        return bad(KNIT__ENV_BOOT " is not set");
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    if (!root)
        return knit__err(KNIT_E_WORKER_STARTUP, "boot payload is not JSON: %s (at %d)", jerr.text,
            jerr.position);
    int version = 0, host_pid = 0, worker = -1, spin_only = 0;
    const char *mode = NULL, *name = NULL, *bpath = NULL, *bsym = NULL, *transport = "knit";
    json_int_t pmax = 0, pinit = 0, maxp = 0, aborts = 0, spin = 0;
    json_t *tasks = NULL;
    int rc = 0;
    if (json_unpack(root, "{s:i}", "version", &version) != 0
        || (version != KNIT__BOOT_VERSION && version != KNIT__BOOT_VERSION_SANDBOX))
        rc = knit__err(KNIT_E_WORKER_STARTUP,
            "boot payload version %d is not supported (this worker reads versions %d and %d)",
            version, KNIT__BOOT_VERSION, KNIT__BOOT_VERSION_SANDBOX);
    else if (json_unpack(root,
                 "{s:i, s:i, s?s, s:{s:s, s:s, s:I, s:I, s:I, s:I}, s:{s:I, s:b}, s:o, "
                 "s:{s?s, s?s}}",
                 "hostPid", &host_pid, "worker", &worker, "transport", &transport, "memory", "mode",
                 &mode, "name", &name, "payloadMax", &pmax, "payloadInitial", &pinit, "maxPayload",
                 &maxp, "abortCapacity", &aborts, "wait", "spinNs", &spin, "spinOnly", &spin_only,
                 "tasks", &tasks, "bootstrap", "path", &bpath, "symbol", &bsym)
        != 0)
        rc = bad("missing or mistyped fields");
    else if (host_pid <= 0 || worker < 0 || worker > 65535)
        rc = bad("hostPid and worker must be positive");
    else if (knit_transport_parse(transport, &b->transport) < 0)
        rc = bad("transport must be knit, pipe, unix, seqpacket, tcp or seq");
    else if (strlen(name) >= sizeof b->name)
        rc = bad("memory.name is too long");
    else if (strcmp(mode, "inherit") != 0 && strcmp(mode, "named") != 0)
        rc = bad("memory.mode must be inherit or named");
    else if (!strcmp(mode, "named")
        && (name[0] != '/' || strlen(name) >= sizeof b->name || strchr(name + 1, '/')))
        rc = bad("memory.name must be a POSIX shm name");
    else if (pmax < 8 || pmax > (json_int_t)KNIT_PAYLOAD_LIMIT_MAX_BYTES || pinit < 0
        || pinit > pmax || maxp <= 0 || maxp > (pmax >> 3) || aborts < 0 || aborts > 65535
        || spin < 0)
        rc = bad("memory sizes or wait settings are out of range");
    if (rc == 0) {
        b->host_pid = host_pid;
        b->worker = (uint32_t)worker;
        b->named = !strcmp(mode, "named");
        strcpy(b->name, name);
        b->cfg.payload_max_bytes = (uint64_t)pmax;
        b->cfg.payload_initial_bytes = (uint64_t)pinit;
        b->cfg.max_payload_bytes = (uint64_t)maxp;
        b->cfg.abort_capacity = (uint32_t)aborts;
        b->cfg.process_boundary = true;
        b->spin_ns = spin;
        b->spin_only = spin_only;
        b->bootstrap_path = dup_opt(bpath);
        b->bootstrap_symbol = dup_opt(bsym);
        rc = decode_tasks(tasks, b);
    }
    if (rc == 0)
        rc = decode_sandbox(root, version, &b->sandbox);
    json_decref(root);
    if (rc < 0)
        knit__boot_free(b);
    return rc;
}

void knit__boot_free(knit__boot_t *b)
{
    for (uint32_t i = 0; b->tasks && i < b->ntasks; i++) {
        free(b->tasks[i].name);
        free((char *)b->tasks[i].def.import_path);
        free((char *)b->tasks[i].def.import_symbol);
    }
    free(b->tasks);
    free(b->bootstrap_path);
    free(b->bootstrap_symbol);
    knit__sandbox_free(&b->sandbox);
    memset(b, 0, sizeof *b);
}
