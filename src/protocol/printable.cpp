#include "ecu2mqtt/protocol/printable.hpp"

namespace ecu2mqtt {

std::string printable_text(std::string_view raw, bool keep_line_breaks, std::size_t max_shown) {
    std::string out;
    out.reserve(std::min(raw.size(), max_shown));
    append_printable_text(out, raw, keep_line_breaks, max_shown);
    return out;
}

void append_printable_text(std::string& out, std::string_view raw, bool keep_line_breaks,
                           std::size_t max_shown) {
    static constexpr char kHex[] = "0123456789abcdef";
    for (char c : raw.substr(0, max_shown)) {
        const auto u = static_cast<unsigned char>(c);
        if ((u >= 0x20 && u < 0x7f) || (keep_line_breaks && c == '\n')) {
            out += c;
        } else {
            out += "\\x";
            out += kHex[u >> 4];
            out += kHex[u & 0xf];
        }
    }
    if (raw.size() > max_shown)
        out += "...";
}

} // namespace ecu2mqtt
