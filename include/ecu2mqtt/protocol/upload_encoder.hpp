// Builds APS18 real-time uploads from values, following the layout (README, "The protocol"):
// for the simulator and the tests. Written independently of the decoder; a test checks it
// reproduces the real capture byte for byte.
#pragma once

#include <string>
#include <vector>

namespace ecu2mqtt {

struct ChannelSpec {
    int decivolts = 0;  // 338 -> 33.8 V
    int centiamps = 0;  // 50 -> 0.50 A
    int energy_mwh = 0; // bytes 10-15, meaning inferred
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

std::string zero_padded(long long value, int width);
std::string encode_upload(const UploadSpec& spec);

} // namespace ecu2mqtt
