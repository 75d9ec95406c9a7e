// JSON text written straight into a caller's std::string, byte for byte as nlohmann::json::dump()
// writes the same values (no indent, non-ASCII kept as UTF-8), without building a document.
//
// Serializer: hand-written, with nlohmann's own number digits. Keys and ASCII strings are copied
// with dump()'s escapes; non-ASCII strings are left to nlohmann. Numbers that are whole hundredths
// (all the decoder makes) are written directly, with the digits Grisu2 gives them (proof in
// json_text.cpp); any other double goes through nlohmann::detail::to_chars, the Grisu2 routine
// dump() itself calls. Measured side by side for one QS1 state payload (2-core machine, shared):
// this writer 0.37-0.82 us; nlohmann's serializer into an output adapter, member by member, about
// 2.4 times as long (it dumps json values, and every string value is a heap allocation); a
// document and dump() about 9 times. std::to_chars was rejected: its shortest round-trip digits
// differ from Grisu2's for about 1.5% of doubles (77734751.57149825 against dump()'s
// 77734751.57149824).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ecu2mqtt {

// A number as dump() writes a number_float: "33.8", "190.0", "1e+16"; null for NaN and infinity.
void append_json_number(std::string& out, double value);
void append_json_integer(std::string& out, std::int64_t value);
// A quoted string. Text that is not ASCII is written by nlohmann itself, which throws
// json::type_error 316 on invalid UTF-8, as dump() does.
void append_json_string(std::string& out, std::string_view text);

// An object whose members are written in the order given. To match dump(), which keeps members
// sorted by key (std::map), give the keys in sorted order; each key at most once.
class JsonObjectWriter {
  public:
    explicit JsonObjectWriter(std::string& out) : out_(out) { out_ += '{'; }

    // Writes `"name":` and returns the buffer for the value. `name` needs no escaping.
    std::string& key(std::string_view name) {
        separate();
        out_ += '"';
        out_ += name;
        out_ += "\":";
        return out_;
    }
    // `"<prefix><number><suffix>":`, e.g. "ch2_power_w".
    std::string& key(std::string_view prefix, std::int64_t number, std::string_view suffix);

    void number(std::string_view name, double value) { append_json_number(key(name), value); }
    void integer(std::string_view name, std::int64_t value) {
        append_json_integer(key(name), value);
    }
    void string(std::string_view name, std::string_view value) {
        append_json_string(key(name), value);
    }
    void boolean(std::string_view name, bool value) { key(name) += value ? "true" : "false"; }
    void null(std::string_view name) { key(name) += "null"; }

    void close() { out_ += '}'; }

  private:
    void separate() {
        if (!first_)
            out_ += ',';
        first_ = false;
    }

    std::string& out_;
    bool first_ = true;
};

} // namespace ecu2mqtt
