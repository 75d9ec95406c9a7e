#include "ecu2mqtt/app/service.hpp"

#include "ecu2mqtt/protocol/decoder.hpp"
#include "ecu2mqtt/protocol/ema_reply.hpp"
#include "ecu2mqtt/protocol/printable.hpp"
#include "ecu2mqtt/store/store.hpp"

#include <algorithm>
#include <cstdio>

namespace ecu2mqtt {
namespace {

std::string number(double value) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", value);
    return buf;
}

// Raw bytes for a log line: escaped and cut, so that no sender can fill the disk through the log
// (the whole message goes to the raw store).
std::string loggable(std::string_view raw) {
    constexpr std::size_t kMaxLoggedBytes = 4096;
    return printable_text(raw.substr(0, kMaxLoggedBytes)) +
           (raw.size() > kMaxLoggedBytes ? "…(" + std::to_string(raw.size()) + " bytes)" : "");
}

// Decodes a message once, however many steps look at it.
const DecodedMessage& decoded_once(const InboundMessage& message, RealtimeView& reused) {
    if (!message.decoded)
        message.decoded =
            std::make_shared<const DecodedMessage>(decode_inbound(message.raw, reused));
    return *message.decoded;
}

} // namespace

std::string upload_verdict_label(const UploadHandling& handling) {
    if (!handling.handled || handling.untracked)
        return "not_kept";
    if (handling.duplicate)
        return "repeat";
    if (handling.clock_suspect)
        return "clock_suspect";
    if (handling.counter_suspect)
        return "counter_suspect";
    return handling.live ? "live" : "late";
}

bool Service::allowed(const std::string& ecu_id) const {
    if (options_.allowed_ecus.empty())
        return true;
    return std::find(options_.allowed_ecus.begin(), options_.allowed_ecus.end(), ecu_id) !=
           options_.allowed_ecus.end();
}

bool Service::admit(const std::string& ecu_id, const InboundMessage& message) {
    if (allowed(ecu_id))
        return true;
    ++counters_.not_allowed;
    log_.warn(
        "ecu_not_allowed",
        {{"ecu", ecu_id}, {"peer", message.peer}, {"port", std::to_string(message.local_port)}});
    return false;
}

std::optional<std::string> Service::answer(bool is_control, const std::string& ecu_id,
                                           std::optional<LocalDateTime> message_time,
                                           const InboundMessage& message,
                                           std::optional<LocalDateTime> resend_from) {
    ReplyInput input;
    input.is_control = is_control;
    input.message_time = message_time;
    input.resend_from = resend_from;
    input.local_now = clock_.local_now();
    if (const auto it = last_acknowledged_.find(ecu_id); it != last_acknowledged_.end())
        input.last_acknowledged = it->second;
    const EmaReply reply = fake_ema_reply(input);
    reply_rule_ = reply_rule_name(reply.rule);
    reply_ecu_ = ecu_id;
    if (reply.rule == ReplyRule::NoReply) {
        log_.info("reply", {{"ecu", ecu_id}, {"peer", message.peer}, {"rule", "no-reply"}});
        return std::nullopt;
    }
    if (reply.acknowledged && !ecu_id.empty())
        last_acknowledged_[ecu_id] = *reply.acknowledged;
    log_.debug("reply", {{"ecu", ecu_id},
                         {"peer", message.peer},
                         {"rule", reply_rule_name(reply.rule)},
                         {"bytes", reply.bytes}});
    return reply.bytes;
}

bool Service::wants_upstream(const InboundMessage& message) {
    if (!message.raw.starts_with("APS") && !message.raw.starts_with("ECU11"))
        return false; // not an ECU speaking: nothing for EMA
    return allowed(decoded_once(message, decode_view_).ecu_id);
}

std::optional<std::string> Service::relay_or(std::optional<std::string> fake,
                                             const InboundMessage& message,
                                             const std::string& ecu_id) {
    if (!message.forwarded)
        return fake;
    if (!message.upstream_reply) {
        ++counters_.ema_fallbacks;
        if (telemetry_)
            telemetry_->on_ema_fallback();
        log_.warn("ema_no_reply", {{"ecu", ecu_id},
                                   {"peer", message.peer},
                                   {"reason", message.upstream_failure},
                                   {"action", fake ? "sent the fake reply" : "closed"}});
        return fake;
    }
    const std::string& reply = *message.upstream_reply;
    const bool plain_ack = reply.size() == 17 && reply.starts_with("101") &&
                           reply.find_first_not_of("0123456789") == std::string::npos;
    if (!plain_ack) {
        // Not the acknowledgement we know: possibly a firmware update or another command.
        log_.warn(
            "unusual_ema_reply",
            {{"ecu", ecu_id},
             {"peer", message.peer},
             {"bytes", std::to_string(reply.size())},
             {"raw", printable_text(reply.substr(0, 4096))},
             {"action", options_.block_firmware ? "blocked, sent the fake reply" : "relayed"}});
        if (options_.block_firmware) {
            ++counters_.ema_blocked;
            return fake;
        }
    }
    ++counters_.ema_relayed;
    reply_rule_ = "ema-relayed";
    reply_ecu_ = ecu_id;
    if (telemetry_)
        telemetry_->on_ema_relayed();
    log_.debug("ema_reply_relayed",
               {{"ecu", ecu_id}, {"peer", message.peer}, {"reply", printable_text(reply)}});
    return reply;
}

void Service::on_message(const InboundMessage& message, ReplyDone reply) {
    // The rule is set and read within one uninterrupted stretch on the io thread (choosing the
    // answer, then this callback), so that messages handled meanwhile cannot mix theirs in.
    reply_rule_.clear();
    handle(message, [this, &message, reply = std::move(reply)](std::optional<std::string> bytes) {
        if (telemetry_ && !reply_rule_.empty())
            telemetry_->on_reply(reply_ecu_, reply_rule_, bytes.value_or(""));
        reply_rule_.clear();
        if (recorder_)
            recorder_->record(message, bytes);
        reply(std::move(bytes));
    });
}

void Service::keep_raw(const InboundMessage& message, const std::string& ecu_id,
                       const std::string& why, bool announce) {
    if (!store_) {
        if (announce)
            log_.warn("raw_message", {{"ecu", ecu_id},
                                      {"peer", message.peer},
                                      {"why", why},
                                      {"raw", loggable(message.raw)}});
        return;
    }
    const auto now = clock_.now();
    const auto line = recording_line(clock_.iso_with_offset(now), message.local_port, message.peer,
                                     message.raw, std::nullopt);
    WriteBatch batch;
    batch.keep_raw(ecu_id,
                   std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count(),
                   why, line.dump());
    if (announce)
        log_.warn("raw_message_kept", {{"ecu", ecu_id}, {"peer", message.peer}, {"why", why}});
    store_->submit(std::move(batch), [this, ecu_id, peer = message.peer, why,
                                      raw = loggable(message.raw)](const std::string& error) {
        if (!error.empty())
            log_.error(
                "raw_message_not_kept",
                {{"ecu", ecu_id}, {"peer", peer}, {"why", why}, {"error", error}, {"raw", raw}});
    });
}

void Service::handle(const InboundMessage& message, ReplyDone done) {
    const auto port = std::to_string(message.local_port);
    const DecodedMessage& inbound = decoded_once(message, decode_view_);
    const DecodeResult& result = inbound.result;
    const std::string& ecu_id = inbound.ecu_id;
    const auto* error = decode_error(result);
    if (error) {
        ++counters_.undecodable;
        if (telemetry_)
            telemetry_->on_decode_error();
    }
    if (!admit(ecu_id, message))
        return done(std::nullopt);

    if (error) {
        log_.warn("undecodable_message", {{"ecu", ecu_id},
                                          {"peer", message.peer},
                                          {"port", port},
                                          {"error", error->describe()},
                                          {"bytes", std::to_string(message.raw.size())},
                                          {"raw", loggable(message.raw)}});
        if (sink_)
            sink_->on_raw(ecu_id, message.raw);
        keep_raw(message, ecu_id, "undecodable: " + error->describe());
        // Something that looks like an upload still gets the upload answer, so the ECU does not
        // retry it forever; anything else is not an ECU speaking and is closed.
        if (!message.raw.starts_with("APS"))
            return done(relay_or(std::nullopt, message, ecu_id));
        return done(relay_or(answer(false, ecu_id, inbound.timestamp, message), message, ecu_id));
    }

    const EcuMessage& decoded = *decoded_message(result);
    if (sink_)
        sink_->on_raw(ecu_id, message.raw);

    if (const auto* upload = std::get_if<RealtimeUpload>(&decoded)) {
        ++counters_.realtime;
        log_.info("upload", {{"ecu", ecu_id},
                             {"peer", message.peer},
                             {"port", port},
                             {"timestamp", format_iso(upload->timestamp)},
                             {"power_w", number(upload->power_w)},
                             {"lifetime_kwh", number(upload->lifetime_energy_kwh)},
                             {"inverters", std::to_string(upload->inverters.size())}});
        for (const auto& note : upload->notes)
            log_.warn("upload_note", {{"ecu", ecu_id}, {"peer", message.peer}, {"note", note}});
        for (const auto& block : upload->skipped_blocks)
            log_.warn(
                "inverter_block_left_out",
                {{"ecu", ecu_id},
                 {"peer", message.peer},
                 {"offset", std::to_string(block.offset)},
                 {"error", "offset " + std::to_string(block.error_offset) + ": " + block.reason},
                 {"raw", printable_text(block.raw)}});
        if (!upload->skipped_blocks.empty())
            keep_raw(message, ecu_id,
                     std::to_string(upload->skipped_blocks.size()) + " inverter block(s) left out");
        // Kept first, answered second: the reply must not claim data that could still be lost.
        if (!sink_)
            return done(finish_upload(message, ecu_id, *upload, UploadHandling{}));
        sink_->on_realtime(*upload, clock_.now(),
                           [this, &message, ecu_id, upload, keep = message.decoded,
                            done = std::move(done)](UploadHandling handling) {
                               done(finish_upload(message, ecu_id, *upload, handling));
                           });
        return;
    }

    const bool is_control = std::holds_alternative<ControlMessage>(decoded);
    ++(is_control ? counters_.control : counters_.other);
    // Layout not known well enough to publish: keep the whole message in the log.
    log_.info("message_kept", {{"ecu", ecu_id},
                               {"peer", message.peer},
                               {"port", port},
                               {"type", inbound.type},
                               {"raw", loggable(message.raw)}});
    done(relay_or(answer(is_control, ecu_id, inbound.timestamp, message), message, ecu_id));
}

std::optional<std::string> Service::finish_upload(const InboundMessage& message,
                                                  const std::string& ecu_id,
                                                  const RealtimeUpload& upload,
                                                  const UploadHandling& handling) {
    // Only a new reading says that the ECU uploads from this address: a repeat, a late or
    // set-aside upload, or one of an ECU not tracked, can come from anyone on the LAN.
    if (upload_observer_ && (handling.live || !sink_) && !handling.untracked)
        upload_observer_(ecu_id, message.peer);
    // The status page shows the newest trustworthy reading, as the state topic does.
    if (telemetry_ && (handling.live || !sink_))
        telemetry_->on_upload(upload, message.peer, message.local_port, clock_.now());
    else if (telemetry_)
        telemetry_->on_upload_set_aside(ecu_id, message.local_port, upload_verdict_label(handling));
    if (handling.duplicate)
        ++counters_.duplicates;
    if (handling.clock_suspect) // the ledger used nothing of it: its bytes stay here
        keep_raw(message, ecu_id, "clock-suspect timestamp " + format_iso(upload.timestamp));
    if (handling.untracked) // logged as ecu_limit_reached, at a bounded rate
        keep_raw(message, ecu_id, "--max-ecus reached", false);
    if (handling.counter_suspect)
        keep_raw(message, ecu_id,
                 "counter-suspect lifetime " + number(upload.lifetime_energy_kwh) + " kWh");
    std::optional<LocalDateTime> resend_from;
    if (options_.backfill)
        resend_from = handling.resend_from;
    if (!handling.handled) {
        ++counters_.not_handled;
        log_.error(
            "upload_not_kept",
            {{"ecu", ecu_id},
             {"peer", message.peer},
             {"timestamp", format_iso(upload.timestamp)},
             {"reply", resend_from ? "asking the ECU to re-send from " + format_iso(*resend_from)
                                   : std::string("acknowledged anyway (backfill off or nothing "
                                                 "kept yet)")}});
    } else if (resend_from) {
        log_.info(
            "asking_for_resend",
            {{"ecu", ecu_id}, {"peer", message.peer}, {"gap_after", format_iso(*resend_from)}});
    }
    auto reply = answer(false, ecu_id, upload.timestamp, message, resend_from);
    if (!handling.handled && resend_from && message.forwarded) {
        // EMA acknowledged a reading we could not keep: relaying that would stop the ECU
        // from sending it again, so it gets our re-send reply instead.
        log_.warn("ema_reply_replaced",
                  {{"ecu", ecu_id},
                   {"peer", message.peer},
                   {"ema_reply", printable_text(message.upstream_reply.value_or("(none)"))},
                   {"sent", reply.value_or("(nothing)")},
                   {"reason", "the reading was not kept"}});
        return reply;
    }
    return relay_or(std::move(reply), message, ecu_id);
}

void Service::on_incomplete(const InboundMessage& leftover, std::string_view why) {
    ++counters_.incomplete;
    log_.warn("incomplete_message", {{"ecu", guess_ecu_id(leftover.raw).value_or("")},
                                     {"peer", leftover.peer},
                                     {"port", std::to_string(leftover.local_port)},
                                     {"reason", std::string(why)},
                                     {"bytes", std::to_string(leftover.raw.size())},
                                     {"raw", printable_text(leftover.raw.substr(0, 4096))}});
}

} // namespace ecu2mqtt
