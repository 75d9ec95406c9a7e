#include "ecu2mqtt/mqtt/mqtt_payloads.hpp"

#include "ecu2mqtt/protocol/message_json.hpp"

namespace ecu2mqtt {
namespace {

std::string channel_key(int channel, const char* quantity) {
    return "ch" + std::to_string(channel) + "_" + quantity;
}

nlohmann::json inverter_common(const KnownInverter& inv, const LocalDateTime& timestamp) {
    return {{"uid", inv.uid},
            {"model", inv.model},
            {"model_code", inv.model_code},
            {"timestamp", format_iso(timestamp)}};
}

} // namespace

KnownInverter known_inverter_from(const InverterReading& reading) {
    return {reading.uid, reading.model_code, reading.model,
            static_cast<int>(reading.channels.size())};
}

nlohmann::json ecu_state_payload(const RealtimeUpload& upload, double lifetime_kwh,
                                 std::optional<double> today_kwh, const std::string& last_seen) {
    auto state = ecu_to_json(upload);
    state["lifetime_energy_kwh"] = lifetime_kwh;
    state["today_energy_kwh"] = today_kwh ? nlohmann::json(*today_kwh) : nlohmann::json(nullptr);
    state["last_seen"] = last_seen;
    return state;
}

nlohmann::json inverter_state_payload(const InverterReading& inverter,
                                      const LocalDateTime& timestamp) {
    auto state = inverter_common(known_inverter_from(inverter), timestamp);
    state["reporting"] = true;
    state["power_w"] = inverter.power_w;
    state["frequency_hz"] = inverter.frequency_hz;
    state["temperature_c"] = inverter.temperature_c;
    for (const auto& ch : inverter.channels) {
        state[channel_key(ch.channel, "power_w")] = ch.power_w;
        state[channel_key(ch.channel, "voltage_v")] = ch.voltage_v;
        state[channel_key(ch.channel, "current_a")] = ch.current_a;
    }
    return state;
}

nlohmann::json absent_inverter_payload(const KnownInverter& inverter,
                                       const LocalDateTime& timestamp) {
    auto state = inverter_common(inverter, timestamp);
    state["reporting"] = false;
    state["power_w"] = 0.0;
    state["frequency_hz"] = nullptr;
    state["temperature_c"] = nullptr;
    for (int ch = 1; ch <= inverter.channels; ++ch) {
        state[channel_key(ch, "power_w")] = 0.0;
        state[channel_key(ch, "voltage_v")] = nullptr;
        state[channel_key(ch, "current_a")] = 0.0;
    }
    return state;
}

} // namespace ecu2mqtt
