// A framed message decoded once, with what every step asks of it first (the ECU it names, the
// time it carries, its kind) taken at decode time, so that no later step goes back to the
// decoder. Pure.
#pragma once

#include "ecu2mqtt/protocol/ecu_message.hpp"
#include "ecu2mqtt/protocol/realtime_view.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace ecu2mqtt {

struct DecodedMessage {
    DecodeResult result;
    // The ECU id the message names; for one that failed to decode, where an upload would carry
    // it if it looks valid there; else empty.
    std::string ecu_id;
    // The data timestamp the message carries, guessed the same way for one that failed.
    std::optional<LocalDateTime> timestamp;
    // "realtime", "control" or "other"; "undecodable" for a DecodeError.
    const char* type = "undecodable";
};

DecodedMessage decode_inbound(std::string_view raw);
// The same through a view reused from one message to the next (see decode_message()): what the
// service runs, one view for all its connections.
DecodedMessage decode_inbound(std::string_view raw, RealtimeView& reused);

} // namespace ecu2mqtt
