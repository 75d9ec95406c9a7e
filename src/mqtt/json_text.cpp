#include "ecu2mqtt/mqtt/json_text.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>

namespace ecu2mqtt {
namespace {

// Every number the decoder makes is digits / 1, 10 or 100 (+ a whole bias): a whole number of
// hundredths. Those are written here without Grisu2, with the digits Grisu2 finds for them:
// if value is the double nearest to D = n / 100, with |n| < 10^15, then D has at most 15
// significant digits, so no other decimal as short lies within value's rounding interval (which
// is narrower than 10^-15 of value), and Grisu2 returns the shortest decimal in that interval. It
// looks only in a slightly narrowed interval (by about 2^-10 of a unit in the last place), and D
// is always well inside: n / 100 in units of a power of two below 1/4 has a fractional part that
// is a multiple of 1/25, so D is never closer than 1/50 of a unit to a boundary of the interval.
// tests/mqtt/test_payload_text.cpp compares the two for every hundredth within +-10,000 and
// millions of others up to 10^13.
bool append_hundredths(std::string& out, double value) {
    if (!(std::abs(value) < 1e13) || value == 0) // NaN fails the first test; -0 has no digits
        return false;
    const double scaled = value * 100;
    const auto n = static_cast<std::int64_t>(scaled < 0 ? scaled - 0.5 : scaled + 0.5);
    if (static_cast<double>(n) / 100 != value)
        return false;
    const std::uint64_t magnitude = n < 0 ? static_cast<std::uint64_t>(-n) : n;
    char buf[24];
    char* end = buf;
    if (n < 0)
        *end++ = '-';
    end = std::to_chars(end, buf + sizeof buf, magnitude / 100).ptr;
    *end++ = '.';
    // dump() keeps at least one digit after the point, and no trailing zero after that.
    const auto hundredths = static_cast<unsigned>(magnitude % 100);
    *end++ = static_cast<char>('0' + hundredths / 10);
    if (hundredths % 10 != 0)
        *end++ = static_cast<char>('0' + hundredths % 10);
    out.append(buf, end);
    return true;
}

} // namespace

void append_json_number(std::string& out, double value) {
    if (!std::isfinite(value)) {
        out += "null";
        return;
    }
    if (append_hundredths(out, value))
        return;
    char buf[64]; // the size of dump()'s own number buffer
    char* end = nlohmann::detail::to_chars(buf, buf + sizeof buf, value);
    out.append(buf, end);
}

void append_json_integer(std::string& out, std::int64_t value) {
    char buf[24];
    char* end = std::to_chars(buf, buf + sizeof buf, value).ptr;
    out.append(buf, end);
}

void append_json_string(std::string& out, std::string_view text) {
    static constexpr char kHex[] = "0123456789abcdef";
    bool plain = true; // nothing to escape
    for (char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (u >= 0x80) {
            out += nlohmann::json(std::string(text)).dump();
            return;
        }
        plain = plain && u >= 0x20 && c != '"' && c != '\\';
    }
    if (plain && text.size() <= 126) { // the usual case, appended once
        char buf[128];
        buf[0] = '"';
        char* end = std::copy(text.begin(), text.end(), buf + 1);
        *end++ = '"';
        out.append(buf, end);
        return;
    }
    out += '"';
    std::size_t plain_from = 0; // the run of bytes that need no escape, copied in one go
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        const char* escape = nullptr;
        switch (c) {
        case '"':
            escape = "\\\"";
            break;
        case '\\':
            escape = "\\\\";
            break;
        case '\b':
            escape = "\\b";
            break;
        case '\f':
            escape = "\\f";
            break;
        case '\n':
            escape = "\\n";
            break;
        case '\r':
            escape = "\\r";
            break;
        case '\t':
            escape = "\\t";
            break;
        default:
            if (static_cast<unsigned char>(c) >= 0x20)
                continue;
        }
        out.append(text.substr(plain_from, i - plain_from));
        plain_from = i + 1;
        if (escape) {
            out += escape;
        } else {
            out += "\\u00";
            out += kHex[(c >> 4) & 0xf];
            out += kHex[c & 0xf];
        }
    }
    out.append(text.substr(plain_from));
    out += '"';
}

std::string& JsonObjectWriter::key(std::string_view prefix, std::int64_t number,
                                   std::string_view suffix) {
    // Composed on the stack and appended once: most of a payload's keys are channel keys.
    char buf[128];
    constexpr std::size_t kPunctuationAndNumber = 4 + 20;
    if (prefix.size() + suffix.size() + kPunctuationAndNumber > sizeof buf) {
        out_ += first_ ? "\"" : ",\"";
        out_ += prefix;
        append_json_integer(out_, number);
        out_ += suffix;
        out_ += "\":";
        first_ = false;
        return out_;
    }
    char* at = buf;
    if (!first_)
        *at++ = ',';
    first_ = false;
    *at++ = '"';
    at = std::copy(prefix.begin(), prefix.end(), at);
    at = std::to_chars(at, buf + sizeof buf, number).ptr;
    at = std::copy(suffix.begin(), suffix.end(), at);
    *at++ = '"';
    *at++ = ':';
    out_.append(buf, at);
    return out_;
}

} // namespace ecu2mqtt
