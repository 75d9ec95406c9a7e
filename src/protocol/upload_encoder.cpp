#include "ecu2mqtt/protocol/upload_encoder.hpp"

#include <cstdio>

namespace ecu2mqtt {
namespace {

std::string block(const InverterSpec& inv) {
    std::string out = "END" + inv.uid + inv.field_15_20 + zero_padded(inv.decihertz, 5) +
                      zero_padded(inv.celsius + 100, 3) + inv.field_28_48;
    int number = 1;
    for (const auto& ch : inv.channels)
        out += std::to_string(number++) + zero_padded(ch.decivolts, 5) +
               zero_padded(ch.centiamps, 4) + zero_padded(ch.energy_mwh, 5) +
               zero_padded(ch.watts, 3) + ch.tail;
    return out;
}

} // namespace

std::string zero_padded(long long value, int width) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%0*lld", width, value);
    return buf;
}

std::string encode_upload(const UploadSpec& spec) {
    const long long online = spec.inverters_online < 0
                                 ? static_cast<long long>(spec.inverters.size())
                                 : spec.inverters_online;
    std::string body = spec.field_10_18 + spec.ecu_id + zero_padded(spec.centiwatts, 12) +
                       zero_padded(spec.decikwh, 18) + spec.timestamp + zero_padded(online, 3) +
                       spec.field_77_83;
    for (const auto& inv : spec.inverters)
        body += block(inv);
    body += "END\n";
    // Length field: total length minus one, left-padded with 'A' to 5 characters.
    std::string length = std::to_string(5 + 5 + body.size() - 1);
    length.insert(0, 5 - length.size(), 'A');
    return "APS18" + length + body;
}

} // namespace ecu2mqtt
