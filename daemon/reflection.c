/*
 * gRPC server reflection, v1 and v1alpha (same messages on the wire, so one
 * handler serves both). Answers come from the descriptor set generated at
 * build time (protoc --include_imports) and compiled into eied, since
 * protobuf-c embeds no descriptors. ghz and grpcurl work without .proto files.
 *
 * The descriptor set is walked once at start with a small wire-format
 * reader: for each file its name, dependencies and the fully qualified
 * symbols it defines (messages, nested messages, enums, services, methods).
 */
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "log.h"
#include "reflection_v1.pb-c.h"
#include "rpc.h"

extern const uint8_t eied_protoset[];
extern const size_t eied_protoset_len;

#define MAX_FILES 32
#define MAX_SYMBOLS 512
#define MAX_DEPS 16
#define NAME_MAX_ 256

typedef struct {
    const uint8_t *data;
    size_t len;
    char name[NAME_MAX_];
    int deps[MAX_DEPS];
    size_t n_deps;
    char dep_names[MAX_DEPS][NAME_MAX_];
} file_t;

static struct {
    file_t files[MAX_FILES];
    size_t n_files;
    struct {
        char name[NAME_MAX_];
        int file;
    } symbols[MAX_SYMBOLS];
    size_t n_symbols;
    char services[8][NAME_MAX_];
    size_t n_services;
    bool ready;
} refl;

/* ---- a minimal protobuf wire reader ------------------------------------ */

typedef struct {
    const uint8_t *p, *end;
} wire_t;

static bool read_varint(wire_t *w, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && w->p < w->end; shift += 7) {
        uint8_t b = *w->p++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return true;
    }
    return false;
}

/* Next field: number, wire type, and for length-delimited fields the bytes. */
static bool next_field(wire_t *w, uint32_t *field, const uint8_t **data, size_t *len)
{
    uint64_t key, v;
    if (w->p >= w->end || !read_varint(w, &key))
        return false;
    *field = (uint32_t)(key >> 3);
    *data = NULL;
    *len = 0;
    switch (key & 7) {
    case 0:
        return read_varint(w, &v);
    case 1:
        if (w->end - w->p < 8)
            return false;
        w->p += 8;
        return true;
    case 2:
        if (!read_varint(w, &v) || v > (uint64_t)(w->end - w->p))
            return false;
        *data = w->p;
        *len = (size_t)v;
        w->p += v;
        return true;
    case 5:
        if (w->end - w->p < 4)
            return false;
        w->p += 4;
        return true;
    default:
        return false;
    }
}

static void copy_str(char *dst, const uint8_t *s, size_t n)
{
    if (n >= NAME_MAX_)
        n = NAME_MAX_ - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

static void add_symbol(const char *scope, const uint8_t *name, size_t n, int file, char *out)
{
    /* "scope.name", truncated to NAME_MAX_-1 (descriptor names here are short) */
    size_t sl = strnlen(scope, NAME_MAX_ - 1), used = 0;
    memcpy(out, scope, sl);
    used = sl;
    if (sl > 0 && used < NAME_MAX_ - 1)
        out[used++] = '.';
    if (n > NAME_MAX_ - 1 - used)
        n = NAME_MAX_ - 1 - used;
    memcpy(out + used, name, n);
    out[used + n] = '\0';
    if (refl.n_symbols < MAX_SYMBOLS) {
        snprintf(refl.symbols[refl.n_symbols].name, NAME_MAX_, "%s", out);
        refl.symbols[refl.n_symbols].file = file;
        refl.n_symbols++;
    }
}

/* Name (field 1) of a DescriptorProto / EnumDescriptorProto / ServiceDescriptorProto. */
static bool field1_name(const uint8_t *d, size_t len, const uint8_t **name, size_t *n)
{
    wire_t w = {d, d + len};
    uint32_t f;
    const uint8_t *data;
    size_t l;
    while (next_field(&w, &f, &data, &l))
        if (f == 1 && data != NULL) {
            *name = data;
            *n = l;
            return true;
        }
    return false;
}

/* DescriptorProto: name 1, nested_type 3, enum_type 4. */
static void walk_message(const uint8_t *d, size_t len, const char *scope, int file)
{
    const uint8_t *name;
    size_t n;
    char full[NAME_MAX_];
    if (!field1_name(d, len, &name, &n))
        return;
    add_symbol(scope, name, n, file, full);
    wire_t w = {d, d + len};
    uint32_t f;
    const uint8_t *data;
    size_t l;
    while (next_field(&w, &f, &data, &l)) {
        if (f == 3 && data != NULL)
            walk_message(data, l, full, file);
        else if (f == 4 && data != NULL && field1_name(data, l, &name, &n)) {
            char e[NAME_MAX_];
            add_symbol(full, name, n, file, e);
        }
    }
}

/* FileDescriptorProto: name 1, package 2, dependency 3, message_type 4, enum_type 5, service 6. */
static void walk_file(file_t *file, int index)
{
    char package[NAME_MAX_] = "";
    wire_t w = {file->data, file->data + file->len};
    uint32_t f;
    const uint8_t *data;
    size_t l;
    while (next_field(&w, &f, &data, &l)) {
        if (data == NULL)
            continue;
        if (f == 1)
            copy_str(file->name, data, l);
        else if (f == 2)
            copy_str(package, data, l);
        else if (f == 3 && file->n_deps < MAX_DEPS)
            copy_str(file->dep_names[file->n_deps++], data, l);
    }
    w = (wire_t){file->data, file->data + file->len};
    while (next_field(&w, &f, &data, &l)) {
        if (data == NULL)
            continue;
        const uint8_t *name;
        size_t n;
        char full[NAME_MAX_];
        if (f == 4) {
            walk_message(data, l, package, index);
        } else if (f == 5 && field1_name(data, l, &name, &n)) {
            add_symbol(package, name, n, index, full);
        } else if (f == 6 && field1_name(data, l, &name, &n)) {
            add_symbol(package, name, n, index, full);
            if (refl.n_services < 8)
                snprintf(refl.services[refl.n_services++], NAME_MAX_, "%s", full);
            /* methods: ServiceDescriptorProto field 2, MethodDescriptorProto name 1 */
            wire_t sw = {data, data + l};
            uint32_t sf;
            const uint8_t *md;
            size_t ml;
            while (next_field(&sw, &sf, &md, &ml)) {
                const uint8_t *mn;
                size_t mnl;
                char mfull[NAME_MAX_];
                if (sf == 2 && md != NULL && field1_name(md, ml, &mn, &mnl))
                    add_symbol(full, mn, mnl, index, mfull);
            }
        }
    }
}

static int find_file(const char *name)
{
    for (size_t i = 0; i < refl.n_files; i++)
        if (strcmp(refl.files[i].name, name) == 0)
            return (int)i;
    return -1;
}

static bool reflection_index(void)
{
    wire_t w = {eied_protoset, eied_protoset + eied_protoset_len};
    uint32_t f;
    const uint8_t *data;
    size_t l;
    while (next_field(&w, &f, &data, &l)) {
        if (f != 1 || data == NULL)
            continue;
        if (refl.n_files == MAX_FILES)
            return false;
        file_t *file = &refl.files[refl.n_files];
        file->data = data;
        file->len = l;
        walk_file(file, (int)refl.n_files);
        refl.n_files++;
    }
    for (size_t i = 0; i < refl.n_files; i++)
        for (size_t d = 0; d < refl.files[i].n_deps; d++)
            refl.files[i].deps[d] = find_file(refl.files[i].dep_names[d]);
    return refl.n_files > 0;
}

/* ---- the stream ------------------------------------------------------------ */

/* Adds file and its transitive dependencies (each once) to the list. */
static void collect(int file, bool *seen, ProtobufCBinaryData *out, size_t *n)
{
    if (file < 0 || seen[file])
        return;
    seen[file] = true;
    out[(*n)++] = (ProtobufCBinaryData){.len = refl.files[file].len,
                                        .data = (uint8_t *)refl.files[file].data};
    for (size_t d = 0; d < refl.files[file].n_deps; d++)
        collect(refl.files[file].deps[d], seen, out, n);
}

static void answer(eied_call_t *call, Grpc__Reflection__V1__ServerReflectionRequest *req);

static void on_next_message(eied_call_t *call, grpc_byte_buffer *msg);

static void after_recv(void *arg)
{
    eied_call_t *call = arg;
    grpc_byte_buffer *msg = call->user;
    call->user = NULL;
    if (msg == NULL) {
        eied_call_finish(call, EIE_STATUS_OK, NULL); /* client closed its side */
        eied_call_unref(call);                        /* the posted reference */
        return;
    }
    size_t len;
    ProtobufCMessage *req = eied_unpack_buffer(
        msg, &grpc__reflection__v1__server_reflection_request__descriptor, &len);
    if (req == NULL) {
        eied_call_finish(call, EIE_STATUS_INVALID_ARGUMENT,
                         "reflection request is not a valid ServerReflectionRequest");
    } else {
        answer(call, (Grpc__Reflection__V1__ServerReflectionRequest *)req);
        protobuf_c_message_free_unpacked(req, NULL);
    }
    eied_call_unref(call);
}

/* CQ thread: hand the next request to the loop. */
static void on_next_message(eied_call_t *call, grpc_byte_buffer *msg)
{
    eied_call_ref(call);
    call->user = msg;
    eied_server_post(call->srv, after_recv, call);
}

static void on_sent(eied_call_t *call, bool ok)
{
    if (!ok || !eied_call_recv(call, on_next_message)) {
        eied_call_ref(call);
        call->user = NULL;
        eied_server_post(call->srv, after_recv, call); /* ends the stream */
    }
}

static void answer(eied_call_t *call, Grpc__Reflection__V1__ServerReflectionRequest *req)
{
    Grpc__Reflection__V1__ServerReflectionResponse resp =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
    Grpc__Reflection__V1__FileDescriptorResponse fdr =
        GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;
    Grpc__Reflection__V1__ListServiceResponse lsr =
        GRPC__REFLECTION__V1__LIST_SERVICE_RESPONSE__INIT;
    Grpc__Reflection__V1__ServiceResponse svc[8];
    Grpc__Reflection__V1__ServiceResponse *svcp[8];
    Grpc__Reflection__V1__ExtensionNumberResponse enr =
        GRPC__REFLECTION__V1__EXTENSION_NUMBER_RESPONSE__INIT;
    Grpc__Reflection__V1__ErrorResponse er = GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;
    ProtobufCBinaryData files[MAX_FILES];
    bool seen[MAX_FILES] = {false};
    size_t n_files = 0;
    char msg[NAME_MAX_ + 64];

    resp.valid_host = req->host;
    resp.original_request = req;
    int file = -1;
    switch (req->message_request_case) {
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES: {
        /* the health-only port lists what it serves: health and reflection */
        bool health_port = call->listener != NULL && strcmp(call->listener->what, "health") == 0;
        size_t n = 0;
        for (size_t i = 0; i < refl.n_services; i++) {
            if (health_port && strncmp(refl.services[i], "grpc.health.", 12) != 0 &&
                strncmp(refl.services[i], "grpc.reflection.", 16) != 0)
                continue;
            grpc__reflection__v1__service_response__init(&svc[n]);
            svc[n].name = refl.services[i];
            svcp[n] = &svc[n];
            n++;
        }
        lsr.n_service = n;
        lsr.service = svcp;
        resp.message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
        resp.list_services_response = &lsr;
        break;
    }
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
        file = find_file(req->file_by_filename);
        if (file < 0)
            snprintf(msg, sizeof msg, "unknown file '%.256s'", req->file_by_filename);
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL: {
        const char *sym = req->file_containing_symbol;
        if (sym[0] == '.')
            sym++;
        for (size_t i = 0; i < refl.n_symbols && file < 0; i++)
            if (strcmp(refl.symbols[i].name, sym) == 0)
                file = refl.symbols[i].file;
        if (file < 0)
            snprintf(msg, sizeof msg, "unknown symbol '%.256s'", sym);
        break;
    }
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
        /* proto3 services here: no type has extensions */
        enr.base_type_name = req->all_extension_numbers_of_type;
        resp.message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
        resp.all_extension_numbers_response = &enr;
        break;
    default:
        snprintf(msg, sizeof msg, "%s", "extensions are not served");
        break;
    }
    if (file >= 0) {
        collect(file, seen, files, &n_files);
        fdr.n_file_descriptor_proto = n_files;
        fdr.file_descriptor_proto = files;
        resp.message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
        resp.file_descriptor_response = &fdr;
    } else if (resp.message_response_case ==
               GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE__NOT_SET) {
        er.error_code = GRPC_STATUS_NOT_FOUND;
        er.error_message = msg;
        resp.message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
        resp.error_response = &er;
    }
    if (!eied_call_send(call, &resp.base, on_sent))
        eied_call_finish(call, EIE_STATUS_INTERNAL, "reflection stream out of order");
}

static void on_reflection(eied_app_t *app, eied_call_t *call)
{
    (void)app;
    ProtobufCMessage *req =
        eied_call_read(call, &grpc__reflection__v1__server_reflection_request__descriptor);
    if (req == NULL)
        return;
    /* the handler's reference travels with the stream until it finishes */
    answer(call, (Grpc__Reflection__V1__ServerReflectionRequest *)req);
    protobuf_c_message_free_unpacked(req, NULL);
}

void eied_reflection_register(eied_app_t *app)
{
    if (!refl.ready) {
        refl.ready = reflection_index();
        if (!refl.ready) {
            eied_log(EIED_LOG_ERROR, "reflection: the built-in descriptor set is unreadable", NULL);
            return;
        }
    }
    static const eied_method_t v1 = {.path = "/grpc.reflection.v1.ServerReflection/"
                                             "ServerReflectionInfo",
                                     .handler = on_reflection};
    static const eied_method_t v1alpha = {.path = "/grpc.reflection.v1alpha.ServerReflection/"
                                                  "ServerReflectionInfo",
                                          .handler = on_reflection};
    /* on the health-only port too: grpcurl and ghz point at the probe port as well */
    eied_server_add_health_method(app->server, &v1);
    eied_server_add_health_method(app->server, &v1alpha);
}
