// The JSON shape of a decoded message, shared by `ecu2mqtt decode` and the MQTT side.
#pragma once

#include "ecu2mqtt/protocol/ecu_message.hpp"

#include <nlohmann/json.hpp>
#include <string_view>

namespace ecu2mqtt {

// Messages other than real-time uploads carry their raw text under "raw": their layout is not
// known well enough to drop anything.
nlohmann::json message_to_json(const EcuMessage& message, std::string_view raw);

nlohmann::json ecu_to_json(const RealtimeUpload& upload);
nlohmann::json inverter_to_json(const InverterReading& inverter);

} // namespace ecu2mqtt
