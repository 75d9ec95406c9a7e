// The captured ECU uploading once a minute from 10:00 today (UTC), and what a subscriber sees of
// its live state: for tests that count readings through outages, kills and reconnects.
#pragma once

#include "mqtt_probe.hpp"
#include "service_process.hpp" // today_utc
#include "test_paths.hpp"
#include "upload_builder.hpp"

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace test {

inline const std::string kCapturedEcuState = "ecu2mqtt/216000064136/state";

// The ECU's compact timestamp of minute `minute` past 10:00 today.
inline std::string stamp_at_minute(int minute) {
    return today_utc() + "10" + zero_padded(minute, 2) + "00";
}

// The same moment as the state topic writes it.
inline std::string iso_at_minute(int minute) {
    const auto d = today_utc();
    return d.substr(0, 4) + "-" + d.substr(4, 2) + "-" + d.substr(6, 2) +
           "T10:" + zero_padded(minute, 2) + ":00";
}

inline std::vector<std::string> iso_minutes(int from, int to) {
    std::vector<std::string> out;
    for (int m = from; m <= to; ++m)
        out.push_back(iso_at_minute(m));
    return out;
}

// The captured upload at that minute, its lifetime 0.1 kWh higher each minute.
inline std::string upload_at_minute(int minute) {
    auto spec = captured_upload_spec();
    spec.timestamp = stamp_at_minute(minute);
    spec.decikwh = 21279 + minute;
    return build_upload(spec);
}

// The fake EMA's answer to it: 101 and the upload's time less five minutes.
inline std::string reply_for_minute(int minute) {
    return "101" + today_utc() + zero_padded(minute >= 5 ? 10 : 9, 2) +
           zero_padded(minute >= 5 ? minute - 5 : minute + 55, 2) + "00";
}

// A publication of the ECU state; retained copies handed out on subscribing are not.
inline bool is_live_state(const Received& m) {
    return m.topic == kCapturedEcuState && !m.retained;
}

// The ECU timestamps of the live states a probe received, in order.
inline std::vector<std::string> state_timestamps(const MqttProbe& probe) {
    std::vector<std::string> out;
    for (const auto& m : probe.messages())
        if (is_live_state(m))
            out.push_back(nlohmann::json::parse(m.payload)["timestamp"]);
    return out;
}

} // namespace test
