#include "ecu2mqtt/protocol/dns_message.hpp"

#include <stdexcept>

namespace ecu2mqtt {
namespace {

constexpr std::uint16_t kTypeA = 1, kClassIn = 1;

void put16(std::vector<std::uint8_t>& out, std::uint16_t v) {
    out.push_back(static_cast<std::uint8_t>(v >> 8));
    out.push_back(static_cast<std::uint8_t>(v & 0xff));
}

// Reads within bounds; a read past the end marks the reader failed and returns 0.
struct Reader {
    const std::vector<std::uint8_t>& p;
    std::size_t at = 0;
    bool failed = false;

    std::uint16_t u16() {
        if (at + 2 > p.size()) {
            failed = true;
            return 0;
        }
        const auto v = static_cast<std::uint16_t>(p[at] << 8 | p[at + 1]);
        at += 2;
        return v;
    }
    void skip(std::size_t n) {
        if (at + n > p.size())
            failed = true;
        else
            at += n;
    }
    // Names are skipped, not decoded: a compression pointer ends a name.
    void skip_name() {
        while (!failed) {
            if (at >= p.size()) {
                failed = true;
                return;
            }
            const std::uint8_t len = p[at];
            if ((len & 0xc0) == 0xc0) {
                skip(2);
                return;
            }
            skip(1u + len);
            if (len == 0)
                return;
        }
    }
};

} // namespace

std::vector<std::uint8_t> dns_a_query(std::uint16_t id, std::string_view name) {
    std::vector<std::uint8_t> out;
    put16(out, id);
    put16(out, 0x0100); // standard query, recursion desired
    put16(out, 1);      // one question
    put16(out, 0);
    put16(out, 0);
    put16(out, 0);
    std::size_t start = 0;
    if (name.empty() || name.size() > 253)
        throw std::invalid_argument("bad host name \"" + std::string(name) + "\"");
    while (start <= name.size()) {
        const auto dot = name.find('.', start);
        const auto label = name.substr(start, dot == std::string_view::npos ? std::string_view::npos
                                                                            : dot - start);
        if (label.empty() || label.size() > 63)
            throw std::invalid_argument("bad host name \"" + std::string(name) + "\"");
        out.push_back(static_cast<std::uint8_t>(label.size()));
        out.insert(out.end(), label.begin(), label.end());
        if (dot == std::string_view::npos)
            break;
        start = dot + 1;
    }
    out.push_back(0);
    put16(out, kTypeA);
    put16(out, kClassIn);
    return out;
}

std::vector<std::array<std::uint8_t, 4>> dns_a_answers(std::uint16_t id,
                                                       const std::vector<std::uint8_t>& packet) {
    std::vector<std::array<std::uint8_t, 4>> addresses;
    Reader r{packet};
    if (r.u16() != id)
        return addresses;
    const std::uint16_t flags = r.u16();
    if (!(flags & 0x8000) || (flags & 0x000f) != 0) // not a response, or an error code
        return addresses;
    const std::uint16_t questions = r.u16();
    const std::uint16_t answers = r.u16();
    r.u16();
    r.u16();
    for (std::uint16_t q = 0; q < questions && !r.failed; ++q) {
        r.skip_name();
        r.skip(4);
    }
    for (std::uint16_t a = 0; a < answers && !r.failed; ++a) {
        r.skip_name();
        const std::uint16_t type = r.u16();
        const std::uint16_t cls = r.u16();
        r.skip(4); // TTL
        const std::uint16_t length = r.u16();
        if (r.failed || r.at + length > packet.size())
            break;
        if (type == kTypeA && cls == kClassIn && length == 4)
            addresses.push_back(
                {packet[r.at], packet[r.at + 1], packet[r.at + 2], packet[r.at + 3]});
        r.skip(length);
    }
    return addresses;
}

} // namespace ecu2mqtt
