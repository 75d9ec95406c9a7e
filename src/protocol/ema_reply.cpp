#include "ecu2mqtt/protocol/ema_reply.hpp"

namespace ecu2mqtt {
namespace {

constexpr const char* kAckPrefix = "101";
constexpr std::int64_t kAckLagSeconds = 5 * 60;

EmaReply acknowledge(ReplyRule rule, const LocalDateTime& t) {
    return {rule, kAckPrefix + format_compact(t), t};
}

// Five minutes back from a stamp in the first minutes of year 0000 (a reset clock, a forged
// upload) would be year -1, which has no 14-digit form: the reply stops at the earliest moment.
LocalDateTime lagged(const LocalDateTime& t) {
    const auto back = add_seconds(t, -kAckLagSeconds);
    return back.year < 0 ? LocalDateTime{0, 1, 1, 0, 0, 0} : back;
}

} // namespace

EmaReply fake_ema_reply(const ReplyInput& input) {
    if (input.is_control)
        return {};
    if (input.resend_from)
        return acknowledge(ReplyRule::ResendFrom, *input.resend_from);
    if (input.message_time)
        return acknowledge(ReplyRule::UploadTimestamp, lagged(*input.message_time));
    if (input.last_acknowledged)
        return acknowledge(ReplyRule::LastAcknowledged, *input.last_acknowledged);
    return acknowledge(ReplyRule::ServiceClock, lagged(input.local_now));
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
