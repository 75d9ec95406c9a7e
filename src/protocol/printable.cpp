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
    const auto shown = raw.substr(0, max_shown);
    const auto kept = [keep_line_breaks](char c) {
        const auto u = static_cast<unsigned char>(c);
        return (u >= 0x20 && u < 0x7f) || (keep_line_breaks && c == '\n');
    };
    // Runs of kept bytes are appended whole: almost every byte of an upload is one.
    std::size_t from = 0;
    while (from < shown.size()) {
        std::size_t to = from;
        while (to < shown.size() && kept(shown[to]))
            ++to;
        out.append(shown.data() + from, to - from);
        if (to == shown.size())
            break;
        const auto u = static_cast<unsigned char>(shown[to]);
        out += "\\x";
        out += kHex[u >> 4];
        out += kHex[u & 0xf];
        from = to + 1;
    }
    if (raw.size() > max_shown)
        out += "...";
}

} // namespace ecu2mqtt
