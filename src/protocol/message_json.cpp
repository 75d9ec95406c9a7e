#include "ecu2mqtt/protocol/message_json.hpp"

#include "ecu2mqtt/protocol/printable.hpp"

namespace ecu2mqtt {
namespace {

nlohmann::json unknown_to_json(const UnknownFields& fields) {
    auto out = nlohmann::json::object();
    for (const auto& [key, value] : fields)
        out[key] = value;
    return out;
}

nlohmann::json channel_to_json(const ChannelReading& ch) {
    return {{"channel", ch.channel},
            {"voltage_v", ch.voltage_v},
            {"current_a", ch.current_a},
            {"power_w", ch.power_w},
            {"unknown", unknown_to_json(ch.unknown)}};
}

} // namespace

nlohmann::json ecu_to_json(const RealtimeUpload& up) {
    return {{"id", up.ecu_id},
            {"model", up.ecu_model},
            {"timestamp", format_iso(up.timestamp)},
            {"power_w", up.power_w},
            {"lifetime_energy_kwh", up.lifetime_energy_kwh},
            {"inverters_online", up.inverters_online}};
}

nlohmann::json inverter_to_json(const InverterReading& inv) {
    auto channels = nlohmann::json::array();
    for (const auto& ch : inv.channels)
        channels.push_back(channel_to_json(ch));
    return {{"uid", inv.uid},
            {"model_code", inv.model_code},
            {"model", inv.model},
            {"frequency_hz", inv.frequency_hz},
            {"temperature_c", inv.temperature_c},
            {"power_w", inv.power_w},
            {"channels", std::move(channels)},
            {"unknown", unknown_to_json(inv.unknown)}};
}

nlohmann::json message_to_json(const EcuMessage& message, std::string_view raw) {
    nlohmann::json out{{"type", message_type_name(message)}};
    if (const auto* up = std::get_if<RealtimeUpload>(&message)) {
        out["signature"] = up->signature;
        out["ecu"] = ecu_to_json(*up);
        auto inverters = nlohmann::json::array();
        for (const auto& inv : up->inverters)
            inverters.push_back(inverter_to_json(inv));
        out["inverters"] = std::move(inverters);
        out["unknown"] = unknown_to_json(up->unknown);
        if (!up->notes.empty())
            out["notes"] = up->notes;
        if (!up->skipped_blocks.empty()) {
            auto skipped = nlohmann::json::array();
            for (const auto& block : up->skipped_blocks)
                skipped.push_back({{"offset", block.offset},
                                   {"error_offset", block.error_offset},
                                   {"reason", block.reason},
                                   {"raw", printable_text(block.raw)}});
            out["skipped_blocks"] = std::move(skipped);
        }
        return out;
    }
    if (const auto* control = std::get_if<ControlMessage>(&message)) {
        out["command"] = control->command;
        out["length"] = control->length;
        out["payload"] = printable_text(control->payload);
        if (control->ecu_id)
            out["ecu"] = {{"id", *control->ecu_id}};
    } else {
        const auto& other = std::get<OtherApsMessage>(message);
        out["signature"] = printable_text(other.signature);
        nlohmann::json ecu = nlohmann::json::object();
        if (other.ecu_id)
            ecu["id"] = *other.ecu_id;
        if (other.timestamp)
            ecu["timestamp"] = format_iso(*other.timestamp);
        out["ecu"] = std::move(ecu);
    }
    out["raw"] = printable_text(raw);
    return out;
}

} // namespace ecu2mqtt
