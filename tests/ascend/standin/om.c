/* The fake ATC's container: a short text header, then the ONNX graph it was given:
 *   DBRT-STANDIN-OM 1 / soc_version V / input_shape S / dynamic_dims D / precision_mode M|- /
 *   onnx N, then N bytes.
 * The stand-in runs only dbrt's encoder shape: input_shape "hidden:1,-1,H;mask:1,-1", each gear
 * giving one sequence length to both -1s. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

#define MAX_LINE 4096

/* Copies the next '\n'-terminated line at *pos into line (without '\n'). */
static int next_line(const char *bytes, size_t size, size_t *pos, char *line) {
    size_t start = *pos, end = start;
    while (end < size && bytes[end] != '\n' && end - start < MAX_LINE - 1) end++;
    if (end >= size || bytes[end] != '\n') return -1;
    memcpy(line, bytes + start, end - start);
    line[end - start] = 0;
    *pos = end + 1;
    return 0;
}

/* The value after "key " on a line, or NULL. */
static const char *value_of(const char *line, const char *key) {
    size_t n = strlen(key);
    if (strncmp(line, key, n) != 0 || line[n] != ' ' || !line[n + 1]) return NULL;
    return line + n + 1;
}

static int parse_int(const char **s, int64_t *out) {
    char *end;
    long long v = strtoll(*s, &end, 10);
    if (end == *s) return -1;
    *s = end;
    *out = v;
    return 0;
}

static aclError bad(const char *what, const char *why) {
    return fail(ACL_ERROR_PARSE_MODEL, "%s: not a model the stand-in can read: %s", what, why);
}

static aclError parse_shapes(const char *v, struct om *om, const char *what) {
    int64_t one, minus, h, one2, minus2;
    const char *s = v;
    if (strncmp(s, "hidden:", 7) != 0) return bad(what, "input_shape must start with hidden:");
    s += 7;
    if (parse_int(&s, &one) || *s++ != ',' || parse_int(&s, &minus) || *s++ != ',' ||
        parse_int(&s, &h) || strncmp(s, ";mask:", 6) != 0)
        return bad(what, "input_shape is not hidden:1,-1,H;mask:1,-1");
    s += 6;
    if (parse_int(&s, &one2) || *s++ != ',' || parse_int(&s, &minus2) || *s)
        return bad(what, "input_shape is not hidden:1,-1,H;mask:1,-1");
    if (one != 1 || one2 != 1 || minus != -1 || minus2 != -1 || h < 1 || h > 65536)
        return bad(what, "input_shape is not hidden:1,-1,H;mask:1,-1 with 1 <= H <= 65536");
    om->hidden = h;
    return ACL_SUCCESS;
}

static aclError parse_gears(const char *v, struct om *om, const char *what) {
    const char *s = v;
    om->gear_count = 0;
    om->largest = 0;
    for (;;) {
        int64_t a, b;
        if (parse_int(&s, &a) || *s++ != ',' || parse_int(&s, &b))
            return bad(what, "dynamic_dims is not g,g;g,g;...");
        if (a != b || a < 1 || a > 65536)
            return bad(what, "each gear must give one length in 1..65536 to hidden and mask");
        if (om->gear_count == MAX_GEARS) return bad(what, "more than 100 gears");
        for (size_t i = 0; i < om->gear_count; i++)
            if (om->gears[i] == a) return bad(what, "a gear given twice");
        om->gears[om->gear_count++] = a;
        if (a > om->largest) om->largest = a;
        if (!*s) break;
        if (*s++ != ';') return bad(what, "dynamic_dims is not g,g;g,g;...");
    }
    if (om->gear_count < 2) return bad(what, "fewer than 2 gears");
    return ACL_SUCCESS;
}

aclError om_parse(const void *model, size_t size, struct om *om, const char *what) {
    const char *bytes = model;
    char line[MAX_LINE];
    size_t pos = 0;
    const char *v;
    aclError rc;
    memset(om, 0, sizeof *om);
    if (next_line(bytes, size, &pos, line) || strcmp(line, "DBRT-STANDIN-OM 1") != 0)
        return bad(what, "no 'DBRT-STANDIN-OM 1' header");
    if (next_line(bytes, size, &pos, line) || !(v = value_of(line, "soc_version")) ||
        strlen(v) >= sizeof om->soc_version)
        return bad(what, "no soc_version line");
    strcpy(om->soc_version, v);
    if (next_line(bytes, size, &pos, line) || !(v = value_of(line, "input_shape")))
        return bad(what, "no input_shape line");
    if ((rc = parse_shapes(v, om, what)) != ACL_SUCCESS) return rc;
    if (next_line(bytes, size, &pos, line) || !(v = value_of(line, "dynamic_dims")))
        return bad(what, "no dynamic_dims line");
    if ((rc = parse_gears(v, om, what)) != ACL_SUCCESS) return rc;
    if (next_line(bytes, size, &pos, line) || !value_of(line, "precision_mode"))
        return bad(what, "no precision_mode line");
    int64_t n;
    if (next_line(bytes, size, &pos, line) || !(v = value_of(line, "onnx")) || parse_int(&v, &n) ||
        *v || n < 1)
        return bad(what, "no onnx line");
    if ((uint64_t)n != size - pos) return bad(what, "the onnx length is not the bytes that follow");
    om->onnx = (const unsigned char *)bytes + pos;
    om->onnx_len = (size_t)n;
    return ACL_SUCCESS;
}

static size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

/* Work memory: what the largest gear's activations would need (a few [S,H] planes). */
size_t om_work_size(const struct om *om) {
    return round_up((size_t)om->largest * (size_t)(om->hidden + 1) * sizeof(float) * 16, 4096);
}

size_t om_weight_size(const struct om *om) { return round_up(om->onnx_len, 4096); }

/* Sizes of the largest gear, as AscendCL reports a dynamic-dims model's inputs. The gear input
 * holds the gear's dims as uint64_t (the stand-in's layout; AscendCL's is internal). */
size_t om_input_size(const struct om *om, size_t index) {
    switch (index) {
    case 0: return (size_t)om->largest * (size_t)om->hidden * sizeof(float);
    case 1: return (size_t)om->largest * sizeof(float);
    case GEAR_INPUT: return GEAR_DIMS * sizeof(uint64_t);
    default: return 0;
    }
}

size_t om_output_size(const struct om *om) { return om_input_size(om, 0); }

int64_t om_match_gear(const struct om *om, const int64_t *dims, size_t count) {
    if (count != GEAR_DIMS) return 0;
    for (size_t i = 0; i < om->gear_count; i++) {
        int64_t g = om->gears[i];
        if (dims[0] == 1 && dims[1] == g && dims[2] == om->hidden && dims[3] == 1 && dims[4] == g)
            return g;
    }
    return 0;
}

uint32_t crc32_bytes(const void *data, size_t len) {
    static uint32_t table[256];
    if (!table[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
    const unsigned char *p = data;
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return crc ^ 0xFFFFFFFFu;
}
