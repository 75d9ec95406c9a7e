// Decodes one framed ECU message: bytes in, structured reading or a typed error out. Pure.
#pragma once

#include "ecu2mqtt/protocol/ecu_message.hpp"
#include "ecu2mqtt/protocol/realtime_view.hpp"

#include <concepts>
#include <string>
#include <string_view>

namespace ecu2mqtt {

DecodeResult decode_message(std::string_view message);
// The same, decoding a real-time upload through `reused` (see decode_realtime_into()), so that
// only the owning copy in the result allocates once `reused` has grown to the uploads seen.
DecodeResult decode_message(std::string_view message, RealtimeView& reused);

// The fast path for what the ECU sends every five minutes: decodes an `APS18` real-time upload
// into `out`, reusing its memory. `out` views `message`, which must outlive its use. False when
// the message is no decodable real-time upload; `out.error` then says why and where, as
// decode_message() does. Notes, skipped blocks and unknown fields are those of decode_message().
bool decode_realtime_into(std::string_view message, RealtimeView& out);
// A temporary string would be gone before its views are read.
template <class Message>
requires std::same_as<Message, std::string>
bool decode_realtime_into(Message&& temporary, RealtimeView& out) = delete;

// The owning copy decode_message() returns for the same message (unknown fields escaped).
RealtimeUpload to_realtime_upload(const RealtimeView& view);

// Best effort for messages that failed to decode: the ECU id and timestamp at the offsets the
// real-time layout uses, if they look valid there. Used to answer and log, never to publish.
std::optional<std::string> guess_ecu_id(std::string_view message);
std::optional<LocalDateTime> guess_timestamp(std::string_view message);

} // namespace ecu2mqtt
