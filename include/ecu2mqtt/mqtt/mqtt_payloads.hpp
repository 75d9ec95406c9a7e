// The MQTT topic contract and the JSON state payloads published on it. Pure.
#pragma once

#include "ecu2mqtt/protocol/ecu_message.hpp"
#include "ecu2mqtt/protocol/realtime_view.hpp"

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace ecu2mqtt {

struct TopicScheme {
    std::string base = "ecu2mqtt";
    std::string discovery_prefix = "homeassistant";

    std::string bridge_state() const { return base + "/bridge/state"; }
    // Retained: the newest reading the broker has whole (see MqttPublisher).
    std::string bridge_delivered() const { return base + "/bridge/delivered"; }
    // Retained: version, ports, broker, what is tracked and the options in force (no secret).
    std::string bridge_info() const { return base + "/bridge/info"; }
    // Our own echo at start, to tell when the broker has sent every retained message we asked for.
    std::string bridge_audit() const { return base + "/bridge/audit"; }
    std::string ecu_state(const std::string& ecu) const { return base + "/" + ecu + "/state"; }
    std::string ecu_availability(const std::string& ecu) const {
        return base + "/" + ecu + "/availability";
    }
    std::string inverter_state(const std::string& ecu, const std::string& uid) const {
        return base + "/" + ecu + "/" + uid + "/state";
    }
    std::string inverter_availability(const std::string& ecu, const std::string& uid) const {
        return base + "/" + ecu + "/" + uid + "/availability";
    }
    std::string raw(const std::string& ecu) const { return base + "/" + ecu + "/raw"; }
    // Late readings (re-sent by the ECU), with their own timestamps; never retained.
    std::string history(const std::string& ecu) const { return base + "/" + ecu + "/history"; }
    std::string ha_status() const { return discovery_prefix + "/status"; }
};

inline constexpr const char* kOnline = "online";
inline constexpr const char* kOffline = "offline";

// What is remembered about an inverter between uploads, to describe it while it is absent.
struct KnownInverter {
    std::string uid;
    std::string model_code;
    std::string model;
    int channels = 0;
};

KnownInverter known_inverter_from(const InverterReading& reading);

// `<base>/<ecu>/state`: the decoded ecu object plus today's energy and when it was last heard.
nlohmann::json ecu_state_payload(const RealtimeUpload& upload, double lifetime_kwh,
                                 std::optional<double> today_kwh, const std::string& last_seen);

// `<base>/<ecu>/<uid>/state` for an inverter present in the upload: flat per-channel keys.
nlohmann::json inverter_state_payload(const InverterReading& inverter,
                                      const LocalDateTime& timestamp);

// The same for an inverter the ECU did not report this time (night): power and current are 0,
// what cannot be known (voltage, frequency, temperature) is null, `reporting` is false.
nlohmann::json absent_inverter_payload(const KnownInverter& inverter,
                                       const LocalDateTime& timestamp);

// The same payloads appended to `out` as text, byte for byte what dump() gives for the functions
// above, without a JSON document (see json_text.hpp): with `out` reused, nothing is allocated
// once it has grown to the payload's size. For the decoder's owning result and for its views.
void append_ecu_state_payload(std::string& out, const RealtimeUpload& upload, double lifetime_kwh,
                              std::optional<double> today_kwh, std::string_view last_seen);
void append_ecu_state_payload(std::string& out, const RealtimeView& upload, double lifetime_kwh,
                              std::optional<double> today_kwh, std::string_view last_seen);
void append_inverter_state_payload(std::string& out, const InverterReading& inverter,
                                   const LocalDateTime& timestamp);
void append_inverter_state_payload(std::string& out, const InverterView& inverter,
                                   const LocalDateTime& timestamp);
void append_absent_inverter_payload(std::string& out, const KnownInverter& inverter,
                                    const LocalDateTime& timestamp);

} // namespace ecu2mqtt
