// How a reading's MQTT messages are stored until the broker has them: a compact binary record
// (a format byte, then per message: retain flag, topic length, topic, payload length, payload;
// lengths as 32-bit little-endian). Pure.
#pragma once

#include "ecu2mqtt/mqtt/outbox.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ecu2mqtt {

std::string encode_reading(const std::vector<OutgoingMessage>& messages);
// nullopt for a record that is cut short or of an unknown format.
std::optional<std::vector<OutgoingMessage>> decode_reading(std::string_view record);

} // namespace ecu2mqtt
