// What a stand-in EMA cloud answers to each ECU message. Pure: the caller supplies the time.
#pragma once

#include "ecu2mqtt/protocol/local_time.hpp"

#include <optional>
#include <string>

namespace ecu2mqtt {

enum class ReplyRule {
    UploadTimestamp,  // "101" + the message's own timestamp − 5 min (the field-proven rule)
    LastAcknowledged, // "101" + what this ECU was last told, for messages without a timestamp
    ServiceClock,     // "101" + local now − 5 min, for a first message without a timestamp
    ResendFrom,       // "101" + the last upload durably handled: the ECU re-sends what follows
    NoReply,          // ECU11 control messages: the right answer is unknown, close instead
};

struct EmaReply {
    ReplyRule rule = ReplyRule::NoReply;
    std::string bytes; // exactly what goes on the wire; empty with NoReply
    std::optional<LocalDateTime> acknowledged;
};

struct ReplyInput {
    bool is_control = false;                        // an ECU11 message
    std::optional<LocalDateTime> message_time;      // the data timestamp it carries, if any
    std::optional<LocalDateTime> last_acknowledged; // what this ECU was last answered, if known
    // Set when this upload could not be handled: the newest upload that was. EMA answers with
    // the time of the last data it has, and the ECU then sends what came after (backfill).
    // Inferred from the public description of EMA, not from a capture.
    std::optional<LocalDateTime> resend_from;
    LocalDateTime local_now; // the service's clock, local wall time
};

EmaReply fake_ema_reply(const ReplyInput& input);

const char* reply_rule_name(ReplyRule rule);

} // namespace ecu2mqtt
