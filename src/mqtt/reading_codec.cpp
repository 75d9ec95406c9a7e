#include "ecu2mqtt/mqtt/reading_codec.hpp"

#include <cstdint>

namespace ecu2mqtt {
namespace {

constexpr char kFormat = 'M'; // format 1

void put_length(std::string& out, std::size_t length) {
    for (int shift = 0; shift < 32; shift += 8)
        out += static_cast<char>((length >> shift) & 0xff);
}

std::optional<std::string_view> take(std::string_view& in) {
    if (in.size() < 4)
        return std::nullopt;
    std::uint32_t length = 0;
    for (int i = 0; i < 4; ++i)
        length |= std::uint32_t(static_cast<unsigned char>(in[static_cast<std::size_t>(i)]))
                  << (8 * i);
    in.remove_prefix(4);
    if (in.size() < length)
        return std::nullopt;
    const auto field = in.substr(0, length);
    in.remove_prefix(length);
    return field;
}

} // namespace

std::string encode_reading(const std::vector<OutgoingMessage>& messages) {
    std::size_t size = 1;
    for (const auto& m : messages)
        size += 9 + m.topic.size() + m.payload.size();
    std::string out;
    out.reserve(size);
    out += kFormat;
    for (const auto& m : messages) {
        out += m.retain ? '\1' : '\0';
        put_length(out, m.topic.size());
        out += m.topic;
        put_length(out, m.payload.size());
        out += m.payload;
    }
    return out;
}

std::optional<std::vector<OutgoingMessage>> decode_reading(std::string_view record) {
    if (record.empty() || record.front() != kFormat)
        return std::nullopt;
    record.remove_prefix(1);
    std::vector<OutgoingMessage> messages;
    while (!record.empty()) {
        const char retain = record.front();
        if (retain != '\0' && retain != '\1')
            return std::nullopt;
        record.remove_prefix(1);
        const auto topic = take(record);
        if (!topic)
            return std::nullopt;
        const auto payload = take(record);
        if (!payload)
            return std::nullopt;
        messages.push_back({std::string(*topic), std::string(*payload), retain == '\1'});
    }
    return messages;
}

} // namespace ecu2mqtt
