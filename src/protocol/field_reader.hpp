// The decoder's reading tools: field tables (offset, width, scale), digit parsing, and a reader
// that keeps the first thing that did not fit, with texts composed without allocating. Private to
// src/protocol/decoder.cpp.
#pragma once

#include "ecu2mqtt/protocol/decoder.hpp"
#include "ecu2mqtt/protocol/printable.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <concepts>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ecu2mqtt::decoding {

template <class Target> struct ScaledField {
    std::size_t offset;
    std::size_t width;
    std::string_view what;
    double divisor; // value = digits / divisor + bias; dividing keeps 338 / 10 printing as 33.8
    double bias;
    double Target::*member;
};

struct UnknownSpan {
    std::size_t offset;
    std::size_t width;
    std::string_view key; // "bytes_<offset>_<offset + width>", checked below
};

inline bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

inline bool all_digits(std::string_view s) {
    if (s.empty())
        return false;
    for (char c : s)
        if (!is_digit(c))
            return false;
    return true;
}

// The `width` digits of `message` from `at` (1 to 19 of them), checked and added up in one pass:
// every number of every record goes through here. False if one is not a digit. (Eight digits
// at a time in one 64-bit word was measured slower for these fields of 1 to 5 digits.)
inline bool parse_digits(std::string_view message, std::size_t at, std::size_t width,
                         std::uint64_t& value) {
    value = 0;
    for (std::size_t i = at; i < at + width; ++i) {
        const auto digit = static_cast<std::uint64_t>(static_cast<unsigned char>(message[i])) - '0';
        if (digit > 9)
            return false;
        value = value * 10 + digit;
    }
    return width > 0;
}

// ---- Texts the decoder writes (errors and notes): composed from pieces in a reused buffer and
// kept in the result's arena, so that even a message full of notes allocates only while the
// buffers grow.

struct Excerpt { // a short, escaped excerpt of what was found
    std::string_view raw;
};
struct FixedPoint { // a double as std::to_string writes it ("%f")
    double value;
};

inline void append_piece(std::string& out, std::string_view text) {
    out += text;
}
inline void append_piece(std::string& out, const char* text) {
    out += text;
}
void append_piece(std::string& out, std::integral auto number) {
    char buf[24];
    const auto end = std::to_chars(buf, buf + sizeof buf, number).ptr;
    out.append(buf, end);
}
inline void append_piece(std::string& out, Excerpt excerpt) {
    append_printable_text(out, excerpt.raw, false, 24);
}
inline void append_piece(std::string& out, FixedPoint number) {
    char buf[512]; // "%f" of the largest double is 316 characters
    const int n = std::snprintf(buf, sizeof buf, "%f", number.value);
    out.append(buf, static_cast<std::size_t>(std::clamp(n, 0, static_cast<int>(sizeof buf) - 1)));
}

class TextWriter {
  public:
    TextWriter(std::string& scratch, TextArena& arena) : scratch_(scratch), arena_(arena) {}

    template <class... Pieces> std::string_view write(const Pieces&... pieces) {
        scratch_.clear();
        (append_piece(scratch_, pieces), ...);
        return arena_.keep(scratch_);
    }

  private:
    std::string& scratch_;
    TextArena& arena_;
};

// The first thing that did not fit in the part being read.
struct Failure {
    bool failed = false;
    std::size_t offset = 0;
    std::string_view reason;
};

// Reads fixed-width fields out of one part of the message. The first failure is kept with its
// absolute offset; later reads after a failure return zero values and are ignored.
class FieldReader {
  public:
    FieldReader(std::string_view message, std::size_t base, std::size_t part_size, Failure& failure,
                TextWriter& writer)
        : message_(message), base_(base), part_size_(part_size), failure_(failure),
          writer_(writer) {}

    std::string_view text(std::size_t offset, std::size_t width, std::string_view what) {
        if (failure_.failed)
            return {};
        if (offset + width > part_size_) [[unlikely]] {
            missing(offset, width, what);
            return {};
        }
        return message_.substr(base_ + offset, width);
    }

    std::string_view digits(std::size_t offset, std::size_t width, std::string_view what) {
        std::uint64_t ignored;
        return number(offset, width, what, ignored);
    }

    // The digits' value; zero after a failure.
    long long integer(std::size_t offset, std::size_t width, std::string_view what) {
        std::uint64_t value = 0;
        number(offset, width, what, value);
        return static_cast<long long>(value);
    }

    template <class Target, std::size_t N>
    void scaled(const std::array<ScaledField<Target>, N>& fields, Target& target) {
        for (const auto& f : fields) {
            const auto raw = static_cast<double>(integer(f.offset, f.width, f.what));
            target.*f.member = raw / f.divisor + f.bias;
        }
    }

    // Unknown fields are not checked to be digits: their meaning is unknown.
    template <std::size_t N>
    void unknown(const std::array<UnknownSpan, N>& spans, std::vector<UnknownFieldView>& out) {
        for (const auto& s : spans)
            out.push_back({s.key, text(s.offset, s.width, "an unknown field")});
    }

    template <class... Pieces> void fail(std::size_t offset, const Pieces&... pieces) {
        if (!failure_.failed)
            failure_ = {true, base_ + offset, writer_.write(pieces...)};
    }

  private:
    // The field, checked to be digits, and their value; an empty field and zero after a failure.
    std::string_view number(std::size_t offset, std::size_t width, std::string_view what,
                            std::uint64_t& value) {
        const auto field = text(offset, width, what);
        if (failure_.failed) {
            value = 0;
            return {};
        }
        if (!parse_digits(message_, base_ + offset, width, value)) [[unlikely]] {
            not_digits(offset, width, what, field);
            value = 0;
            return {};
        }
        return field;
    }

    [[gnu::cold, gnu::noinline]] void missing(std::size_t offset, std::size_t width,
                                              std::string_view what) {
        fail(offset, "expected ", what, " (", width, " bytes), found the end of the part");
    }

    [[gnu::cold, gnu::noinline]] void not_digits(std::size_t offset, std::size_t width,
                                                 std::string_view what, std::string_view field) {
        fail(offset, "expected ", width, " digits (", what, "), found \"", Excerpt{field}, "\"");
    }

  private:
    std::string_view message_;
    std::size_t base_;
    std::size_t part_size_;
    Failure& failure_;
    TextWriter& writer_;
};

// `AA302` -> 302: the length field is left-padded with `A`.
inline std::optional<long long> parse_a_padded(std::string_view field) {
    std::size_t i = 0;
    while (i < field.size() && field[i] == 'A')
        ++i;
    const auto number = field.substr(i);
    if (!all_digits(number))
        return std::nullopt;
    long long value = 0;
    for (char c : number)
        value = value * 10 + (c - '0');
    return value;
}

} // namespace ecu2mqtt::decoding
