#include "ecu2mqtt/protocol/ema_reply.hpp"

namespace ecu2mqtt {
namespace {

constexpr const char* kAckPrefix = "101";
constexpr std::int64_t kAckLagSeconds = 5 * 60;

EmaReply acknowledge(ReplyRule rule, const LocalDateTime& t) {
    return {rule, kAckPrefix + format_compact(t), t};
}

} // namespace

EmaReply fake_ema_reply(const ReplyInput& input) {
    if (input.is_control)
        return {};
    if (input.resend_from)
        return acknowledge(ReplyRule::ResendFrom, *input.resend_from);
    if (input.message_time)
        return acknowledge(ReplyRule::UploadTimestamp,
                           add_seconds(*input.message_time, -kAckLagSeconds));
    if (input.last_acknowledged)
        return acknowledge(ReplyRule::LastAcknowledged, *input.last_acknowledged);
    return acknowledge(ReplyRule::ServiceClock, add_seconds(input.local_now, -kAckLagSeconds));
}

const char* reply_rule_name(ReplyRule rule) {
    switch (rule) {
    case ReplyRule::UploadTimestamp:
        return "upload-timestamp";
    case ReplyRule::LastAcknowledged:
        return "last-acknowledged";
    case ReplyRule::ServiceClock:
        return "service-clock";
    case ReplyRule::ResendFrom:
        return "resend-from";
    case ReplyRule::NoReply:
        return "no-reply";
    }
    return "?";
}

} // namespace ecu2mqtt
