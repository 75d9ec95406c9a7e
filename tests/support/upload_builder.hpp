// Layout-built uploads for the tests: the library's encoder plus the real capture as values.
#pragma once

#include "ecu2mqtt/protocol/upload_encoder.hpp"

namespace test {

using ecu2mqtt::ChannelSpec;
using ecu2mqtt::InverterSpec;
using ecu2mqtt::UploadSpec;
using ecu2mqtt::zero_padded;

inline std::string build_upload(const UploadSpec& spec) {
    return ecu2mqtt::encode_upload(spec);
}

// The real capture in tests/data, as values.
inline UploadSpec captured_upload_spec() {
    UploadSpec spec;
    spec.centiwatts = 19000;
    spec.decikwh = 21279;
    InverterSpec yc600{"408000111178", 500, 13, {{338, 50, 1409, 17}, {339, 50, 1419, 18}}};
    yc600.field_15_20 = "07228";
    yc600.field_28_48 = "00000032900000000000";
    InverterSpec qs1{
        "806000011223",
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
