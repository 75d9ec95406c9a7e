// Decodes one framed ECU message: bytes in, structured reading or a typed error out. Pure.
#pragma once

#include "ecu2mqtt/protocol/ecu_message.hpp"

#include <string_view>

namespace ecu2mqtt {

DecodeResult decode_message(std::string_view message);

// Best effort for messages that failed to decode: the ECU id and timestamp at the offsets the
// real-time layout uses, if they look valid there. Used to answer and log, never to publish.
std::optional<std::string> guess_ecu_id(std::string_view message);
std::optional<LocalDateTime> guess_timestamp(std::string_view message);

} // namespace ecu2mqtt
