// C wrapper over sentencepiece::SentencePieceProcessor (see spm_wrapper.h).
#include "spm_wrapper.h"

#include <sentencepiece_processor.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <vector>

struct spm_processor {
    sentencepiece::SentencePieceProcessor sp;
};

static void put_msg(char *msg, size_t cap, const char *what) {
    if (msg && cap) std::snprintf(msg, cap, "%s", what);
}

// Runs body() with every C++ exception turned into a message and a 1.
template <typename F> static int guarded(char *msg, size_t cap, F body) {
    try {
        return body();
    } catch (const std::exception &e) {
        put_msg(msg, cap, e.what());
    } catch (...) {
        put_msg(msg, cap, "unknown C++ exception");
    }
    return 1;
}

// A NUL-terminated malloc'd copy (C callers free it).
static char *c_copy(const std::string &s) {
    char *c = static_cast<char *>(std::malloc(s.size() + 1));
    if (c) {
        std::memcpy(c, s.data(), s.size());
        c[s.size()] = 0;
    }
    return c;
}

extern "C" int spm_load(const void *proto, size_t len, spm_processor **out, char *msg, size_t msg_cap) {
    *out = nullptr;
    return guarded(msg, msg_cap, [&] {
        spm_processor *p = new spm_processor();
        auto st = p->sp.LoadFromSerializedProto(absl::string_view(static_cast<const char *>(proto), len));
        if (!st.ok()) {
            put_msg(msg, msg_cap, st.ToString().c_str());
            delete p;
            return 1;
        }
        *out = p;
        return 0;
    });
}

extern "C" void spm_free(spm_processor *p) {
    delete p;
}

extern "C" int spm_piece_count(const spm_processor *p) { return p->sp.GetPieceSize(); }
extern "C" int spm_bos_id(const spm_processor *p) { return p->sp.bos_id(); }
extern "C" int spm_eos_id(const spm_processor *p) { return p->sp.eos_id(); }
extern "C" int spm_unk_id(const spm_processor *p) { return p->sp.unk_id(); }

extern "C" int spm_piece(const spm_processor *p, int id, char **out) {
    *out = nullptr;
    if (id < 0 || id >= p->sp.GetPieceSize()) return 1;
    return guarded(nullptr, 0, [&] { return (*out = c_copy(p->sp.IdToPiece(id))) ? 0 : 1; });
}

extern "C" int spm_piece_kind(const spm_processor *p, int id) {
    if (p->sp.IsUnknown(id)) return SPM_UNKNOWN;
    if (p->sp.IsControl(id)) return SPM_CONTROL;
    if (p->sp.IsByte(id)) return SPM_BYTE;
    if (p->sp.IsUnused(id)) return SPM_UNUSED;
    return SPM_NORMAL;
}

extern "C" int spm_encode(const spm_processor *p, const char *text, size_t len, int **ids, size_t *n, char *msg,
                          size_t msg_cap) {
    *ids = nullptr;
    *n = 0;
    return guarded(msg, msg_cap, [&] {
        std::vector<int> v;
        auto st = p->sp.Encode(absl::string_view(text, len), &v);
        if (!st.ok()) {
            put_msg(msg, msg_cap, st.ToString().c_str());
            return 1;
        }
        int *a = static_cast<int *>(std::malloc((v.size() + 1) * sizeof(int)));
        if (!a) {
            put_msg(msg, msg_cap, "out of memory");
            return 1;
        }
        if (!v.empty()) std::memcpy(a, v.data(), v.size() * sizeof(int));
        *ids = a;
        *n = v.size();
        return 0;
    });
}

extern "C" int spm_piece_span(const spm_processor *p, const char *text, size_t len, size_t index, size_t *begin,
                              size_t *end, char *msg, size_t msg_cap) {
    *begin = *end = 0;
    return guarded(msg, msg_cap, [&] {
        auto spt = p->sp.EncodeAsImmutableProto(absl::string_view(text, len));
        if (index >= spt.pieces_size()) {
            put_msg(msg, msg_cap, "piece index out of range");
            return 1;
        }
        auto piece = spt.pieces(static_cast<int>(index));
        *begin = piece.begin();
        *end = piece.end();
        return 0;
    });
}

extern "C" int spm_decode(const spm_processor *p, const int *ids, size_t n, char **text, size_t *len, char *msg,
                          size_t msg_cap) {
    *text = nullptr;
    *len = 0;
    return guarded(msg, msg_cap, [&] {
        std::string s;
        auto st = p->sp.Decode(std::vector<int>(ids, ids + n), &s);
        if (!st.ok()) {
            put_msg(msg, msg_cap, st.ToString().c_str());
            return 1;
        }
        if (!(*text = c_copy(s))) {
            put_msg(msg, msg_cap, "out of memory");
            return 1;
        }
        *len = s.size();
        return 0;
    });
}
