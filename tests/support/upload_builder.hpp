// Builds APS18 uploads from values, following the layout table in the README's protocol section.
// Written independently of the decoder; tests check it reproduces the real capture byte for byte.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

namespace test {

struct ChannelSpec {
    int decivolts = 0;     // 338 -> 33.8 V
    int centiamps = 0;     // 50 -> 0.50 A
    int energy_mwh = 0;    // bytes 10-15, meaning inferred
    int watts = 0;
    std::string tail = "00"; // bytes 18-20, unknown
};

struct InverterSpec {
    std::string uid;
    int decihertz = 500;
    int celsius = 20;
    std::vector<ChannelSpec> channels;
    std::string field_15_20 = "07228";
    std::string field_28_48 = "00000000000000000000";
};

struct UploadSpec {
    std::string ecu_id = "216000064136";
    long long centiwatts = 0;
    long long decikwh = 0;
    std::string timestamp = "20240206112214";
    int inverters_online = -1; // -1: the number of inverters
    std::vector<InverterSpec> inverters;
    std::string field_10_18 = "AAAAAAA1";
    std::string field_77_83 = "000000";
};

inline std::string zero_padded(long long value, int width) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%0*lld", width, value);
    return buf;
}

inline std::string block(const InverterSpec& inv) {
    std::string out = "END" + inv.uid + inv.field_15_20 + zero_padded(inv.decihertz, 5) +
                      zero_padded(inv.celsius + 100, 3) + inv.field_28_48;
    int number = 1;
    for (const auto& ch : inv.channels)
        out += std::to_string(number++) + zero_padded(ch.decivolts, 5) +
               zero_padded(ch.centiamps, 4) + zero_padded(ch.energy_mwh, 5) +
               zero_padded(ch.watts, 3) + ch.tail;
    return out;
}

inline std::string build_upload(const UploadSpec& spec) {
    std::string body = spec.field_10_18 + spec.ecu_id + zero_padded(spec.centiwatts, 12) +
                       zero_padded(spec.decikwh, 18) + spec.timestamp +
                       zero_padded(spec.inverters_online < 0
                                       ? static_cast<long long>(spec.inverters.size())
                                       : spec.inverters_online,
                                   3) +
                       spec.field_77_83;
    for (const auto& inv : spec.inverters)
        body += block(inv);
    body += "END\n";
    // Length field: total length minus one, left-padded with 'A' to 5 characters.
    std::string length = std::to_string(5 + 5 + body.size() - 1);
    length.insert(0, 5 - length.size(), 'A');
    return "APS18" + length + body;
}

// The real capture in tests/data, as values.
inline UploadSpec captured_upload_spec() {
    UploadSpec spec;
    spec.centiwatts = 19000;
    spec.decikwh = 21279;
    InverterSpec yc600{"408000111178", 500, 13, {{338, 50, 1409, 17}, {339, 50, 1419, 18}}};
    yc600.field_15_20 = "07228";
    yc600.field_28_48 = "00000032900000000000";
    InverterSpec qs1{"806000011223",
                     500,
                     15,
                     {{311, 100, 2309, 29}, {342, 120, 3070, 38}, {334, 140, 3569, 45}, {329, 140, 3437, 43}}};
    qs1.field_15_20 = "08228";
    qs1.field_28_48 = "00000014570000000000";
    spec.inverters = {yc600, qs1};
    return spec;
}

// A plausible inverter of `channels` channels, each producing `watts` at 32.0 V.
inline InverterSpec inverter_with(const std::string& uid, int channels, int watts) {
    InverterSpec inv{uid, 499, 25, {}};
    for (int c = 0; c < channels; ++c)
        inv.channels.push_back({320, watts * 100 / 32, watts * 1000 / 12, watts});
    return inv;
}

} // namespace test
