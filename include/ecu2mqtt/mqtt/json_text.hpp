// JSON text written straight into a caller's std::string, byte for byte as nlohmann::json::dump()
// writes the same values (no indent, non-ASCII kept as UTF-8), without building a document.
//
// Serializer: hand-written, with nlohmann's own number digits. Keys and ASCII strings are copied
// with dump()'s escapes; non-ASCII strings are left to nlohmann. Numbers that are whole hundredths
// (all the decoder makes) are written directly, with the digits Grisu2 gives them (proof in
// json_text.cpp); any other double goes through nlohmann::detail::to_chars, the Grisu2 routine
// dump() itself calls. Keys are rendered at compile time (JsonKey). Measured side by side for one
// QS1 state payload (2-core machine, shared with other work): this writer 0.28-0.49 us;
// nlohmann's serializer into an output adapter, member by member, 1.5-1.6 us (it dumps json
// values, and every string value is a heap allocation); a document and dump() 3.6-6.0 us.
// std::to_chars was rejected: its shortest round-trip digits differ from Grisu2's for about 1.5%
// of doubles (77734751.57149825 against dump()'s 77734751.57149824).
#pragma once

#include <algorithm>
#include <array>
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

// A member name rendered at compile time as `,"name":`, so writing it is one append. The name
// needs no escaping.
class JsonKey {
  public:
    template <std::size_t N>
    consteval JsonKey(const char (&name)[N]) : JsonKey(std::string_view(name, N - 1)) {}

    consteval explicit JsonKey(std::string_view name) {
        if (name.size() + 4 > kCapacity)
            throw "JsonKey: name too long"; // a compile error, as this runs at compile time
        text_[0] = ',';
        text_[1] = '"';
        std::copy(name.begin(), name.end(), text_.begin() + 2);
        text_[name.size() + 2] = '"';
        text_[name.size() + 3] = ':';
        size_ = name.size() + 4;
    }

    // `"name":`, with the comma before it unless it is the object's first member.
    std::string_view text(bool first) const {
        return first ? std::string_view(text_.data() + 1, size_ - 1)
                     : std::string_view(text_.data(), size_);
    }

  private:
    static constexpr std::size_t kCapacity = 40;
    std::array<char, kCapacity> text_{};
    std::size_t size_ = 0;
};

// An object whose members are written in the order given. To match dump(), which keeps members
// sorted by key (std::map), give the keys in sorted order; each key at most once.
class JsonObjectWriter {
  public:
    explicit JsonObjectWriter(std::string& out) : out_(out) { out_ += '{'; }

    // Writes `"name":` and returns the buffer for the value.
    std::string& key(const JsonKey& name) {
        out_ += name.text(first_);
        first_ = false;
        return out_;
    }
    // `"<prefix><number><suffix>":`, e.g. "ch2_power_w". The parts need no escaping.
    std::string& key(std::string_view prefix, std::int64_t number, std::string_view suffix);

    void number(const JsonKey& name, double value) { append_json_number(key(name), value); }
    void integer(const JsonKey& name, std::int64_t value) { append_json_integer(key(name), value); }
    void string(const JsonKey& name, std::string_view value) {
        append_json_string(key(name), value);
    }
    void boolean(const JsonKey& name, bool value) { key(name) += value ? "true" : "false"; }
    void null(const JsonKey& name) { key(name) += "null"; }

    void close() { out_ += '}'; }

  private:
    std::string& out_;
    bool first_ = true;
};

} // namespace ecu2mqtt
